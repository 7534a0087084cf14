//! The bridge from `defacer-mask`'s masks to `defacer-apply`'s region.

use anyhow::Result;
use defacer_apply::Region;
use defacer_volume::Volume;
use ndarray::Array3;

/// Everything the apply step and the report need from the mask.
pub struct Plan {
    pub change: Array3<bool>,
    pub head: Array3<bool>,
    pub template_head: Option<Array3<bool>>,
    pub air_stored: f64,
    pub removed_ml: f64,
    pub min_distance_mm: Option<f64>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn region(&self) -> Region<'_> {
        Region {
            change: self.change.view(),
            head: self.head.view(),
            template_head: self.template_head.as_ref().map(|t| t.view()),
        }
    }
}

pub fn plan(_vol: &Volume, _margin: f64, _ears: bool, _bone: bool) -> Result<Plan> {
    anyhow::bail!("face masks are not available in this build")
}
