//! The face check on real heads: faces are found where there are faces, and not on a bare
//! brain or on heads whose face was cut off.

use defacer_check::{
    check_volume, residuals, CheckOptions, CheckReport, Landmark, ResidualOptions, Residuals,
};
use defacer_render::{RenderOptions, SkinScene};
use defacer_volume::Volume;

fn load(rel: &str) -> Volume {
    defacer_volume::load(&[defacer_testkit::real(rel)])
        .expect("real volume loads")
        .remove(0)
}

/// Sets everything anterior of the coronal plane `y = plane_mm` (world) to the lowest stored
/// value: a crude defacing.
fn cut_anterior_of(vol: &Volume, plane_mm: f64) -> Volume {
    let stored = vol.voxels.frame_f32(0);
    let air = stored.iter().copied().fold(f32::INFINITY, f32::min);
    let mask = ndarray::Array3::from_shape_fn(stored.dim(), |(i, j, k)| {
        vol.affine.voxel_to_world([i as f64, j as f64, k as f64])[1] > plane_mm
    });
    let mut out = vol.clone();
    out.voxels.fill(&mask.view(), air as f64);
    out
}

fn summary(name: &str, r: &CheckReport) -> String {
    let best: Vec<String> = r
        .views
        .iter()
        .filter_map(|v| {
            v.detections
                .first()
                .map(|d| format!("({},{}):{:.2}", v.yaw, v.pitch, d.confidence))
        })
        .collect();
    format!(
        "{name}: face in {}/{} views {:?}, max facial relief {:.1} mm",
        r.views_with_face,
        r.views.len(),
        best,
        r.residuals.max_relief_mm
    )
}

/// Colin27's eyes: the centroids of the vitreous lie at y ≈ +59 mm (MNI).
const CH2_EYES_Y: f64 = 59.3;

#[test]
fn finds_the_face_of_colin27_and_not_after_a_cut_through_the_eyes() {
    let vol = load("mri/ch2.nii.gz");
    let opts = CheckOptions::default();
    let intact = check_volume(&vol, &opts).unwrap();
    eprintln!("{}", summary("ch2", &intact));
    assert!(intact.face_found, "{}", summary("ch2", &intact));
    let cut = check_volume(&cut_anterior_of(&vol, CH2_EYES_Y), &opts).unwrap();
    eprintln!("{}", summary("ch2 cut through the eyes", &cut));
    assert!(!cut.face_found, "{}", summary("ch2 cut", &cut));
}

/// The hand-placed facial landmarks of a test head (`testdata/landmarks`), which were placed
/// on the original volume independently of this crate.
fn hand_landmarks(name: &str) -> Vec<Landmark> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/landmarks")
        .join(format!("{name}.json"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("landmarks")).expect("json");
    ["nose_tip", "upper_lip", "chin", "eye_left", "eye_right"]
        .iter()
        .filter_map(|n| {
            let ras = json["landmarks"][n]["ras"].as_array()?;
            let p: Vec<f64> = ras.iter().filter_map(|v| v.as_f64()).collect();
            Some(Landmark {
                name: n.to_string(),
                world_mm: [p[0], p[1], p[2]],
            })
        })
        .collect()
}

fn residuals_of(vol: &Volume, landmarks: &[Landmark]) -> Residuals {
    let scene = SkinScene::new(vol, &RenderOptions::default()).unwrap();
    residuals::measure(&scene, landmarks, &ResidualOptions::default())
}

fn relief(r: &Residuals, name: &str) -> f64 {
    r.landmarks
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.relief_mm)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
}

