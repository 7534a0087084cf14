//! The face (and ear) removal region on the working grid: the template's face region as fitted
//! to the subject, minus the protected brain.

use crate::brain::ProtectedBrain;
use crate::grid::Field;
use crate::template::label;

#[derive(Debug, Clone)]
pub struct FaceRegion {
    pub face: Field<bool>,
    pub ears: Field<bool>,
}

impl FaceRegion {
    /// `labels` are the template labels mapped onto the working grid; `in_fov` the cells inside
    /// the native field of view.
    pub fn new(labels: &Field<u8>, brain: &ProtectedBrain, in_fov: &Field<bool>) -> Self {
        let allowed = brain.protected.zip(in_fov, |p, ok| ok && !p);
        let face = labels.zip(&allowed, |l, a| a && l & label::FACE != 0);
        let ears = labels.zip(&allowed, |l, a| {
            a && l & label::EARS != 0 && l & label::FACE == 0
        });
        FaceRegion { face, ears }
    }
}
