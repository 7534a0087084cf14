//! Each method changes the region and nothing else, deterministically.

use defacer_apply::{apply, Fill, Method, Region};
use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
use ndarray::{Array3, Array4};

/// A 40³ "head": a noisy ball of tissue (values 400–600) in background noise (0–20), with a
/// face region = the +y cap of the ball and the air in front of it.
fn scene() -> (Volume, Array3<bool>, Array3<bool>) {
    let n = 40;
    let c = 20.0;
    let mut data = Array4::<i16>::zeros((n, n, n, 1));
    let mut head = Array3::from_elem((n, n, n), false);
    let mut face = Array3::from_elem((n, n, n), false);
    for ((i, j, k, _), v) in data.indexed_iter_mut() {
        let (x, y, z) = (i as f64 - c, j as f64 - c, k as f64 - c);
        let r = (x * x + y * y + z * z).sqrt();
        let h = (i * 7919 + j * 104729 + k * 1299709) % 200;
        // A ball with a "nose": a 6×6 voxel bar sticking 5 voxels out of the face.
        let nose = x.abs() < 3.0 && z.abs() < 3.0 && (14.0..20.0).contains(&y);
        if r < 15.0 || nose {
            *v = 400 + h as i16;
            head[[i, j, k]] = true;
        } else {
            *v = (h % 21) as i16;
        }
        face[[i, j, k]] = y > 4.0 && x.abs() < 10.0 && z.abs() < 10.0;
    }
    let affine = Affine::from_row_major([
        [1.2, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let vol = Volume::synthetic(Voxels::I16(data), affine, Scaling::IDENTITY, Modality::Mr);
    (vol, head, face)
}

fn methods() -> Vec<Method> {
    vec![
        Method::Remove { fill: Fill::Air },
        Method::Remove { fill: Fill::Noise },
        Method::Blur {
            sigma_mm: 8.0,
            fill: Fill::Air,
        },
        Method::Reface { fill: Fill::Air },
        Method::Reface { fill: Fill::Noise },
    ]
}

fn run(method: &Method) -> (Volume, Volume, Array3<bool>) {
    let (orig, head, face) = scene();
    // The template face: a flatter cap than the subject's.
    let template = Array3::from_shape_fn(face.raw_dim(), |(i, j, k)| {
        let (x, y, z) = (i as f64 - 20.0, j as f64 - 20.0, k as f64 - 20.0);
        (x * x + (1.3 * y) * (1.3 * y) + z * z).sqrt() < 15.0
    });
    let mut out = orig.clone();
    let region = Region {
        change: face.view(),
        head: head.view(),
        template_head: Some(template.view()),
    };
    let stats = apply(&mut out, &region, method, 0.0);
    assert!(stats.voxels_changed > 0, "{method:?} changed nothing");
    assert!(stats.voxels_changed <= stats.voxels_in_region);
    (orig, out, face)
}

#[test]
fn outside_the_region_is_bit_identical() {
    for m in methods() {
        let (orig, out, face) = run(&m);
        let (a, b) = (orig.voxels.frame_f32(0), out.voxels.frame_f32(0));
        let mut outside_changed = 0;
        for ((ijk, &x), &y) in a.indexed_iter().zip(b.iter()) {
            if !face[ijk] && x.to_bits() != y.to_bits() {
                outside_changed += 1;
            }
        }
        assert_eq!(outside_changed, 0, "{m:?}");
        assert_eq!(out.datatype(), orig.datatype());
        assert_eq!(out.affine, orig.affine);
    }
}

#[test]
fn remove_leaves_no_tissue_in_the_region() {
    for m in [
        Method::Remove { fill: Fill::Air },
        Method::Remove { fill: Fill::Noise },
    ] {
        let (_, out, face) = run(&m);
        let b = out.voxels.frame_f32(0);
        let max_in_face = b
            .iter()
            .zip(face.iter())
            .filter(|(_, &f)| f)
            .map(|(&v, _)| v)
            .fold(0.0f32, f32::max);
        assert!(
            max_in_face <= 20.0,
            "{m:?}: tissue value {max_in_face} left in the face"
        );
    }
}

#[test]
fn blur_flattens_the_nose_and_smooths_the_tissue() {
    let (orig, out, face) = run(&Method::Blur {
        sigma_mm: 8.0,
        fill: Fill::Air,
    });
    let (a, b) = (orig.voxels.frame_f32(0), out.voxels.frame_f32(0));
    // The tip of the nose is air now.
    assert!(a[[20, 37, 20]] >= 400.0);
    assert!(b[[20, 37, 20]] < 50.0, "nose tip {}", b[[20, 37, 20]]);
    // Deep in the face (5+ voxels from the region's edge, where the blend is complete), tissue
    // neighbours differ far less than the input's ±100 texture.
    let spread = |f: &Array3<f32>| {
        let (mut s, mut n) = (0.0f64, 0usize);
        for i in 16..24 {
            for j in 30..33 {
                for k in 16..24 {
                    let (p, q) = (f[[i, j, k]], f[[i + 1, j, k]]);
                    if face[[i, j, k]] && p > 300.0 && q > 300.0 {
                        s += (q - p).abs() as f64;
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 20, "only {n} tissue pairs");
        s / n as f64
    };
    let (before, after) = (spread(&a), spread(&b));
    assert!(after < before / 5.0, "texture {before} -> {after}");
}

#[test]
fn reface_puts_tissue_where_the_template_head_is() {
    let (_, out, face) = run(&Method::Reface { fill: Fill::Air });
    let b = out.voxels.frame_f32(0);
    // Deep inside the template cap (y = 9, centre) the value is tissue-like.
    let v = b[[20, 29, 20]];
    assert!(face[[20, 29, 20]]);
    assert!((300.0..=650.0).contains(&v), "tissue value {v}");
    // Far in front of the template head it is air.
    assert!(b[[20, 38, 20]] < 50.0);
}

#[test]
fn output_does_not_depend_on_thread_count() {
    for m in methods() {
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| run(&m).1);
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| run(&m).1);
        assert_eq!(one.voxels, four.voxels, "{m:?}");
    }
}
