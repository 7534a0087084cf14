//! Replace the face by the template's average face, textured with the subject's own tissue.

use defacer_volume::Volume;

use crate::blur::{rebuild_region, Tissue};
use crate::{Fill, Region};

/// The template head is an average of many people, but an average face is still a face: it is
/// smoothed this much (mm) so that what is put back is a plain, generic head front — enough for
/// skull-stripping and segmentation to see a head, too little to look like anyone.
const TEMPLATE_SHAPE_SIGMA_MM: f64 = 10.0;

pub(crate) fn reface_region(vol: &mut Volume, region: &Region, fill: Fill, air: f64) {
    let Some(template) = region.template_head else {
        // Without a template face there is nothing to put back: removing is the safe choice.
        crate::fill_region(vol, region, region.change, fill, air);
        return;
    };
    rebuild_region(
        vol,
        region,
        template,
        TEMPLATE_SHAPE_SIGMA_MM,
        Tissue::Texture,
        fill,
        air,
    );
}
