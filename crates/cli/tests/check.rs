//! `defacer check` on real heads: it finds the faces and their relief, finds neither after
//! `deface` with any method, and is not fooled by a defacing that only takes the nose or cuts
//! a plane in front of the eyes and the mouth.

mod support;
use support::{defacer, out, s};

use defacer_testkit::{real, scratch, workspace_root};
use defacer_volume::{load, save, Affine, SaveOptions, Volume};
use std::path::{Path, PathBuf};

/// Heads whose whole face (eyes, nose, mouth) is in the field of view.
const FULL_FACES: [&str; 4] = [
    "mri/philips_mprage_t1",
    "mri/siemens_t1_2d_hfs",
    "mri/siemens_t1_2d_hfp",
    "ct/invesalius_ct.nii.gz",
];

/// `defacer check --json` on one volume: exit code and its verdict object.
fn check_json(path: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let o = defacer(&["check", "--json", s(path)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", path.display(), out(&o)));
    (o.status.code(), v[0].clone())
}

/// Landmark name → relief (mm), for messages.
fn reliefs(v: &serde_json::Value) -> String {
    let r = &v["residuals"];
    let cells: Vec<String> = r["landmarks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    let mm = l["relief_mm"].as_f64().unwrap_or(f64::NAN);
                    format!("{} {mm:.1}", l["name"].as_str().unwrap_or("?"))
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "face_found {} large_residual {} relief [{}]",
        v["face_found"],
        r["large_residual"],
        cells.join(", ")
    )
}

#[test]
fn faces_and_their_relief_are_found_in_the_originals() {
    for head in FULL_FACES {
        let (code, v) = check_json(&real(head));
        eprintln!("{head}: {}", reliefs(&v));
        assert_eq!(code, Some(1), "{head}: {}", reliefs(&v));
        assert_eq!(v["face_found"], true, "{head}: {}", reliefs(&v));
        assert_eq!(v["residuals"]["eye_hollows_counted"], true, "{head}");
        assert_eq!(
            v["residuals"]["large_residual"],
            true,
            "{head}: {}",
            reliefs(&v)
        );
    }
}

#[test]
fn a_brain_without_a_head_has_no_face() {
    let o = defacer(&["check", "--json", s(&real("mri/ch2bet.nii.gz"))]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["face_found"], false);
    assert_eq!(v[0]["views"].as_array().map(|a| a.len()), Some(21));
    // The template's eyes land on the undersides of the frontal lobes, two hollows: with no
    // skull around the brain they are not counted as a face, and the report says so.
    assert_eq!(
        v[0]["residuals"]["eye_hollows_counted"],
        false,
        "{}",
        out(&o)
    );
    assert_eq!(v[0]["residuals"]["large_residual"], false, "{}", out(&o));
    assert!(
        v[0]["landmarks_note"]
            .as_str()
            .is_some_and(|n| n.contains("no skull")),
        "{}",
        out(&o)
    );
}

/// An adult's head whose skull is not traced (here the T2 head with its dark band, bone and
/// sinus air, filled with its tissue's median; in practice an MRI whose frontal bone is not
/// dark, or a craniotomy) is still a head: its eye sockets count as a face. The T2 head's
/// nose is cut by its field of view, so the eyes are all there is to measure, and before
/// they counted here `check` passed the intact face. After `deface` they are gone.
#[test]
fn eyes_count_on_an_adult_head_whose_skull_is_not_found() {
    let mut vol = load(&[real("mri/t2w_partial_face.nii.gz")])
        .expect("loads")
        .remove(0);
    let plan = defacer_mask::plan(&vol, &defacer_mask::DefaceOptions::default()).expect("plans");
    assert!(
        plan.bone.is_some(),
        "premise: the original's skull is found"
    );
    let values = vol.frame_physical(0);
    let mut tissue: Vec<f32> = values
        .iter()
        .zip(&plan.head)
        .filter(|(_, &h)| h)
        .map(|(&v, _)| v)
        .collect();
    let mid = tissue.len() / 2;
    let median = *tissue.select_nth_unstable_by(mid, f32::total_cmp).1;
    let dark = ndarray::Zip::from(&values)
        .and(&plan.head)
        .map_collect(|&v, &h| h && v < 0.6 * median);
    vol.voxels
        .fill(&dark.view(), vol.scaling.to_stored(median as f64));
    let dir = scratch("check-no-skull");
    let file = dir.join("t2_no_skull.nii.gz");
    save(&vol, &file, &SaveOptions::default()).expect("saves");

    let (code, v) = check_json(&file);
    eprintln!("no skull: {}", reliefs(&v));
    let note = v["landmarks_note"].as_str().unwrap_or_default().to_string();
    assert!(note.contains("no skull found"), "premise: {note}");
    assert_eq!(v["residuals"]["eye_hollows_counted"], true, "{note}");
    assert_eq!(v["residuals"]["large_residual"], true, "{}", reliefs(&v));
    assert_eq!(code, Some(1), "{}", reliefs(&v));

    let defaced = dir.join("t2_no_skull_defaced.nii.gz");
    let o = defacer(&["deface", s(&file), "-o", s(&defaced)]);
    assert!(o.status.success(), "{}", out(&o));
    let (code, v) = check_json(&defaced);
    eprintln!("no skull, defaced: {}", reliefs(&v));
    assert_eq!(v["residuals"]["eye_hollows_counted"], true);
    assert_eq!(v["residuals"]["large_residual"], false, "{}", reliefs(&v));
    assert_eq!(code, Some(0), "{}", reliefs(&v));
}

#[test]
fn no_face_is_found_after_remove() {
    let dir = scratch("check-remove");
    for head in FULL_FACES.iter().chain(&["mri/ch2.nii.gz"]) {
        let name = head.replace('/', "_");
        let defaced = dir.join(name);
        let o = defacer(&["deface", s(&real(head)), "-o", s(&defaced)]);
        assert!(o.status.success(), "{head}: {}", out(&o));
        let (code, v) = check_json(&defaced);
        eprintln!("{head} remove: {}", reliefs(&v));
        assert_eq!(code, Some(0), "{head} defaced: {}", reliefs(&v));
        assert_eq!(v["residuals"]["large_residual"], false, "{}", reliefs(&v));
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
            let (code, v) = check_json(&defaced);
            eprintln!("{head} {method}: {}", reliefs(&v));
            assert_eq!(code, Some(0), "{head} {method}: {}", reliefs(&v));
            assert_eq!(v["residuals"]["large_residual"], false, "{}", reliefs(&v));
        }
    }
}

/// A hand-placed landmark of the Philips head (testdata/landmarks).
fn philips_landmark(name: &str) -> Vec<f64> {
    let lm: serde_json::Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("testdata/landmarks/philips_mprage_t1.json"))
            .expect("landmarks"),
    )
    .expect("json");
    lm["landmarks"][name]["ras"]
        .as_array()
        .expect(name)
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[test]
fn a_plane_cut_in_front_of_the_eyes_and_mouth_leaves_a_large_residual() {
    // Everything 2 mm in front of the upper lip goes: the front of the nose, nothing else.
    let plane_y = philips_landmark("upper_lip")[1] + 2.0;
    let mut vol = load(&[real("mri/philips_mprage_t1")])
        .expect("loads")
        .remove(0);
    let [nx, ny, nz, _] = vol.dims();
    let affine = vol.affine;
    let front = ndarray::Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        affine.voxel_to_world([i as f64, j as f64, k as f64])[1] > plane_y
    });
    vol.voxels.fill(&front.view(), 0.0);
    let dir = scratch("check-plane-cut");
    save(&vol, &dir.join("plane"), &SaveOptions::default()).expect("saves");
    let (code, v) = check_json(&dir.join("plane"));
    eprintln!("plane cut: {}", reliefs(&v));
    assert_eq!(code, Some(1), "{}", reliefs(&v));
    assert_eq!(v["residuals"]["large_residual"], true, "{}", reliefs(&v));
}

