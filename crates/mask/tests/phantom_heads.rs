//! The synthetic head knows every voxel's tissue: the face features must go, the brain must
//! stay, for every contrast and orientation.

use defacer_mask::phantom::{Contrast, Phantom, PhantomHead, Tissue};
use defacer_mask::{plan, DefaceOptions};
use ndarray::Array3;

fn share_removed(ph: &PhantomHead, removal: &Array3<bool>, t: Tissue) -> f64 {
    let of = ph.voxels_of(t);
    let n = of.iter().filter(|&&b| b).count();
    assert!(n > 0, "{t:?} is not in the phantom's field of view");
    of.iter()
        .zip(removal.iter())
        .filter(|(&a, &b)| a && b)
        .count() as f64
        / n as f64
}

fn check(ph: &PhantomHead, what: &str) {
    let m = plan(&ph.volume, &DefaceOptions::default().ears(true))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let removal = m.removal();
    eprintln!(
        "{what}: {:?} fit {:.2} mm {:?}",
        m.report.timings_ms, m.report.fit_mean_distance_mm, m.report.fit_matrix
    );
    let touched = ph
        .brain
        .iter()
        .zip(removal.iter())
        .filter(|(&b, &r)| b && r)
        .count();
    assert_eq!(touched, 0, "{what}: {touched} brain voxels in the removal");
    let nose = share_removed(ph, &removal, Tissue::Nose);
    let lips = share_removed(ph, &removal, Tissue::Lips);
    let eyes = share_removed(ph, &removal, Tissue::Eye);
    let ears = share_removed(ph, &removal, Tissue::Ear);
    eprintln!(
        "{what}: nose {nose:.3} lips {lips:.3} eyes {eyes:.3} ears {ears:.3}, fit {:.2} mm, {:.0} ms",
        m.report.fit_mean_distance_mm, m.report.timings_ms.total
    );
    assert!(nose >= 0.95, "{what}: nose {nose}");
    assert!(lips >= 0.95, "{what}: lips {lips}");
    // the tops of the eyes lie under the frontal lobe, within the brain's margin
    assert!(eyes >= 0.5, "{what}: eyes {eyes}");
    assert!(ears >= 0.8, "{what}: ears {ears}");
    // soft tissue is removed but CT keeps bone unless asked
    if ph.volume.modality == defacer_volume::Modality::Ct {
        assert_eq!(
            share_removed(ph, &removal, Tissue::Bone),
            0.0,
            "{what}: bone removed"
        );
        let holder = ph.voxels_of(Tissue::Holder);
        let in_head = holder
            .iter()
            .zip(m.head.iter())
            .filter(|(&a, &b)| a && b)
            .count();
        assert_eq!(in_head, 0, "{what}: head holder taken for head");
    }
}

#[test]
fn every_contrast_loses_its_face_and_keeps_its_brain() {
    for c in [
        Contrast::T1,
        Contrast::T2,
        Contrast::Flair,
        Contrast::Pd,
        Contrast::Ct,
    ] {
        let ph = Phantom::new(c).with_voxel_mm(2.0).build();
        check(&ph, &format!("{c:?}"));
    }
}

#[test]
fn any_axis_order_and_direction() {
    let orders = [
        [(0, true), (1, false), (2, false)],  // LAS
        [(1, false), (2, false), (0, false)], // ASR (sagittal stack)
        [(2, true), (0, false), (1, true)],   // coronal-ish, flipped
        [(0, true), (1, true), (2, false)],   // LPS (DICOM-like)
    ];
    for (n, ax) in orders.into_iter().enumerate() {
        let ph = Phantom::new(Contrast::T1)
            .with_voxel_mm(2.0)
            .with_axes(ax)
            .build();
        check(
            &ph,
            &format!("axes {n} {}", ph.volume.affine.orientation_codes()),
        );
    }
}

#[test]
fn oblique_and_thick_slices() {
    for rot in [
        [25.0, 0.0, 0.0],
        [0.0, -20.0, 0.0],
        [0.0, 0.0, 30.0],
        [-15.0, 15.0, 10.0],
    ] {
        let ph = Phantom::new(Contrast::T2)
            .with_voxel_mm(2.0)
            .with_rotation(rot)
            .build();
        check(&ph, &format!("rotation {rot:?}"));
    }
    let thick = Phantom::new(Contrast::T1)
        .with_voxel_size([1.0, 1.0, 4.8])
        .with_axes([(1, false), (2, false), (0, false)])
        .build();
    check(&thick, "4.8 mm sagittal slices");
}

#[test]
fn ct_bone_is_removed_only_when_asked() {
    let ph = Phantom::new(Contrast::Ct).with_voxel_mm(2.0).build();
    let keep = plan(&ph.volume, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let take = plan(&ph.volume, &DefaceOptions::default().remove_bone(true))
        .unwrap_or_else(|e| panic!("{e}"));
    // the phantom has no facial bones: removing bone must not remove less
    assert!(take.report.removed_ml >= keep.report.removed_ml);
    // CT air is −1000 HU, stored with the −1024 intercept as 24
    assert_eq!(keep.fill_value_stored, 24.0);
    for m in [&keep, &take] {
        let touched = ph
            .brain
            .iter()
            .zip(m.face.iter())
            .filter(|(&b, &r)| b && r)
            .count();
        assert_eq!(touched, 0);
    }
}

#[test]
fn mri_fill_value_is_the_background() {
    let ph = Phantom::new(Contrast::T1).with_voxel_mm(2.5).build();
    let m = plan(&ph.volume, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    // phantom background is |noise| around 0 (stored ×10): the fill is within the noise
    assert!(m.fill_value_stored.abs() < 60.0, "{}", m.fill_value_stored);
}

#[test]
fn a_ball_is_not_a_head() {
    use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
    use ndarray::{Array4, ShapeBuilder};
    let n = 100;
    let a = Array4::from_shape_fn((n, n, n, 1).f(), |(i, j, k, _)| {
        let r2 = [i, j, k]
            .iter()
            .map(|&x| (x as f64 - 50.0).powi(2))
            .sum::<f64>();
        if r2 < 45.0f64.powi(2) {
            100i16
        } else {
            0
        }
    });
    let mut aff = Affine::identity();
    aff.0[(0, 0)] = 2.0;
    aff.0[(1, 1)] = 2.0;
    aff.0[(2, 2)] = 2.0;
    let v = Volume::synthetic(Voxels::I16(a), aff, Scaling::IDENTITY, Modality::Mr);
    let r = plan(&v, &DefaceOptions::default());
    if let Ok(m) = &r {
        eprintln!("{:#?}", m.report);
    }
    let e = r.expect_err("a ball must be refused");
    assert!(e.to_string().contains("fit"), "{e}");
}
