//! The head template: a label volume in MNI152 world (RAS mm) built from public templates by
//! `models/build_template.py` and embedded in the binary, so the tool is one file.

use flate2::read::GzDecoder;
use nalgebra::{Matrix4, Vector4};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::OnceLock;

/// Label bits of the template volume.
pub mod label {
    /// Skin and everything inside it.
    pub const HEAD: u8 = 1;
    /// The face region, including the air in front of the face.
    pub const FACE: u8 = 2;
    /// The brain (closed: sulci and outer CSF included).
    pub const BRAIN: u8 = 4;
    /// The outer ears and the air around them.
    pub const EARS: u8 = 8;
    /// Head surface used to fit the template to a subject (above the neck).
    pub const FIT_SURFACE: u8 = 16;
}

const TEMPLATE_NII_GZ: &[u8] = include_bytes!("../../../models/head_template.nii.gz");
const TEMPLATE_JSON: &str = include_str!("../../../models/head_template.json");

#[derive(Debug, Deserialize)]
struct Meta {
    landmarks: BTreeMap<String, [f64; 3]>,
}

/// The decoded template.
#[derive(Debug, Clone)]
pub struct Template {
    pub dims: [usize; 3],
    /// Voxel → world.
    pub affine: Matrix4<f64>,
    world_to_voxel: Matrix4<f64>,
    /// Label bits, x fastest.
    pub labels: Vec<u8>,
    /// Named points in template world mm (nose tip, eyes, lips, chin, tragi); approximate: the
    /// template face is an average and blurred.
    pub landmarks: BTreeMap<String, [f64; 3]>,
    /// The fit surface's points and the head's anchor, derived once per process: scanning the
    /// label volume for them costs more than some fits.
    pub(crate) fit_points: OnceLock<Vec<[f64; 3]>>,
    pub(crate) head_anchor: OnceLock<Option<[f64; 3]>>,
}