#[test]
fn removing_only_the_nose_still_shows_a_face() {
    let tip = philips_landmark("nose_tip");
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
    // The eyes are still in their sockets, whatever the detector says.
    assert!(out(&o).contains("LARGE RESIDUAL"), "{}", out(&o));
}

/// A header that turns the head half way round (the face looking back): `check` looks at the
/// head as it fits and finds the face, `deface` removes it where the voxels show it and says
/// the header is probably wrong, and `check` then finds no face.
#[test]
fn a_head_whose_header_turns_it_round_is_checked_and_defaced_as_it_lies() {
    let mut half_turn = Affine::identity();
    half_turn.0[(0, 0)] = -1.0;
    half_turn.0[(1, 1)] = -1.0;
    let dir = scratch("check-turned-header");
    let original = with_wrong_header("mri/ch2.nii.gz", &half_turn, &dir.join("turned.nii.gz"));

    let (code, v) = check_json(&original);
    eprintln!("turned: {} {}", reliefs(&v), v["landmarks_note"]);
    assert_eq!(code, Some(1), "{}", reliefs(&v));
    assert_eq!(v["face_found"], true, "{}", reliefs(&v));
    assert_header_doubted(&v);

    let defaced = dir.join("defaced.nii.gz");
    let o = defacer(&["deface", s(&original), "-o", s(&defaced)]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("header's orientation is probably wrong"),
        "{}",
        out(&o)
    );
    let (code, v) = check_json(&defaced);
    eprintln!("turned, defaced: {}", reliefs(&v));
    assert_eq!(code, Some(0), "{}", reliefs(&v));
    assert_eq!(v["face_found"], false, "{}", reliefs(&v));
    assert_eq!(v["residuals"]["large_residual"], false, "{}", reliefs(&v));
}

