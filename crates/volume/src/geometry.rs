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

/// Where the stored slices of a stack lie along its affine's `k` axis when they are not evenly
/// spaced (e.g. a head CT acquired as a thin posterior-fossa slab and a thicker cerebral slab).
///
/// No affine describes such a stack, and resampling it would change every voxel, which
/// defacing must not do. So the volume keeps its stored slices, the affine places slices at the
/// average pitch (as dcm2niix's uncorrected output does), and this table holds each stored
/// slice's fractional index on that even grid. Voxel ↔ world maps then go through the table,
/// piecewise linearly between slices.
#[derive(Debug, Clone, PartialEq)]
pub struct SlicePositions(Vec<f64>);

impl SlicePositions {
    /// `nominal[k]` is stored slice `k`'s fractional index along the affine's `k` axis. `None`
    /// unless there are at least two, all finite and strictly increasing.
    pub fn new(nominal: Vec<f64>) -> Option<Self> {
        let ok = nominal.len() >= 2
            && nominal.iter().all(|v| v.is_finite())
            && nominal.windows(2).all(|w| w[1] > w[0]);
        ok.then_some(SlicePositions(nominal))
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// Nominal (even-grid) index of a fractional stored slice index; beyond the first and last
    /// slice the end gaps continue.
    pub fn nominal(&self, k: f64) -> f64 {
        let p = &self.0;
        let n = p.len();
        let s = if k <= 0.0 { 0 } else { (k as usize).min(n - 2) };
        p[s] + (k - s as f64) * (p[s + 1] - p[s])
    }

    /// Fractional stored slice index of a nominal index: the inverse of [`Self::nominal`].
    pub fn stored(&self, nominal: f64) -> f64 {
        let p = &self.0;
        let n = p.len();
        // First slice above `nominal`, kept inside 1..n-1 so the end gaps extrapolate.
        let s = p.partition_point(|&v| v <= nominal).clamp(1, n - 1) - 1;
        s as f64 + (nominal - p[s]) / (p[s + 1] - p[s])
    }

    /// The pitch around stored slice `k` in nominal units: half the distance between its
    /// neighbours (one-sided at the ends). A voxel of slice `k` stands for this much of the
    /// stack.
    pub fn pitch(&self, k: usize) -> f64 {
        let p = &self.0;
        let n = p.len();
        let k = k.min(n - 1);
        let lo = p[k.saturating_sub(1)];
        let hi = p[(k + 1).min(n - 1)];
        let span = (k + 1).min(n - 1) - k.saturating_sub(1);
        (hi - lo) / span as f64
    }

    /// Smallest and largest distance between neighbouring slices, in nominal units.
    pub fn gap_range(&self) -> (f64, f64) {
        self.0
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), g| {
                (lo.min(g), hi.max(g))
            })
    }
}

/// Maps voxel indices to world (RAS+ mm) and back for one volume: its affine, and through the
/// [`SlicePositions`] of an unevenly spaced stack where it has them.
#[derive(Debug, Clone, Copy)]
pub struct VoxelMap<'a> {
    affine: Matrix4<f64>,
    inverse: Matrix4<f64>,
    slices: Option<&'a SlicePositions>,
}

impl<'a> VoxelMap<'a> {
    /// `None` when the affine is singular.
    pub fn new(affine: &Affine, slices: Option<&'a SlicePositions>) -> Option<Self> {
        Some(VoxelMap {
            affine: affine.0,
            inverse: affine.0.try_inverse()?,
            slices,
        })
    }

    /// The affine this map places voxels with (for an uneven stack, slices at their average
    /// pitch; see [`SlicePositions`]).
    pub fn affine(&self) -> Affine {
        Affine(self.affine)
    }

    /// World position of a (possibly fractional) voxel index.
    #[inline]
    pub fn to_world(&self, ijk: [f64; 3]) -> [f64; 3] {
        let k = self.slices.map_or(ijk[2], |s| s.nominal(ijk[2]));
        let w = self.affine * Vector4::new(ijk[0], ijk[1], k, 1.0);
        [w[0], w[1], w[2]]
    }

    /// Continuous voxel index of a world point (may lie outside the grid).
    #[inline]
    pub fn to_voxel(&self, w: [f64; 3]) -> [f64; 3] {
        let v = self.inverse * Vector4::new(w[0], w[1], w[2], 1.0);
        let k = self.slices.map_or(v[2], |s| s.stored(v[2]));
        [v[0], v[1], k]
    }

