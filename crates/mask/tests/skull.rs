//! The skull in MRI: found where the phantom has bone, kept unless bone removal is asked for,
//! never at the cost of the face's soft tissue; and the space it encloses is protected like the
//! brain (a brain larger than the template's is still spared).

use defacer_mask::phantom::{Contrast, Phantom, PhantomHead, Tissue};
use defacer_mask::{plan, DefaceMask, DefaceOptions};
use defacer_testkit::real;
use defacer_volume::{load, Volume};
use ndarray::Array3;

fn count(a: &Array3<bool>) -> usize {
    a.iter().filter(|&&b| b).count()
}

fn overlap(a: &Array3<bool>, b: &Array3<bool>) -> usize {
    a.iter().zip(b.iter()).filter(|(&x, &y)| x && y).count()
}

fn plan_ok(v: &Volume, opts: &DefaceOptions, what: &str) -> DefaceMask {
    let m = plan(v, opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: removed {:.1} ml, warnings {:?}, timings {:?}",
        m.report.removed_ml, m.report.warnings, m.report.timings_ms
    );
    m
}

fn share(of: &Array3<bool>, within: &Array3<bool>) -> f64 {
    let n = count(of);
    assert!(n > 0, "empty reference");
    overlap(of, within) as f64 / n as f64
}

fn phantom_bone_check(ph: &PhantomHead, what: &str) {
    let truth = ph.voxels_of(Tissue::Bone);
    let keep = plan_ok(&ph.volume, &DefaceOptions::default(), what);
    let found = keep
        .bone
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no bone found: {:?}", keep.report.warnings));
    assert!(
        keep.report.warnings.iter().all(|w| !w.contains("bone")),
        "{what}: {:?}",
        keep.report.warnings
    );
    let both = overlap(&truth, found) as f64;
    let dice = 2.0 * both / (count(&truth) + count(found)) as f64;
    let coverage = both / count(&truth) as f64;
    let precision = both / count(found).max(1) as f64;
    eprintln!("{what}: bone Dice {dice:.3}, coverage {coverage:.3}, precision {precision:.3}");
    assert!(dice >= 0.7, "{what}: bone Dice {dice:.3}");

    // soft tissue only: not one phantom bone voxel changes, the face's soft tissue goes
    let bone_removed = overlap(&truth, &keep.face);
    assert_eq!(
        bone_removed, 0,
        "{what}: {bone_removed} bone voxels removed"
    );
    for t in [Tissue::Nose, Tissue::Lips] {
        let s = share(&ph.voxels_of(t), &keep.face);
        assert!(s >= 0.95, "{what}: {t:?} {s:.3} removed");
    }
    // the tops of the eyes lie under the frontal lobe, within the brain's margin
    let eyes = share(&ph.voxels_of(Tissue::Eye), &keep.face);
    assert!(eyes >= 0.5, "{what}: eyes {eyes:.3} removed");
    assert_eq!(overlap(&ph.brain, &keep.face), 0, "{what}: brain removed");

    // with bone removal the brain stays and nothing less goes (the phantom's skull is the
    // vault, within the brain's margin, so it has no facial bone to lose)
    let take = plan_ok(
        &ph.volume,
        &DefaceOptions::default().remove_bone(true),
        what,
    );
    assert_eq!(overlap(&ph.brain, &take.face), 0, "{what}: brain removed");
    assert!(take.report.removed_ml >= keep.report.removed_ml);
}

#[test]
fn phantom_skull_is_found_in_every_mri_contrast() {
    for c in [Contrast::T1, Contrast::T2, Contrast::Flair, Contrast::Pd] {
        let ph = Phantom::new(c).with_voxel_mm(1.5).build();
        phantom_bone_check(&ph, &format!("{c:?}"));
    }
}

#[test]
fn phantom_skull_is_found_when_oblique() {
    let ph = Phantom::new(Contrast::T1)
        .with_voxel_size([1.0, 1.0, 2.0])
        .with_rotation([15.0, -10.0, 20.0])
        .build();
    phantom_bone_check(&ph, "oblique T1");
}