/// A part of a head whose header turns it upside down (the partial T2 slab, its world's z
/// flipped, as a converter that reverses the slice order writes it) fits the template as it
/// lies closely enough to pass (3.0 mm): `check` used to look at it so and report no face and
/// no facial relief, a clean bill for an intact face. It must look at the head as it fits
/// with its axes turned, say the header is probably wrong, and not pass it.
#[test]
fn a_partial_head_upside_down_in_its_header_is_not_passed_by_check() {
    let mut upside_down = Affine::identity();
    upside_down.0[(2, 2)] = -1.0;
    let dir = scratch("check-upside-down-slab");
    let file = with_wrong_header(
        "mri/t2w_partial_face.nii.gz",
        &upside_down,
        &dir.join("upside_down.nii.gz"),
    );
    let (code, v) = check_json(&file);
    eprintln!("upside down: {} {}", reliefs(&v), v["landmarks_note"]);
    assert_eq!(code, Some(1), "{}", reliefs(&v));
    assert_header_doubted(&v);
}

/// The real volume `rel` with its world turned by `wrong` (the voxels unchanged), saved as
/// `file`.
fn with_wrong_header(rel: &str, wrong: &Affine, file: &Path) -> PathBuf {
    let vol = load(&[real(rel)]).expect("loads").remove(0);
    let misplaced = Volume::synthetic(
        vol.voxels.clone(),
        Affine(wrong.0 * vol.affine.0),
        vol.scaling,
        vol.modality,
    );
    save(&misplaced, file, &SaveOptions::default()).expect("saves");
    file.to_path_buf()
}

/// The check report says the header's orientation is probably wrong.
fn assert_header_doubted(v: &serde_json::Value) {
    assert!(
        v["landmarks_note"]
            .as_str()
            .is_some_and(|n| n.contains("header's orientation is probably wrong")),
        "{}",
        v["landmarks_note"]
    );
}
