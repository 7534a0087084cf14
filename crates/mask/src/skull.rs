//! Bone and the intracranial space. In CT both are plain to see (bone is bright in Hounsfield
//! units). In MRI cortical bone is dark like air and CSF; we do not guess it there: facial bone
//! is then removed with the soft tissue (privacy first; the brain is protected regardless).

use crate::distance::{close, dilate, fill_holes_axial, largest_component};
use crate::grid::{Field, WorkingImage};
use defacer_volume::Modality;

/// Cortical bone in CT is above this (soft tissue ≲ 100 HU, trabecular bone ≳ 300 HU).
pub const CT_BONE_HU: f64 = 250.0;
/// At 2 mm a 4 mm skull is partly averaged with soft tissue, so the working grid uses a lower cut.
const CT_BONE_HU_WORKING: f32 = 150.0;

#[derive(Debug, Clone)]
pub struct SkullSurface {
    /// Bone on the working grid, when the modality shows it.
    pub bone: Option<Field<bool>>,
    /// The space enclosed by the skull (brain, CSF, vessels), when bone is seen.
    pub intracranial: Option<Field<bool>>,
}

impl SkullSurface {
    /// `brain_hint` is the template's brain mapped to the subject: only skull-enclosed space near
    /// it is intracranial (sinuses and orbits are also rings of bone in axial slices).
    pub fn find(
        img: &WorkingImage,
        modality: Modality,
        head: &Field<bool>,
        brain_hint: &Field<bool>,
    ) -> Self {
        if modality != Modality::Ct {
            return SkullSurface {
                bone: None,
                intracranial: None,
            };
        }
        let sp = img.grid.spacing;
        let bone = img.values.zip(head, |v, h| h && v > CT_BONE_HU_WORKING);
        // sutures, emissary foramina and partial volume leave gaps in the ring
        let ring = close(&bone, 4.0, sp);
        let enclosed = fill_holes_axial(&ring);
        let near_brain = dilate(brain_hint, 20.0, sp);
        let soft = img.values.map(|v| (-100.0..=150.0).contains(&v));
        let mut inside = enclosed.zip(&ring, |e, r| e && !r);
        inside = inside
            .zip(&near_brain, |a, b| a && b)
            .zip(&soft, |a, b| a && b);
        let intracranial = largest_component(&inside);
        SkullSurface {
            bone: Some(bone),
            intracranial: Some(intracranial),
        }
    }
}