/// Sets everything within `radius` mm of `centre` to the lowest stored value.
fn remove_ball(vol: &Volume, centre: [f64; 3], radius: f64) -> Volume {
    let stored = vol.voxels.frame_f32(0);
    let air = stored.iter().copied().fold(f32::INFINITY, f32::min);
    let mask = ndarray::Array3::from_shape_fn(stored.dim(), |(i, j, k)| {
        let w = vol.affine.voxel_to_world([i as f64, j as f64, k as f64]);
        (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum::<f64>() < radius * radius
    });
    let mut out = vol.clone();
    out.voxels.fill(&mask.view(), air as f64);
    out
}

#[test]
fn facial_relief_is_large_on_a_face_and_gone_after_a_cut_but_not_after_a_nose_only_removal() {
    let vol = load("mri/philips_mprage_t1");
    let lm = hand_landmarks("philips_mprage_t1");
    assert_eq!(lm.len(), 5);
    let large = ResidualOptions::default().large_relief_mm;

    let intact = residuals_of(&vol, &lm);
    eprintln!("intact: {intact:?}");
    assert!(intact.large_residual);
    // A nose stands well out of the face, eyes lie in sockets.
    assert!(relief(&intact, "nose_tip") > 2.0 * large, "{intact:?}");
    assert!(relief(&intact, "eye_left") > large, "{intact:?}");
    assert!(relief(&intact, "eye_right") > large, "{intact:?}");
    assert_eq!(intact.nose_prominence_mm, Some(relief(&intact, "nose_tip")));

    // Everything in front of the eyes' centres gone: what is left is a cut, not a face.
    let eyes_y = lm.iter().find(|l| l.name == "eye_left").unwrap().world_mm[1];
    let cut = residuals_of(&cut_anterior_of(&vol, eyes_y), &lm);
    eprintln!("cut through the eyes: {cut:?}");
    assert!(!cut.large_residual, "{cut:?}");
    assert!(cut.max_relief_mm < large / 2.0, "{cut:?}");

    // Only the nose gone: eyes (and lips) still show.
    let tip = lm.iter().find(|l| l.name == "nose_tip").unwrap().world_mm;
    let nose_only = residuals_of(&remove_ball(&vol, tip, 30.0), &lm);
    eprintln!("nose only: {nose_only:?}");
    assert!(nose_only.large_residual, "{nose_only:?}");
    assert!(relief(&nose_only, "eye_left") > large, "{nose_only:?}");
}

#[test]
fn no_face_on_a_bare_brain() {
    let report = check_volume(&load("mri/ch2bet.nii.gz"), &CheckOptions::default()).unwrap();
    eprintln!("{}", summary("ch2bet", &report));
    assert!(!report.face_found, "{}", summary("ch2bet", &report));
}

#[test]
fn finds_full_faces_in_mri_and_ct() {
    for rel in ["mri/philips_mprage_t1", "ct/invesalius_ct.nii.gz"] {
        let report = check_volume(&load(rel), &CheckOptions::default()).unwrap();
        eprintln!("{}", summary(rel, &report));
        assert!(report.face_found, "{}", summary(rel, &report));
        // A full face is seen from most of the viewpoints, not by luck in one.
        assert!(
            report.views_with_face * 2 > report.views.len(),
            "{}",
            summary(rel, &report)
        );
    }
}

#[test]
fn report_serialises_and_renders_are_written() {
    let dir = defacer_testkit::scratch("check-renders");
    let opts = CheckOptions {
        views: vec![defacer_render::View::FRONT],
        renders_dir: Some(dir.clone()),
        ..CheckOptions::default()
    };
    let report = check_volume(&load("mri/ch2.nii.gz"), &opts).unwrap();
    assert_eq!(report.renders_written.len(), 1);
    let img = image::open(&report.renders_written[0]).unwrap().to_luma8();
    assert_eq!(img.width(), opts.render.size);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["views"][0]["yaw"], 0.0);
    assert!(json["face_found"].is_boolean());
    let again = check_volume(
        &load("mri/ch2.nii.gz"),
        &CheckOptions {
            renders_dir: None,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&again.views).unwrap(),
        serde_json::to_string(&report.views).unwrap(),
        "the check is not deterministic"
    );
}
