//! # defacer-render
//!
//! Shaded pictures of a head's skin surface, as a person (or a face recognizer) would see a 3-D
//! reconstruction of the scan, plus the QC pictures that go with a defaced volume.
//!
//! - [`SkinScene`]: a volume resampled onto a world-aligned (RAS) isotropic grid, smoothed, with
//!   its skin level ([`fn@skin_level`]: Otsu for MRI, −250 HU for CT) and a [`Framing`] sphere
//!   around the head. [`SkinScene::render`] ray-casts the first crossing of the skin level
//!   orthographically from a [`View`] (trilinear, gradient normals, Lambert/Phong shading with
//!   the light 30° above the viewer as in a photograph: face detectors fire more reliably on
//!   such shading than under a headlight).
//! - [`View`]: yaw/pitch around the face, defined in world coordinates from the affine, so the
//!   face is upright whatever the file's axis order.
//! - [`qc::before_after`] and [`qc::mask_slices`]: pictures for `--qc`.
//!
//! ```no_run
//! use defacer_render::{RenderOptions, SkinScene, View, qc::save_png};
//! let vol = &defacer_volume::load(&["head.nii.gz".into()])?[0];
//! let scene = SkinScene::new(vol, &RenderOptions::default())?;
//! for view in View::around_face() {
//!     save_png(&scene.render(&view), format!("{}.png", view.name()).as_ref())?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod qc;
mod scene;
pub mod skin_level;
pub mod world_grid;

pub use error::{Error, Result};
pub use scene::{Framing, RenderOptions, SkinScene, SurfaceHit, View};
pub use skin_level::skin_level;
