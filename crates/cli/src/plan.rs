//! The bridge from `defacer-mask`'s masks to `defacer-apply`'s region.

use anyhow::Result;
use defacer_apply::Region;
use defacer_mask::{DefaceMask, DefaceOptions};
use defacer_volume::{Modality, Volume};
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

/// The mask for one volume. `rebuilds_face` is true for the methods that rebuild tissue over the
/// face (blur, reface): in MRI the kept bone is a dark band, and left standing inside rebuilt
/// bright tissue it draws the facial skeleton (orbital rims, nose) into the skin surface, which
/// a face detector reads as a face. So for those methods MRI facial bone is rebuilt with the
/// soft tissue, and the report says so; CT bone is brighter than any rebuilt tissue and stays.
pub fn plan(
    vol: &Volume,
    margin_mm: f64,
    ears: bool,
    remove_bone: bool,
    rebuilds_face: bool,
) -> Result<Plan> {
    let opts = DefaceOptions::default()
        .margin_mm(margin_mm)
        .ears(ears)
        .remove_bone(remove_bone);
    // The working-grid half (head, fit, skull) does not depend on keeping bone: done once.
    let working = defacer_mask::WorkingPlan::new(vol, &opts)?;
    let rebuild_bone =
        rebuilds_face && !remove_bone && working.modality() != Modality::Ct && working.bone_found();
    let mut mask = working.native(remove_bone || rebuild_bone);
    if rebuild_bone {
        mask.report.warnings.push(
            "MRI facial bone is rebuilt with the soft tissue by this method (kept, its dark band \
             would outline the facial skeleton)"
                .into(),
        );
    }
    let change = mask.removal();
    Ok(Plan { mask, change })
}