    /// Limits (lowest, highest) of the continuous voxel index of points within `mm` of the
    /// voxel box of `dims` voxels (its outer faces half a voxel beyond the outer centres), the
    /// distance bounded per world axis.
    pub fn index_limits(&self, dims: [usize; 3], mm: f64) -> ([f64; 3], [f64; 3]) {
        let r: [f64; 3] =
            std::array::from_fn(|a| mm * (0..3).map(|b| self.inverse[(a, b)].abs()).sum::<f64>());
        let mut lo = r.map(|r| -0.5 - r);
        let mut hi: [f64; 3] = std::array::from_fn(|a| dims[a] as f64 - 0.5 + r[a]);
        if let Some(s) = self.slices {
            // `r[2]` is in units of the affine's even pitch; the end gaps convert it.
            lo[2] = s.stored(s.nominal(-0.5) - r[2]);
            hi[2] = s.stored(s.nominal(dims[2] as f64 - 0.5) + r[2]);
        }
        (lo, hi)
    }

    /// Volume in ml of one voxel of stored slice `k`.
    pub fn voxel_ml(&self, k: usize) -> f64 {
        let det = self.affine.fixed_view::<3, 3>(0, 0).determinant().abs() / 1000.0;
        det * self.slices.map_or(1.0, |s| s.pitch(k))
    }

    /// Voxel size in mm along i, j, k; along k, the smallest distance between neighbouring
    /// slices of an uneven stack.
    pub fn voxel_size(&self) -> [f64; 3] {
        let mut v = Affine(self.affine).voxel_size();
        if let Some(s) = self.slices {
            v[2] *= s.gap_range().0;
        }
        v
    }

    /// World bounding box (min, max corners) of a voxel grid of `dims` voxels, including the
    /// half voxel beyond the outer voxel centres.
    pub fn bounds(&self, dims: [usize; 3]) -> ([f64; 3], [f64; 3]) {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for c in 0..8 {
            let ijk = [0, 1, 2].map(|a| {
                if c >> a & 1 == 1 {
                    dims[a] as f64 - 0.5
                } else {
                    -0.5
                }
            });
            let w = self.to_world(ijk);
            for a in 0..3 {
                lo[a] = lo[a].min(w[a]);
                hi[a] = hi[a].max(w[a]);
            }
        }
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_positions_invert() {
        let s = SlicePositions::new(vec![0.0, 1.0, 1.3, 3.0, 4.7]).unwrap();
        for k in [-0.5, 0.0, 0.25, 1.0, 1.5, 2.0, 3.9, 4.0, 4.5] {
            let n = s.nominal(k);
            assert!(
                (s.stored(n) - k).abs() < 1e-12,
                "{k} -> {n} -> {}",
                s.stored(n)
            );
        }
        assert_eq!(s.nominal(2.0), 1.3);
        assert!((s.pitch(0) - 1.0).abs() < 1e-12);
        assert!((s.pitch(2) - 1.0).abs() < 1e-12);
        assert!((s.pitch(4) - 1.7).abs() < 1e-12);
        assert!(SlicePositions::new(vec![0.0, 0.0]).is_none());
        assert!(SlicePositions::new(vec![0.0]).is_none());
    }

    #[test]
    fn voxel_map_round_trips_through_uneven_slices() {
        let mut m = Matrix4::identity();
        m[(0, 0)] = -0.5;
        m[(1, 2)] = 1.2; // sheared stack, like a tilted gantry
        m[(2, 2)] = 3.9;
        m[(2, 3)] = -40.0;
        let s = SlicePositions::new(vec![0.0, 1.0, 2.0, 2.3, 4.0]).unwrap();
        let map = VoxelMap::new(&Affine(m), Some(&s)).unwrap();
        for ijk in [[3.0, 4.0, 0.0], [10.5, -2.0, 2.6], [0.0, 0.0, 4.4]] {
            let back = map.to_voxel(map.to_world(ijk));
            for a in 0..3 {
                assert!((back[a] - ijk[a]).abs() < 1e-9, "{ijk:?} -> {back:?}");
            }
        }
        let even = VoxelMap::new(&Affine(m), None).unwrap();
        assert_eq!(
            map.to_world([1.0, 2.0, 3.0]),
            even.to_world([1.0, 2.0, 2.3])
        );
        // The 0.3 gap has a voxel standing for 0.3/2 + 1.7/2 of the nominal pitch.
        assert!((map.voxel_ml(3) / even.voxel_ml(3) - 1.0).abs() < 1e-12);
        assert!((map.voxel_ml(4) / even.voxel_ml(4) - 1.7).abs() < 1e-12);
    }
}