impl Template {
    /// The embedded template (decoded once).
    pub fn embedded() -> &'static Template {
        static T: OnceLock<Template> = OnceLock::new();
        // The embedded bytes are part of the program, checked by tests: a failure here is a
        // build defect, not bad input.
        T.get_or_init(|| {
            Template::decode(TEMPLATE_NII_GZ, TEMPLATE_JSON)
                .expect("embedded head template is valid")
        })
    }

    /// Decodes a uint8 NIfTI-1 (gzip) label volume with an sform, and its JSON sidecar.
    pub fn decode(nii_gz: &[u8], json: &str) -> Result<Template, String> {
        let mut raw = Vec::new();
        GzDecoder::new(nii_gz)
            .read_to_end(&mut raw)
            .map_err(|e| format!("template: {e}"))?;
        let i16_at = |o: usize| raw.get(o..o + 2).map(|b| i16::from_le_bytes([b[0], b[1]]));
        let f32_at = |o: usize| {
            raw.get(o..o + 4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if raw.len() < 352 || i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) != 348 {
            return Err("template: not a little-endian NIfTI-1 file".into());
        }
        let dim: Vec<i16> = (0..8).filter_map(|d| i16_at(40 + 2 * d)).collect();
        if dim.len() != 8 || dim[0] < 3 || dim[1..4].iter().any(|&d| d < 2) {
            return Err("template: bad dimensions".into());
        }
        if i16_at(70) != Some(2) {
            return Err("template: labels must be uint8".into());
        }
        let dims = [dim[1] as usize, dim[2] as usize, dim[3] as usize];
        let offset = f32_at(108).ok_or("template: short header")? as usize;
        let n = dims[0] * dims[1] * dims[2];
        let labels = raw
            .get(offset..offset + n)
            .ok_or("template: truncated data")?
            .to_vec();
        let mut affine = Matrix4::identity();
        for r in 0..3 {
            for c in 0..4 {
                affine[(r, c)] =
                    f32_at(280 + 16 * r + 4 * c).ok_or("template: short header")? as f64;
            }
        }
        let world_to_voxel = affine.try_inverse().ok_or("template: singular sform")?;
        let meta: Meta =
            serde_json::from_str(json).map_err(|e| format!("template landmarks: {e}"))?;
        Ok(Template {
            dims,
            affine,
            world_to_voxel,
            labels,
            landmarks: meta.landmarks,
            fit_points: OnceLock::new(),
            head_anchor: OnceLock::new(),
        })
    }

    pub fn voxel_world(&self, c: usize) -> [f64; 3] {
        let [nx, ny, _] = self.dims;
        let v = self.affine
            * Vector4::new(
                (c % nx) as f64,
                ((c / nx) % ny) as f64,
                (c / (nx * ny)) as f64,
                1.0,
            );
        [v[0], v[1], v[2]]
    }

    /// Labels at a world point (nearest voxel, halves rounded away from zero); 0 outside the
    /// template grid.
    #[inline]
    pub fn labels_at(&self, w: [f64; 3]) -> u8 {
        let m = &self.world_to_voxel;
        let mut idx = 0usize;
        let mut stride = 1usize;
        for a in 0..3 {
            // nalgebra's product, column by column in order, so the point lands where it did
            // through `Matrix4 * Vector4`
            let v = m[(a, 0)] * w[0] + m[(a, 1)] * w[1] + m[(a, 2)] * w[2] + m[(a, 3)];
            // `round` is a library call on the baseline x86-64 target: inside the grid the
            // index is the truncation, one more where the fraction is a half or above (both
            // exact below 2^52); NaN fails the range test
            let n = self.dims[a];
            if !(v > -0.5 && v < n as f64 - 0.5) {
                return 0;
            }
            let t = v as i64;
            let r = t + (v - t as f64 >= 0.5) as i64;
            idx += r as usize * stride;
            stride *= n;
        }
        self.labels[idx]
    }

    /// World positions of every voxel carrying `bit`.
    pub fn points(&self, bit: u8) -> Vec<[f64; 3]> {
        self.labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l & bit != 0)
            .map(|(c, _)| self.voxel_world(c))
            .collect()
    }

    /// Volume (ml) of the voxels carrying `bit`.
    pub fn volume_ml(&self, bit: u8) -> f64 {
        let det = self.affine.fixed_view::<3, 3>(0, 0).determinant().abs();
        self.labels.iter().filter(|&&l| l & bit != 0).count() as f64 * det / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_template_is_a_plausible_head() {
        let t = Template::embedded();
        let head = t.volume_ml(label::HEAD);
        let brain = t.volume_ml(label::BRAIN);
        assert!((3000.0..8000.0).contains(&head), "head {head} ml");
        assert!((1200.0..2600.0).contains(&brain), "brain {brain} ml");
        // every brain voxel is inside the head, none is in the face region
        let inside = t
            .labels
            .iter()
            .filter(|&&l| l & label::BRAIN != 0 && l & label::HEAD == 0)
            .count();
        assert_eq!(inside, 0);
        let nose = t.landmarks["nose_tip"];
        assert!(t.labels_at(nose) & label::FACE != 0);
    }

    /// `labels_at` as first written, with nalgebra's product and `f64::round`.
    fn labels_at_by_round(t: &Template, w: [f64; 3]) -> u8 {
        let v = t.world_to_voxel * Vector4::new(w[0], w[1], w[2], 1.0);
        let mut idx = 0usize;
        let mut stride = 1usize;
        for a in 0..3 {
            let r = v[a].round();
            if !(r >= 0.0 && r < t.dims[a] as f64) {
                return 0;
            }
            idx += r as usize * stride;
            stride *= t.dims[a];
        }
        t.labels[idx]
    }

    #[test]
    fn labels_at_rounds_as_round_does() {
        let t = Template::embedded();
        let [nx, ny, nz] = t.dims.map(|n| n as f64);
        // halves and their neighbours, in and around the grid, on every axis
        let offsets = [
            -0.5,
            0.5,
            0.49999999999999994,
            -0.49999999999999994,
            0.0,
            0.25,
            -0.75,
        ];
        let mut checked = 0;
        for along in 0..3usize {
            let mut x = -3.0;
            while x < [nx, ny, nz][along] + 3.0 {
                for &o in &offsets {
                    let mut ijk = [nx / 2.0, ny / 2.0 + 0.5, nz / 2.0 - 0.5];
                    ijk[along] = x + o;
                    let w = t.affine * Vector4::new(ijk[0], ijk[1], ijk[2], 1.0);
                    let w = [w[0], w[1], w[2]];
                    assert_eq!(t.labels_at(w), labels_at_by_round(t, w), "{w:?}");
                    checked += 1;
                }
                x += 1.0;
            }
        }
        for w in [[f64::NAN, 0.0, 0.0], [1e300, 0.0, 0.0], [-1e300, 0.0, 0.0]] {
            assert_eq!(t.labels_at(w), 0);
        }
        assert!(checked > 1000);
    }
}
