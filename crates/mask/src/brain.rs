//! The region that must never change: the brain, as the fitted template places it (and, where
//! bone is visible, everything the skull encloses), grown by a safety margin in millimetres.

use crate::distance::{distance_sq, distance_sq_within};
use crate::grid::Field;

#[derive(Debug, Clone)]
pub struct ProtectedBrain {
    /// The brain itself (template brain ∪ intracranial space when known).
    pub brain: Field<bool>,
    /// Distance (mm) from each working cell to the brain, exact up to [`Self::exact_within_mm`]
    /// and larger than that beyond it (see [`Self::distance_to`]).
    pub distance_mm: Field<f32>,
    /// How far [`Self::distance_mm`] is exact.
    pub exact_within_mm: f64,
    /// Cells within the margin of the brain: nothing here may change.
    pub protected: Field<bool>,
    pub margin_mm: f64,
    spacing: f64,
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
        // The native grid looks up the nearest working cell, up to half a cell diagonal away
        // from the voxel: widen by that so the margin holds at native resolution.
        let reach = margin_mm + spacing * 3f64.sqrt() / 2.0;
        // Beyond the protected region the distance is only reported (the removal's closest
        // approach, usually a cell or two past the margin): the exact transform of the whole
        // grid is not needed, only a band; a farther removal is measured exactly on demand.
        let exact_within_mm = reach + EXACT_BAND_MM;
        let distance_mm = distance_sq_within(&brain, spacing, exact_within_mm).map(|d| d.sqrt());
        let protected = distance_mm.map(|d| d <= reach as f32);
        ProtectedBrain {
            brain,
            distance_mm,
            exact_within_mm,
            protected,
            margin_mm,
            spacing,
        }
    }

    /// The smallest distance (mm) from the brain to any of `cells`, exact (`None` without
    /// cells).
    pub fn distance_to(&self, cells: impl Iterator<Item = usize> + Clone) -> Option<f64> {
        let nearest = |d: &Field<f32>| {
            cells
                .clone()
                .map(|c| d.data[c] as f64)
                .min_by(|a, b| a.total_cmp(b))
        };
        let d = nearest(&self.distance_mm)?;
        if d <= self.exact_within_mm {
            return Some(d);
        }
        nearest(&distance_sq(&self.brain, self.spacing).map(|d| d.sqrt()))
    }
}

/// How far (mm) beyond the protected region [`ProtectedBrain::distance_mm`] is exact.
const EXACT_BAND_MM: f64 = 10.0;
