//! `defacer check` on real heads: it finds the faces, finds none after `deface`, and is not
//! fooled by a defacing that only takes the nose.

mod support;
use support::{defacer, out, s};

use defacer_testkit::{real, scratch, workspace_root};
use defacer_volume::{load, save, SaveOptions};

/// Heads whose whole face (eyes, nose, mouth) is in the field of view.
const FULL_FACES: [&str; 4] = [
    "mri/philips_mprage_t1",
    "mri/siemens_t1_2d_hfs",
    "mri/siemens_t1_2d_hfp",
    "ct/invesalius_ct.nii.gz",
];

#[test]
fn faces_are_found_in_the_originals() {
    for head in FULL_FACES {
        let o = defacer(&["check", s(&real(head))]);
        assert_eq!(o.status.code(), Some(1), "{head}: {}", out(&o));
        assert!(out(&o).contains("FACE FOUND"), "{head}: {}", out(&o));
    }
}

#[test]
fn a_brain_without_a_head_has_no_face() {
    let o = defacer(&["check", "--json", s(&real("mri/ch2bet.nii.gz"))]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["face_found"], false);
    assert_eq!(v[0]["views"].as_array().map(|a| a.len()), Some(21));
}

#[test]
fn no_face_is_found_after_remove() {
    let dir = scratch("check-remove");
    for head in FULL_FACES.iter().chain(&["mri/ch2.nii.gz"]) {
        let name = head.replace('/', "_");
        let defaced = dir.join(name);
        let o = defacer(&["deface", s(&real(head)), "-o", s(&defaced)]);
        assert!(o.status.success(), "{head}: {}", out(&o));
        let o = defacer(&["check", s(&defaced)]);
        assert_eq!(o.status.code(), Some(0), "{head} defaced: {}", out(&o));
    }
}

#[test]
fn no_face_is_found_after_blur_or_reface() {
    let dir = scratch("check-methods");
    for head in [
        "mri/philips_mprage_t1",
        "mri/siemens_t1_2d_hfs",
        "ct/invesalius_ct.nii.gz",
    ] {
        for method in ["blur", "reface"] {
            let defaced = dir.join(format!("{method}-{}", head.replace('/', "_")));
            let o = defacer(&[
                "deface",
                s(&real(head)),
                "-o",
                s(&defaced),
                "--method",
                method,
            ]);
            assert!(o.status.success(), "{head} {method}: {}", out(&o));
            let o = defacer(&["check", s(&defaced)]);
            assert_eq!(o.status.code(), Some(0), "{head} {method}: {}", out(&o));
        }
    }
}

#[test]
fn removing_only_the_nose_still_shows_a_face() {
    // The nose tip of the Philips head, placed by hand (testdata/landmarks).
    let lm: serde_json::Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("testdata/landmarks/philips_mprage_t1.json"))
            .expect("landmarks"),
    )
    .expect("json");
    let tip: Vec<f64> = lm["landmarks"]["nose_tip"]["ras"]
        .as_array()
        .expect("nose tip")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let mut vol = load(&[real("mri/philips_mprage_t1")])
        .expect("loads")
        .remove(0);
    let [nx, ny, nz, _] = vol.dims();
    let affine = vol.affine;
    // Everything within 30 mm of the nose tip becomes air: the nose goes, eyes and mouth stay.
    let nose = ndarray::Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        let w = affine.voxel_to_world([i as f64, j as f64, k as f64]);
        (0..3).map(|a| (w[a] - tip[a]).powi(2)).sum::<f64>().sqrt() < 30.0
    });
    assert!(nose.iter().filter(|&&m| m).count() > 50_000);
    vol.voxels.fill(&nose.view(), 0.0);
    let dir = scratch("check-nose-only");
    save(&vol, &dir.join("nose-only"), &SaveOptions::default()).expect("saves");
    let o = defacer(&["check", s(&dir.join("nose-only"))]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
}
