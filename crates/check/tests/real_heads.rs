//! The face check on real heads: faces are found where there are faces, and not on a bare
//! brain or on heads whose face was cut off.

use defacer_check::{check_volume, CheckOptions, CheckReport, Landmark};
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
        "{name}: face in {}/{} views {:?}, nose prominence {:?} mm",
        r.views_with_face,
        r.views.len(),
        best,
        r.residuals.nose_prominence_mm
    )
}

/// Colin27's eyes: the centroids of the vitreous lie at y ≈ +59 mm (MNI), the nasal dorsum
/// reaches the field of view's anterior edge at y = +91 mm around z = −60 mm.
const CH2_EYES_Y: f64 = 59.3;
const CH2_NASAL_DORSUM: [f64; 3] = [0.0, 89.0, -62.0];

fn nose_landmark() -> Vec<Landmark> {
    vec![Landmark {
        name: "nasal_dorsum".into(),
        world_mm: CH2_NASAL_DORSUM,
    }]
}

#[test]
fn finds_the_face_of_colin27_and_not_after_a_cut_through_the_eyes() {
    let vol = load("mri/ch2.nii.gz");
    let opts = CheckOptions {
        landmarks: nose_landmark(),
        ..CheckOptions::default()
    };
    let intact = check_volume(&vol, &opts).unwrap();
    eprintln!("{}", summary("ch2", &intact));
    assert!(intact.face_found, "{}", summary("ch2", &intact));
    let nose = intact.residuals.nose_prominence_mm.unwrap();
    assert!(nose > 15.0, "intact nose sticks out only {nose} mm");
    assert!(
        intact.residuals.landmarks[0].skin_area_mm2 > 10.0,
        "{:?}",
        intact.residuals
    );

    let cut = check_volume(&cut_anterior_of(&vol, CH2_EYES_Y), &opts).unwrap();
    eprintln!("{}", summary("ch2 cut through the eyes", &cut));
    assert!(!cut.face_found, "{}", summary("ch2 cut", &cut));
    let nose = cut.residuals.nose_prominence_mm.unwrap();
    assert!(
        nose < 8.0,
        "after the cut a nose still sticks out {nose} mm"
    );
    let lm = &cut.residuals.landmarks[0];
    assert_eq!(lm.skin_area_mm2, 0.0, "{lm:?}");
    assert!(lm.nearest_skin_mm.is_none_or(|d| d > 5.0), "{lm:?}");
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
