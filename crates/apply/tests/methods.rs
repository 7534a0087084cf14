//! Each method changes the region and nothing else, deterministically.

use defacer_apply::{apply, Fill, Method, Region};
use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
use ndarray::{Array3, Array4};

/// An 80³ "head": a noisy ball of tissue (values 400–600, radius 32 voxels) in background noise
/// (0–20), with a nose, and a face region = the +y cap of the ball and the air in front of it.
const N: usize = 80;
const C: usize = 40;

fn scene() -> (Volume, Array3<bool>, Array3<bool>) {
    let n = N;
    let c = C as f64;
    let mut data = Array4::<i16>::zeros((n, n, n, 1));
    let mut head = Array3::from_elem((n, n, n), false);
    let mut face = Array3::from_elem((n, n, n), false);
    for ((i, j, k, _), v) in data.indexed_iter_mut() {
        let (x, y, z) = (i as f64 - c, j as f64 - c, k as f64 - c);
        let r = (x * x + y * y + z * z).sqrt();
        let h = (i * 7919 + j * 104729 + k * 1299709) % 200;
        // A ball with a "nose": a 10×6 voxel bar sticking 6 voxels out of the face.
        let nose = x.abs() < 5.0 && z.abs() < 3.0 && (30.0..38.0).contains(&y);
        if r < 32.0 || nose {
            *v = 400 + h as i16;
            head[[i, j, k]] = true;
        } else {
            *v = (h % 21) as i16;
        }
        face[[i, j, k]] = y > 20.0 && x.abs() < 22.0 && z.abs() < 22.0;
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
        let (x, y, z) = (
            i as f64 - C as f64,
            j as f64 - C as f64,
            k as f64 - C as f64,
        );
        (x * x + (1.3 * y) * (1.3 * y) + z * z).sqrt() < 32.0
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
    let tip = [C, C + 36, C];
    assert!(a[tip] >= 400.0);
    assert!(b[tip] < 50.0, "nose tip {}", b[tip]);
    // Deep in the face (5+ voxels from the region's edge, where the blend is complete), tissue
    // neighbours differ far less than the input's ±100 texture.
    let spread = |f: &Array3<f32>| {
        let (mut s, mut n) = (0.0f64, 0usize);
        for i in C - 5..C + 5 {
            for j in C + 25..C + 29 {
                for k in C - 5..C + 5 {
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
    // Inside the template head, in the face region, the value is tissue-like.
    let inside = [C, C + 22, C];
    assert!(face[inside]);
    let v = b[inside];
    assert!((300.0..=650.0).contains(&v), "tissue value {v}");
    // In front of the template head, where the subject's nose was, it is air.
    let nose = [C, C + 34, C];
    assert!(b[nose] < 50.0, "nose {}", b[nose]);
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
