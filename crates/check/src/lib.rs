//! # defacer-check
//!
//! Proves (as far as a machine can) that a head volume no longer shows a face: it renders the
//! skin surface from viewpoints around the front with [`defacer_render`] and runs an
//! established face detector on every picture, and it measures detector-independent
//! [`Residuals`]: the relief of the facial soft tissue (nose, lips, eye sockets, chin) near
//! facial landmarks, against a plain face surface.
//!
//! - [`check_volume`] → [`CheckReport`] (serialisable to JSON): `face_found`, per-view
//!   detections, residuals, and the renders written if asked.
//! - [`FaceDetector`]: dlib's MMOD CNN face detector (`mmod_human_face_detector`, CC0),
//!   re-implemented in Rust with the weights embedded in the binary; nothing is fetched at run
//!   time. Renders are not photographs: this detector was chosen because it fired on renders of
//!   intact faces and on none of the face-free ones, where cascade and single-shot detectors
//!   fired on heads without faces and on bare brains.
//!
//! ```no_run
//! use defacer_check::{check_volume, CheckOptions};
//! let vol = &defacer_volume::load(&["defaced.nii.gz".into()])?[0];
//! let report = check_volume(vol, &CheckOptions::default())?;
//! assert!(!report.face_found, "{}", serde_json::to_string(&report)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod mmod;
pub mod residuals;

use std::path::{Path, PathBuf};

use defacer_render::{qc::save_png, RenderOptions, SkinScene, View};
use defacer_volume::{Modality, Volume};
use serde::Serialize;

pub use error::{Error, Result};
pub use mmod::Detection;
pub use residuals::{Landmark, LandmarkResidual, ResidualOptions, Residuals};

/// dlib MMOD face detector weights, converted from dlib's `mmod_human_face_detector.dat` (see
/// `models/face-detector/README.md`).
static MMOD_WEIGHTS: &[u8] =
    include_bytes!("../../../models/face-detector/mmod_human_face_detector.f32");

/// The embedded face detector.
#[derive(Debug, Clone)]
pub struct FaceDetector {
    net: mmod::MmodNet,
}

impl FaceDetector {
    pub fn new() -> Result<Self> {
        Ok(FaceDetector {
            net: mmod::MmodNet::from_bytes(MMOD_WEIGHTS, "mmod_human_face_detector")?,
        })
    }

    /// Faces in a picture with score above `threshold`, best first.
    pub fn detect(&self, img: &image::GrayImage, threshold: f32) -> Vec<Detection> {
        self.net.detect(img, threshold)
    }
}

/// What to render and when to call it a face.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub views: Vec<View>,
    pub render: RenderOptions,
    /// Detector score above which a window counts as a face (dlib's own threshold is 0).
    pub threshold: f32,
    /// How many views must show a face for the volume to count as having one. Intact faces fire
    /// in 3 (a face cut off below the nose) to all 21 default views; a single weak hit was seen
    /// on a head cut through the eyes, hence 2.
    pub min_views: usize,
    /// Write every render here as PNG (created if missing).
    pub renders_dir: Option<PathBuf>,
    /// Facial landmark positions in world mm, if known (e.g. from a template fit).
    pub landmarks: Vec<Landmark>,
    /// How [`Residuals`] are measured and judged. [`check_volume`] sets the bone level for CT
    /// when it is `None`.
    pub residuals: ResidualOptions,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            views: View::around_face(),
            render: RenderOptions::default(),
            threshold: 0.0,
            min_views: 2,
            renders_dir: None,
            landmarks: Vec::new(),
            residuals: ResidualOptions::default(),
        }
    }
}

/// Detections in one view.
#[derive(Debug, Clone, Serialize)]
pub struct ViewResult {
    pub yaw: f64,
    pub pitch: f64,
    pub detections: Vec<Detection>,
}

/// The verdict and the evidence for it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub face_found: bool,
    /// Views with at least one detection.
    pub views_with_face: usize,
    pub views: Vec<ViewResult>,
    pub residuals: Residuals,
    pub skin_level: f32,
    pub renders_written: Vec<PathBuf>,
}

/// Renders `vol` from every view in `opts`, runs the face detector, and measures residuals.
pub fn check_volume(vol: &Volume, opts: &CheckOptions) -> Result<CheckReport> {
    let detector = FaceDetector::new()?;
    let scene = SkinScene::new(vol, &opts.render)?;
    let mut opts = opts.clone();
    if opts.residuals.bone_level.is_none() && is_hounsfield(vol, &scene) {
        opts.residuals.bone_level = Some(CT_BONE_HU);
    }
    check_scene(&scene, &detector, &opts)
}

/// Hounsfield level above which tissue is bone rather than skin, fat or muscle (which stay
/// below about 100 HU; cancellous bone starts near 300 HU, smoothed cortex is higher).
pub const CT_BONE_HU: f32 = 250.0;

/// Whether the scene's values are Hounsfield units: a CT, or a volume of unknown modality for
/// which the renderer chose the CT skin level.
fn is_hounsfield(vol: &Volume, scene: &SkinScene) -> bool {
    match vol.modality {
        Modality::Ct => true,
        Modality::Mr => false,
        Modality::Unknown => scene.skin_level() == defacer_render::skin_level::CT_SKIN_HU,
    }
}

/// [`check_volume`] on a prepared scene (lets a caller reuse one scene or one detector).
pub fn check_scene(
    scene: &SkinScene,
    detector: &FaceDetector,
    opts: &CheckOptions,
) -> Result<CheckReport> {
    if let Some(dir) = &opts.renders_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::Output {
            path: dir.clone(),
            problem: format!("cannot create folder: {e}"),
        })?;
    }
    let mut views = Vec::with_capacity(opts.views.len());
    let mut renders_written = Vec::new();
    for view in &opts.views {
        let img = scene.render(view);
        if let Some(dir) = &opts.renders_dir {
            let path = dir.join(format!("{}.png", view.name()));
            save_png(&img, &path)?;
            renders_written.push(path);
        }
        let detections = detector.detect(&img, opts.threshold);
        views.push(ViewResult {
            yaw: view.yaw_deg,
            pitch: view.pitch_deg,
            detections,
        });
    }
    let views_with_face = views.iter().filter(|v| !v.detections.is_empty()).count();
    let residuals = residuals::measure(scene, &opts.landmarks, &opts.residuals);
    Ok(CheckReport {
        face_found: views_with_face >= opts.min_views.max(1),
        views_with_face,
        views,
        residuals,
        skin_level: scene.skin_level(),
        renders_written,
    })
}

/// Where [`check_volume`] would write the render of `view` inside `dir`.
pub fn render_path(dir: &Path, view: &View) -> PathBuf {
    dir.join(format!("{}.png", view.name()))
}
