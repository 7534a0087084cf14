//! # defacer-apply
//!
//! Changes the voxels of a face region and nothing else. The region comes from
//! `defacer-mask`; this crate owns what is written into it:
//!
//! - [`Method::Remove`]: air (the volume's background level in stored units), or noise drawn
//!   from the volume's own background ([`Fill::Noise`]) so no hard edge is left for downstream
//!   tools;
//! - [`Method::Blur`]: the subject's own head surface smoothed with a wide Gaussian (in mm) so
//!   that nose, lips and eye sockets vanish, filled with the local mean of the subject's tissue
//!   (never diluted by air, which would carve hollows that look like eyes), blended smoothly
//!   into the kept tissue;
//! - [`Method::Reface`]: the template's average head shape (given as a mask on the native grid),
//!   smoothed into a plain head front and filled with this subject's own tissue texture.
//!
//! Every method writes through [`defacer_volume::Voxels::replace_where`] with the region as
//! mask, so voxels outside the region are bit-identical by construction, and every random draw
//! is a hash of the voxel index, so output does not depend on thread count.
//!
//! ```
//! use defacer_apply::{apply, Fill, Method, Region};
//! use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
//! use ndarray::{Array3, Array4};
//! let voxels = Voxels::U8(Array4::from_elem((8, 8, 8, 1), 100u8));
//! let mut v = Volume::synthetic(voxels, Affine::identity(), Scaling::IDENTITY, Modality::Mr);
//! let mut change = Array3::from_elem((8, 8, 8), false);
//! change[[1, 2, 3]] = true;
//! let head = Array3::from_elem((8, 8, 8), true);
//! let region = Region { change: change.view(), head: head.view(), template_head: None };
//! let stats = apply(&mut v, &region, &Method::Remove { fill: Fill::Air }, 0.0);
//! assert_eq!(stats.voxels_changed, 1);
//! assert_eq!(v.voxels.frame_f32(0)[[1, 2, 3]], 0.0);
//! ```

mod blur;
mod noise;
mod reface;

use defacer_volume::Volume;
use ndarray::{ArrayView3, Zip};
use serde::Serialize;

pub use blur::gaussian_blur_mm;

/// What to write into the face region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Method {
    Remove { fill: Fill },
    Blur { sigma_mm: f64, fill: Fill },
    Reface { fill: Fill },
}

/// What replaces removed tissue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    /// The constant air value.
    Air,
    /// Values drawn from the volume's own background (outside the head), deterministic.
    Noise,
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Remove { .. } => "remove",
            Method::Blur { .. } => "blur",
            Method::Reface { .. } => "reface",
        }
    }
}

/// Masks on the volume's native grid (shape `[nx, ny, nz]`).
pub struct Region<'a> {
    /// Voxels the method may change; nothing else is touched.
    pub change: ArrayView3<'a, bool>,
    /// The subject's head (tissue, not air): background and tissue samples come from here.
    pub head: ArrayView3<'a, bool>,
    /// The template's head mapped onto this grid, needed by [`Method::Reface`].
    pub template_head: Option<ArrayView3<'a, bool>>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyStats {
    /// Voxels (per frame) whose stored value differs from the input.
    pub voxels_changed: usize,
    /// Voxels in the region (per frame).
    pub voxels_in_region: usize,
}

/// Applies `method` to `vol` inside `region.change`. `air_stored` is the air value in stored
/// units. Voxels outside the region are never written.
pub fn apply(vol: &mut Volume, region: &Region, method: &Method, air_stored: f64) -> ApplyStats {
    let before = vol.voxels.clone();
    match method {
        Method::Remove { fill } => fill_region(vol, region, region.change, *fill, air_stored),
        Method::Blur { sigma_mm, fill } => blur::rebuild_region(
            vol,
            region,
            blur::subject_envelope(region).view(),
            *sigma_mm,
            blur::Tissue::SmoothMean {
                sigma_mm: *sigma_mm,
            },
            *fill,
            air_stored,
        ),
        Method::Reface { fill } => reface::reface_region(vol, region, *fill, air_stored),
    }
    count_changes(&before, &vol.voxels, region.change)
}

/// Sets `which` to air or background noise.
fn fill_region(vol: &mut Volume, region: &Region, which: ArrayView3<bool>, fill: Fill, air: f64) {
    match fill {
        Fill::Air => vol.voxels.fill(&which, air),
        Fill::Noise => {
            let pools = noise::background_pools(vol, region);
            vol.voxels
                .replace_where(&which, |t, ijk, _| pools.draw(t, ijk).unwrap_or(air));
        }
    }
}

fn count_changes(
    before: &defacer_volume::Voxels,
    after: &defacer_volume::Voxels,
    region: ArrayView3<bool>,
) -> ApplyStats {
    let nt = before.dims()[3].max(1);
    let changed = before.count_differences(after).unwrap_or(0);
    ApplyStats {
        voxels_changed: changed / nt,
        voxels_in_region: Zip::from(&region).par_fold(|| 0, |n, &m| n + m as usize, |m, n| m + n),
    }
}
