//! Plans on real head volumes: the brain is never in the removal region, the removal is of a
//! plausible size, and the fit is good.

use defacer_mask::{plan, DefaceMask, DefaceOptions};
use defacer_testkit::real;
use defacer_volume::{load, Volume};
use ndarray::Array3;

fn load_one(rel: &str) -> Volume {
    let mut v = load(&[real(rel)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn count(a: &Array3<bool>) -> usize {
    a.iter().filter(|&&b| b).count()
}

fn overlap(a: &Array3<bool>, b: &Array3<bool>) -> usize {
    a.iter().zip(b.iter()).filter(|(&x, &y)| x && y).count()
}

fn plan_ok(v: &Volume, opts: &DefaceOptions) -> DefaceMask {
    let m = plan(v, opts).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}: {:#?}", v.path().display(), m.report);
    m
}

#[test]
fn ch2_removal_never_touches_the_brain() {
    let ch2 = load_one("mri/ch2.nii.gz");
    let bet = load_one("mri/ch2bet.nii.gz");
    let brain = bet.frame_physical(0).mapv(|v| v > 0.0);
    assert!(count(&brain) > 1_000_000, "ch2bet brain mask looks empty");
    let m = plan_ok(&ch2, &DefaceOptions::default().ears(true));
    let removal = m.removal();
    assert_eq!(
        overlap(&removal, &brain),
        0,
        "removal touches ch2bet's brain"
    );
    assert_eq!(overlap(&m.protected, &removal), 0);
    // ch2 shows eyes and nose: a face region of a few hundred ml (not the whole head, not nothing)
    assert!(
        (150.0..1200.0).contains(&m.report.removed_ml),
        "removed {} ml",
        m.report.removed_ml
    );
    assert!(m.report.fit_mean_distance_mm < 3.0);
    // the brain protection is at least the margin (distance is measured conservatively)
    let d = m
        .report
        .min_distance_to_brain_mm
        .expect("something removed");
    assert!(d >= 10.0 - 1e-9, "{d}");
    // the nose and lower eyes, well in front of the brain (MNI world: |x| < 40, y > 75,
    // −60 < z < −38; higher up the orbits sit under the frontal lobes, within the margin),
    // are removed
    let (front, removed) = front_of_face(&ch2, &m, &removal);
    assert!(front > 3000, "{front} head voxels in front of the face");
    assert!(
        removed as f64 >= 0.95 * front as f64,
        "{removed} of {front} removed"
    );
}

/// Head voxels of ch2 in the eye/nose box (MNI world), and how many of them are removed.
fn front_of_face(v: &Volume, m: &DefaceMask, removal: &Array3<bool>) -> (usize, usize) {
    let (mut front, mut removed) = (0, 0);
    for ((i, j, k), &h) in m.head.indexed_iter() {
        let w = v.affine.voxel_to_world([i as f64, j as f64, k as f64]);
        if h && w[0].abs() < 40.0 && w[1] > 75.0 && w[2] > -60.0 && w[2] < -38.0 {
            front += 1;
            removed += removal[[i, j, k]] as usize;
        }
    }
    (front, removed)
}
