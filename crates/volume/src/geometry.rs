//! Voxel ↔ world geometry. World is RAS+ in millimetres (NIfTI/nibabel convention); DICOM's
//! LPS is converted on load.

use nalgebra::{Matrix4, Vector3, Vector4};
use serde::Serialize;

/// A voxel→world (RAS+ mm) affine. Voxel centres are at integer indices `(i, j, k)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub Matrix4<f64>);

impl Affine {
    pub fn identity() -> Self {
        Affine(Matrix4::identity())
    }

    /// From 16 numbers in row-major order.
    pub fn from_row_major(m: [[f64; 4]; 4]) -> Self {
        Affine(Matrix4::from_fn(|r, c| m[r][c]))
    }

    pub fn to_row_major(&self) -> [[f64; 4]; 4] {
        let mut out = [[0.0; 4]; 4];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = self.0[(r, c)];
            }
        }
        out
    }

    /// Checks what every later step relies on: finite numbers, an invertible 3×3 part, a last
    /// row of `0 0 0 1`. Returns the problem in words.
    pub fn validate(&self) -> Result<(), String> {
        if self.0.iter().any(|v| !v.is_finite()) {
            return Err("affine has NaN or infinite entries".into());
        }
        let last = self.0.row(3);
        if last[0] != 0.0 || last[1] != 0.0 || last[2] != 0.0 || last[3] != 1.0 {
            return Err("affine's last row is not 0 0 0 1".into());
        }
        let det = self.0.fixed_view::<3, 3>(0, 0).determinant();
        if det.is_nan() || det.abs() <= 1e-9 {
            return Err("affine is singular (zero voxel size or collinear axes)".into());
        }
        Ok(())
    }

    /// World position of a (possibly fractional) voxel index.
    pub fn voxel_to_world(&self, ijk: [f64; 3]) -> [f64; 3] {
        let w = self.0 * Vector4::new(ijk[0], ijk[1], ijk[2], 1.0);
        [w[0], w[1], w[2]]
    }

    /// The inverse affine (world → voxel). `None` if singular.
    pub fn inverse(&self) -> Option<Affine> {
        self.0.try_inverse().map(Affine)
    }

    /// Voxel size in mm along i, j, k (column norms of the 3×3 part).
    pub fn voxel_size(&self) -> [f64; 3] {
        let c = |i| Vector3::new(self.0[(0, i)], self.0[(1, i)], self.0[(2, i)]).norm();
        [c(0), c(1), c(2)]
    }

    /// Closest anatomical direction of each voxel axis as in nibabel's `aff2axcodes`, e.g.
    /// `"LPS"`: the letter names where each axis *increases* towards.
    pub fn orientation_codes(&self) -> String {
        let m = self.0.fixed_view::<3, 3>(0, 0).into_owned();
        // Greedy assignment by largest absolute cosine, like nibabel's io_orientation for
        // non-degenerate affines.
        let mut used = [false; 3];
        let mut codes = ['?'; 3];
        let mut order: Vec<(usize, usize, f64)> = Vec::new();
        for c in 0..3 {
            let col = m.column(c);
            let n = col.norm();
            for r in 0..3 {
                order.push((c, r, (col[r] / n).abs()));
            }
        }
        order.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut done = [false; 3];
        for (c, r, _) in order {
            if done[c] || used[r] {
                continue;
            }
            done[c] = true;
            used[r] = true;
            let pos = m[(r, c)] > 0.0;
            codes[c] = match (r, pos) {
                (0, true) => 'R',
                (0, false) => 'L',
                (1, true) => 'A',
                (1, false) => 'P',
                (2, true) => 'S',
                _ => 'I',
            };
        }
        codes.iter().collect()
    }
}

/// Acquisition modality when the file says (DICOM) or we can tell (NIfTI intent/intensities are
/// not trusted for this; callers may override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Modality {
    Ct,
    Mr,
    Unknown,
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
            Modality::Unknown => "unknown",
        })
    }
}

/// Linear intensity scaling: physical = stored × slope + intercept (NIfTI `scl_*`, DICOM
/// RescaleSlope/Intercept).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    pub slope: f64,
    pub intercept: f64,
}

impl Scaling {
    pub const IDENTITY: Scaling = Scaling {
        slope: 1.0,
        intercept: 0.0,
    };

    pub fn to_physical(&self, stored: f64) -> f64 {
        stored * self.slope + self.intercept
    }
    pub fn to_stored(&self, physical: f64) -> f64 {
        (physical - self.intercept) / self.slope
    }
}
