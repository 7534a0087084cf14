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
    /// the native field of view; `behind_face`, where known (CT), the soft tissue between the
    /// fitted face region and the facial bone, which is face too.
    pub fn new(
        labels: &Field<u8>,
        brain: &ProtectedBrain,
        in_fov: &Field<bool>,
        behind_face: Option<&Field<bool>>,
    ) -> Self {
        let allowed = brain.protected.zip(in_fov, |p, ok| ok && !p);
        let mut face = labels.zip(&allowed, |l, a| a && l & label::FACE != 0);
        if let Some(behind) = behind_face {
            face = face.zip(behind, |f, b| f || b).zip(&allowed, |f, a| f && a);
        }
        let ears = labels.zip(&allowed, |l, a| {
            a && l & label::EARS != 0 && l & label::FACE == 0
        });
        FaceRegion { face, ears }
    }
}