fn load_one(rel: &str) -> Volume {
    let mut v = load(&[real(rel)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

#[test]
fn ch2_intracranial_space_holds_its_brain() {
    let ch2 = load_one("mri/ch2.nii.gz");
    let bet = load_one("mri/ch2bet.nii.gz");
    let brain = bet.frame_physical(0).mapv(|v| v > 0.0);
    let m = plan_ok(&ch2, &DefaceOptions::default(), "ch2");
    let ic = m.intracranial.as_ref().expect("ch2: skull not found");
    let held = share(&brain, ic);
    let ic_ml = count(ic) as f64 / 1000.0;
    let brain_ml = count(&brain) as f64 / 1000.0;
    eprintln!("ch2: intracranial {ic_ml:.0} ml holds {held:.4} of ch2bet ({brain_ml:.0} ml)");
    assert!(held >= 0.99, "intracranial space holds {held:.4} of ch2bet");
    // and it is the cranium, not the head: no more than a skull's worth beyond the brain
    assert!(ic_ml < 1.5 * brain_ml, "{ic_ml} ml");
}

/// Mean of the physical values over a mask.
fn mean_over(v: &Array3<f32>, m: &Array3<bool>) -> f64 {
    let (s, n) = v
        .iter()
        .zip(m.iter())
        .filter(|(_, &b)| b)
        .fold((0.0, 0usize), |(s, n), (&x, _)| (s + x as f64, n + 1));
    s / n.max(1) as f64
}

#[test]
fn real_mri_keeps_only_a_thin_dark_band_of_facial_bone() {
    // (volume, whether the skull must be found: all of them, the 4.8 mm sagittal slices of the
    // Siemens heads and the T2 head included)
    for (rel, resolved) in [
        ("mri/ch2.nii.gz", true),
        ("mri/philips_mprage_t1", true),
        ("mri/t2w_partial_face.nii.gz", true),
        ("mri/siemens_t1_2d_hfs", true),
        ("mri/siemens_t1_2d_hfp", true),
    ] {
        let v = load_one(rel);
        let keep = plan_ok(&v, &DefaceOptions::default(), rel);
        let take = plan_ok(&v, &DefaceOptions::default().remove_bone(true), rel);
        if keep.bone.is_none() {
            assert!(!resolved, "{rel}: skull not found");
            // the safe fallback: bone goes with the soft tissue, and the user is told
            assert_eq!(keep.face, take.face, "{rel}: bone kept though not found");
            assert!(
                keep.report.warnings.iter().any(|w| w.contains("bone")),
                "{rel}: {:?}",
                keep.report.warnings
            );
            continue;
        }
        assert_eq!(overlap(&keep.face, &keep.protected), 0);
        assert_eq!(overlap(&take.face, &take.protected), 0);
        // keeping bone only ever keeps more
        let extra = keep
            .face
            .iter()
            .zip(take.face.iter())
            .filter(|(&k, &t)| k && !t)
            .count();
        assert_eq!(
            extra, 0,
            "{rel}: soft-tissue mode removes what bone mode keeps"
        );
        let kept = take.face.clone() & &keep.face.mapv(|b| !b);
        let phys = v.frame_physical(0);
        let kept_mean = mean_over(&phys, &kept);
        // the face region also holds air in front of the face: compare with tissue only
        let removed_tissue = keep.face.clone() & &keep.head;
        let removed_mean = mean_over(&phys, &removed_tissue);
        let share_kept = count(&kept) as f64 / count(&take.face).max(1) as f64;
        eprintln!(
            "{rel}: removes {:.0} ml (bone too: {:.0} ml); keeps {:.1}% of the region as bone, \
             mean {kept_mean:.1} against {removed_mean:.1} removed",
            keep.report.removed_ml,
            take.report.removed_ml,
            share_kept * 100.0
        );
        assert!(count(&kept) > 0, "{rel}: no facial bone kept");
        // bone is dark in MRI: what is kept is far darker than the soft tissue removed
        assert!(
            kept_mean < 0.5 * removed_mean,
            "{rel}: kept mean {kept_mean:.1}, removed {removed_mean:.1}"
        );
        // a band, not the face: most of the region still goes
        assert!(
            share_kept < 0.3,
            "{rel}: {share_kept:.3} of the region kept"
        );
    }
}

/// Planning once on the working grid and drawing the native masks with and without facial bone
/// gives what two separate plans give (the working-grid half does not depend on keeping bone),
/// and on a real MRI whose skull is found the two differ: the bone is kept in one only.
#[test]
fn ch2_working_plan_gives_both_bone_choices_of_plan() {
    let v = load(&[real("mri/ch2.nii.gz")])
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let opts = DefaceOptions::default().ears(true);
    let working = defacer_mask::WorkingPlan::new(&v, &opts).unwrap_or_else(|e| panic!("ch2: {e}"));
    assert!(working.bone_found(), "ch2: the skull is not found");
    for remove_bone in [false, true] {
        let what = format!("ch2 remove_bone={remove_bone}");
        let separate = plan_ok(&v, &opts.clone().remove_bone(remove_bone), &what);
        let drawn = working.native(remove_bone);
        assert_eq!(drawn.face, separate.face, "{what}: face");
        assert_eq!(drawn.ears, separate.ears, "{what}: ears");
        assert_eq!(drawn.protected, separate.protected, "{what}: protected");
        assert_eq!(drawn.bone, separate.bone, "{what}: bone");
        assert_eq!(drawn.report.warnings, separate.report.warnings, "{what}");
    }
    let keep = working.native(false);
    let remove = working.native(true);
    assert!(
        count(&remove.face) > count(&keep.face),
        "ch2: removing facial bone removes nothing more"
    );
}
