//! The bridge from `defacer-mask`'s masks to `defacer-apply`'s region.

use anyhow::Result;
use defacer_apply::Region;
use defacer_mask::{DefaceMask, DefaceOptions};
use defacer_volume::Volume;
use ndarray::Array3;

/// The mask of one volume, with the union of everything that may change.
pub struct Plan {
    pub mask: DefaceMask,
    /// Face ∪ ears.
    pub change: Array3<bool>,
}

impl Plan {
    pub fn region(&self) -> Region<'_> {
        Region {
            change: self.change.view(),
            head: self.mask.head.view(),
            template_head: Some(self.mask.template_head.view()),
        }
    }
}

pub fn plan(vol: &Volume, margin_mm: f64, ears: bool, remove_bone: bool) -> Result<Plan> {
    let opts = DefaceOptions::default()
        .margin_mm(margin_mm)
        .ears(ears)
        .remove_bone(remove_bone);
    let mask = defacer_mask::plan(vol, &opts)?;
    let change = mask.removal();
    Ok(Plan { mask, change })
}
