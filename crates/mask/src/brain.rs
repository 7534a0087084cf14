//! The region that must never change: the brain, as the fitted template places it (and, where
//! bone is visible, everything the skull encloses), grown by a safety margin in millimetres.

use crate::distance::distance_sq;
use crate::grid::Field;

#[derive(Debug, Clone)]
pub struct ProtectedBrain {
    /// The brain itself (template brain ∪ intracranial space when known).
    pub brain: Field<bool>,
    /// Distance (mm) from each working cell to the brain.
    pub distance_mm: Field<f32>,
    /// Cells within the margin of the brain: nothing here may change.
    pub protected: Field<bool>,
    pub margin_mm: f64,
}

impl ProtectedBrain {
    pub fn new(
        template_brain: &Field<bool>,
        intracranial: Option<&Field<bool>>,
        margin_mm: f64,
        spacing: f64,
    ) -> Self {
        let brain = match intracranial {
            Some(ic) => template_brain.zip(ic, |a, b| a || b),
            None => template_brain.clone(),
        };
        let distance_mm = distance_sq(&brain, spacing).map(|d| d.sqrt());
        // The native grid looks up the nearest working cell, up to half a cell diagonal away
        // from the voxel: widen by that so the margin holds at native resolution.
        let reach = (margin_mm + spacing * 3f64.sqrt() / 2.0) as f32;
        let protected = distance_mm.map(|d| d <= reach);
        ProtectedBrain {
            brain,
            distance_mm,
            protected,
            margin_mm,
        }
    }
}
