//! `defacer deface` on every real head with hand-placed landmarks (testdata/landmarks), with
//! every method: the written output keeps everything outside the written mask bit-identical,
//! changes every facial landmark (tragi included, with `--ears`), leaves every brain landmark
//! at least the safety margin away from any change, and keeps the dtype, dimensions, affine and
//! scaling (DICOM output is read back through the same reader).

use std::path::{Path, PathBuf};

mod support;
use support::{defacer, s, stderr};

use defacer_testkit::{landmarks, real, scratch};
use defacer_volume::{load, Source, Volume};

const FACIAL: [&str; 7] = [
    "nose_tip",
    "eye_left",
    "eye_right",
    "upper_lip",
    "chin",
    "tragus_left",
    "tragus_right",
];
const BRAIN: [&str; 4] = [
    "frontal_pole",
    "temporal_pole_left",
    "temporal_pole_right",
    "cerebellum",
];
const MARGIN_MM: f64 = 10.0;

fn load_one(p: &Path) -> Volume {
    let mut v = load(&[p.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1, "{}", p.display());
    v.remove(0)
}

/// Native voxels (world positions) whose stored value differs between `a` and `b`, and how
/// many of them lie outside `mask`.
fn changes(a: &Volume, b: &Volume, mask: &Volume) -> (Vec<[usize; 3]>, usize) {
    let [nx, ny, nz, nt] = a.dims();
    let m = mask.voxels.frame_f32(0);
    let mut changed = vec![false; nx * ny * nz];
    for t in 0..nt {
        let (fa, fb) = (a.voxels.frame_f32(t), b.voxels.frame_f32(t));
        for ((ijk, va), vb) in fa.indexed_iter().zip(fb.iter()) {
            if va.to_bits() != vb.to_bits() {
                changed[ijk.0 + nx * (ijk.1 + ny * ijk.2)] = true;
            }
        }
    }
    let list: Vec<[usize; 3]> = (0..changed.len())
        .filter(|&c| changed[c])
        .map(|c| [c % nx, (c / nx) % ny, c / (nx * ny)])
        .collect();
    let outside = list.iter().filter(|v| m[[v[0], v[1], v[2]]] == 0.0).count();
    (list, outside)
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Defaces the head of `landmark_file` with each method and checks the written output; `brain`
/// is a brain mask on the same grid (non-zero = brain) where one exists.
fn every_method_keeps_the_invariants(landmark_file: &str, brain: Option<&str>) {
    let (rel, marks) = landmarks(landmark_file);
    let input: PathBuf = real(&rel);
    let is_dir = input.is_dir();
    let dir = scratch(&format!("heads-{landmark_file}"));
    let original = load_one(&input);
    let brain = brain.map(|b| load_one(&real(b)).voxels.frame_f32(0));
    let mut failures = Vec::new();
    for method in ["remove", "blur", "reface"] {
        let out = dir.join(if is_dir {
            format!("{method}-out")
        } else {
            format!("{method}.nii.gz")
        });
        let mask_path = dir.join(format!("{method}-mask.nii.gz"));
        let o = defacer(&[
            "deface",
            s(&input),
            "-o",
            s(&out),
            "--method",
            method,
            "--ears",
            "--margin",
            &MARGIN_MM.to_string(),
            "--mask-out",
            s(&mask_path),
        ]);
        assert!(o.status.success(), "{rel} {method}: {}", stderr(&o));
        let (written, mask) = (load_one(&out), load_one(&mask_path));

        // Header and geometry: the same array type and place in the world.
        assert_eq!(original.dims(), written.dims(), "{rel} {method}");
        assert_eq!(original.datatype(), written.datatype(), "{rel} {method}");
        assert_eq!(original.scaling, written.scaling, "{rel} {method}");
        let drift = (original.affine.0 - written.affine.0).amax();
        assert!(drift < 1e-6, "{rel} {method}: affine moved by {drift}");
        assert_eq!(
            original.slice_positions, written.slice_positions,
            "{rel} {method}: slices moved"
        );
        assert_eq!(mask.dims()[..3], original.dims()[..3], "{rel} {method}");
        let dm = (original.affine.0 - mask.affine.0).amax();
        assert!(dm < 1e-4, "{rel} {method}: mask affine differs by {dm}");
        // Tools that compare qform and sform codes (FSL) take the mask as on the input's grid.
        if let (Source::Nifti(a), Source::Nifti(b)) = (&original.source, &mask.source) {
            assert_eq!(
                a.geometry(),
                b.geometry(),
                "{rel} {method}: the mask's codes, quaternion or pixdim differ from the input's"
            );
        }

        let (changed, outside) = changes(&original, &written, &mask);
        assert_eq!(
            outside, 0,
            "{rel} {method}: voxels changed outside the mask"
        );
        assert!(
            changed.len() > 10_000,
            "{rel} {method}: only {} voxels changed",
            changed.len()
        );
        if let Some(brain) = &brain {
            let m = mask.voxels.frame_f32(0);
            let in_mask = brain
                .indexed_iter()
                .filter(|(ijk, &b)| b > 0.0 && m[*ijk] != 0.0)
                .count();
            let touched = changed
                .iter()
                .filter(|v| brain[[v[0], v[1], v[2]]] > 0.0)
                .count();
            assert_eq!(
                (in_mask, touched),
                (0, 0),
                "{rel} {method}: brain in mask, changed"
            );
        }
        // Through the slice positions: the tilted CT's slices are unevenly spaced.
        let map = original.voxel_map().expect("invertible");
        let changed_world: Vec<[f64; 3]> = changed
            .iter()
            .map(|v| map.to_world([v[0] as f64, v[1] as f64, v[2] as f64]))
            .collect();
        let nearest_change = |p: [f64; 3]| {
            changed_world
                .iter()
                .map(|&q| distance(p, q))
                .fold(f64::INFINITY, f64::min)
        };
        for (name, p) in &marks {
            let d = nearest_change(*p);
            eprintln!("{rel} {method}: {name} is {d:.1} mm from the nearest change");
            // A facial landmark sits on or in the face: the output must differ right there
            // (within one voxel diagonal of a 1 mm grid, or the slice thickness).
            let voxel_diag = original
                .affine
                .0
                .fixed_view::<3, 3>(0, 0)
                .column_iter()
                .map(|c| c.norm())
                .fold(0.0, f64::max);
            if FACIAL.contains(&name.as_str()) && d > voxel_diag.max(1.8) {
                failures.push(format!("{rel} {method}: {name} unchanged ({d:.1} mm)"));
            }
            if BRAIN.contains(&name.as_str()) && d < MARGIN_MM {
                failures.push(format!(
                    "{rel} {method}: brain landmark {name} only {d:.1} mm from a change"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn ch2() {
    every_method_keeps_the_invariants("ch2.json", Some("mri/ch2bet.nii.gz"));
}

#[test]
fn philips_mprage_t1() {
    every_method_keeps_the_invariants("philips_mprage_t1.json", None);
}

#[test]
fn siemens_t1_2d_hfs() {
    every_method_keeps_the_invariants("siemens_t1_2d_hfs.json", None);
}

#[test]
fn siemens_t1_2d_hfp() {
    every_method_keeps_the_invariants("siemens_t1_2d_hfp.json", None);
}

#[test]
fn t2w_partial_face() {
    every_method_keeps_the_invariants("t2w_partial_face.json", None);
}

#[test]
fn invesalius_ct_nifti() {
    every_method_keeps_the_invariants("invesalius_ct.json", None);
}

#[test]
fn invesalius_ct_dicom() {
    every_method_keeps_the_invariants("invesalius_ct_dicom.json", None);
}

/// Gantry tilt 18.5° and two slabs of different slice spacing: no single affine, so the mask
/// follows each slice's own position.
#[test]
fn ge_tilted_ct() {
    every_method_keeps_the_invariants("ge_tilted_ct.json", None);
}

/// A head three quarters of an adult's (a young child's size) is defaced with the template
/// fitted as for a child, and the command says so on stderr; an adult head gets no such
/// warning.
#[test]
fn a_small_head_is_defaced_with_a_warning() {
    let dir = scratch("small-head");
    let adult = real("mri/ch2.nii.gz");
    let small = dir.join("ch2_small.nii.gz");
    // the product keeps the input geometry when it writes, so nibabel makes the copy
    let script = "import sys, nibabel as nib, numpy as np\n\
                  i = nib.load(sys.argv[1]); a = i.affine.copy(); a[:3] *= 0.75\n\
                  nib.save(nib.Nifti1Image(np.asanyarray(i.dataobj), a, i.header), sys.argv[2])";
    let made = std::process::Command::new("python3")
        .args(["-c", script, s(&adult), s(&small)])
        .status()
        .expect("this test needs python3 with nibabel");
    assert!(made.success());
    assert!((load_one(&small).affine.0[(0, 0)].abs() - 0.75).abs() < 1e-6);
    let warning = "warning: the head is smaller than an adult's";
    for (input, warned) in [(&small, true), (&adult, false)] {
        let out = dir.join(format!("out_{warned}.nii.gz"));
        let o = defacer(&["deface", s(input), "-o", s(&out)]);
        let e = stderr(&o);
        assert!(o.status.success() && out.exists(), "{e}");
        assert_eq!(e.contains(warning), warned, "{}: {e}", input.display());
    }
}
