//! Facial relief on synthetic faces whose shape is known exactly: a cone of a nose and two
//! hollows of eye sockets in a flat face are measured at about their height and depth; the
//! step a cut leaves reads as a small fraction of its height, below the large-residual level.

use defacer_check::{residuals, Landmark, ResidualOptions, Residuals};
use defacer_render::{RenderOptions, SkinScene};
use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
use ndarray::Array4;

const HALF: usize = 70;

/// A 1 mm volume, world = voxel − 70 mm on every axis (RAS), tissue (100) behind the face
/// surface `y = face(x, z)` inside a block, air (0) elsewhere.
fn head(face: impl Fn(f64, f64) -> f64) -> Volume {
    let n = 2 * HALF + 1;
    let data = Array4::from_shape_fn((n, n, n, 1), |(i, j, k, _)| {
        let [x, y, z] = [i, j, k].map(|v| v as f64 - HALF as f64);
        let inside = x.abs() <= 60.0 && z.abs() <= 60.0 && y >= -60.0 && y <= face(x, z);
        if inside {
            100u8
        } else {
            0
        }
    });
    let mut affine = Affine::identity();
    for a in 0..3 {
        affine.0[(a, 3)] = -(HALF as f64);
    }
    Volume::synthetic(Voxels::U8(data), affine, Scaling::IDENTITY, Modality::Mr)
}

fn landmark(name: &str, p: [f64; 3]) -> Landmark {
    Landmark {
        name: name.into(),
        world_mm: p,
    }
}

fn measure(vol: &Volume, landmarks: &[Landmark]) -> Residuals {
    let scene = SkinScene::new(vol, &RenderOptions::default()).unwrap();
    residuals::measure(&scene, landmarks, &ResidualOptions::default())
}

fn get<'a>(r: &'a Residuals, name: &str) -> &'a defacer_check::LandmarkResidual {
    r.landmarks.iter().find(|l| l.name == name).unwrap()
}

const NOSE_HEIGHT: f64 = 18.0;
const NOSE_BASE_RADIUS: f64 = 14.0;
const EYE_DEPTH: f64 = 10.0;
const EYE_RADIUS: f64 = 14.0;

#[test]
fn a_nose_stands_out_by_its_height_and_eye_sockets_by_their_depth() {
    let vol = head(|x, z| {
        let nose = NOSE_HEIGHT * (1.0 - (x * x + z * z).sqrt() / NOSE_BASE_RADIUS);
        let eye = |cx: f64| {
            let r2 = ((x - cx).powi(2) + (z - 25.0).powi(2)) / (EYE_RADIUS * EYE_RADIUS);
            EYE_DEPTH * (1.0 - r2)
        };
        nose.max(0.0) - eye(-30.0).max(0.0) - eye(30.0).max(0.0)
    });
    let lm = [
        landmark("eye_left", [-30.0, 0.0, 25.0]),
        landmark("eye_right", [30.0, 0.0, 25.0]),
        landmark("nose_tip", [0.0, NOSE_HEIGHT, 0.0]),
        landmark("chin", [0.0, 0.0, -45.0]),
    ];
    let r = measure(&vol, &lm);
    eprintln!("{r:#?}");
    let nose = r.nose_prominence_mm.unwrap();
    // The prominence is the height that 20 mm² of skin reaches: on this cone 18 mm × (1 − 2.5 /
    // 14) ≈ 14.8 mm, less the rounding of the tip by the smoothed grid.
    assert!(nose > 10.0 && nose < NOSE_HEIGHT, "nose {nose}");
    for eye in ["eye_left", "eye_right"] {
        let d = get(&r, eye).relief_mm;
        assert!(d > EYE_DEPTH - 3.0 && d < EYE_DEPTH + 1.0, "{eye} {d}");
    }
    // A flat chin has no relief.
    assert!(get(&r, "chin").relief_mm < 1.0, "{r:?}");
    assert!(r.large_residual);
}

#[test]
fn the_step_of_a_cut_reads_far_below_its_height_and_is_no_large_residual() {
    // Above z = 10 the face is intact (flat); below, everything in front of y = −25 is cut off.
    let vol = head(|_, z| if z >= 10.0 { 0.0 } else { -25.0 });
    let lm = [
        landmark("eye_left", [-30.0, -5.0, 25.0]),
        landmark("eye_right", [30.0, -5.0, 25.0]),
        landmark("nose_tip", [0.0, -12.0, 10.0]),
        landmark("chin", [0.0, -25.0, -45.0]),
    ];
    let r = measure(&vol, &lm);
    eprintln!("{r:#?}");
    let nose = get(&r, "nose_tip");
    // Both sides of the step are skin here, so the relief is measured, and found flat.
    assert!(
        nose.skin_area_mm2 > 0.5 * std::f64::consts::PI * 20.0 * 20.0,
        "{nose:?}"
    );
    // The smoothed grid turns the 25 mm step into a steep ramp with rounded corners: its
    // top edge reads as a few mm (3.6 mm measured), far below the step's height.
    let large = ResidualOptions::default().large_relief_mm;
    for l in &r.landmarks {
        assert!(
            l.protrusion_mm < 0.2 * 25.0 && l.depression_mm < 0.2 * 25.0,
            "{} {:?}",
            l.name,
            l
        );
        assert!(l.relief_mm < large, "{} {:?}", l.name, l);
    }
    assert!(!r.large_residual);
}
