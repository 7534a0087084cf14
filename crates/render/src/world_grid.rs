//! A world-aligned (RAS, isotropic) working copy of a volume.
//!
//! Rendering and slicing both need "the intensity at this world point". Sampling the native grid
//! through the inverse affine for every ray step would make every renderer step pay for an
//! arbitrary (oblique, permuted, flipped) layout; resampling once onto an axis-aligned grid makes
//! ray marching cheap and makes the picture independent of how the file stored its axes.

use defacer_volume::{Volume, VoxelMap};
use ndarray::Array3;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Reads a native voxel array at world positions (trilinear or nearest).
pub struct NativeSampler<'a> {
    data: &'a [f32],
    dims: [usize; 3],
    strides: [usize; 3],
    map: VoxelMap<'a>,
    /// Value returned outside the array.
    pub outside: f32,
}

impl<'a> NativeSampler<'a> {
    /// `frame` must be in standard or Fortran layout (as `Volume::frame_physical` returns).
    pub fn new(frame: &'a Array3<f32>, map: VoxelMap<'a>, outside: f32) -> Option<Self> {
        let data = frame.as_slice_memory_order()?;
        let st = frame.strides();
        if st.iter().any(|&s| s < 0) {
            return None;
        }
        let sh = frame.shape();
        Some(NativeSampler {
            data,
            dims: [sh[0], sh[1], sh[2]],
            strides: [st[0] as usize, st[1] as usize, st[2] as usize],
            map,
            outside,
        })
    }

    pub fn to_voxel(&self, p: [f64; 3]) -> [f64; 3] {
        self.map.to_voxel(p)
    }

    #[inline]
    fn at(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[i * self.strides[0] + j * self.strides[1] + k * self.strides[2]]
    }

    /// Trilinear value at fractional voxel index `v`; `outside` beyond the voxel centres.
    pub fn trilinear_voxel(&self, v: [f64; 3]) -> f32 {
        self.scanned_voxel(v).unwrap_or(self.outside)
    }

    /// Trilinear value at fractional voxel index `v`; `None` beyond the voxel centres, where
    /// the scan saw nothing.
    pub fn scanned_voxel(&self, v: [f64; 3]) -> Option<f32> {
        let mut base = [0usize; 3];
        let mut frac = [0f32; 3];
        for a in 0..3 {
            let x = v[a];
            let n = self.dims[a];
            if x.is_nan() || x < 0.0 || x > (n - 1) as f64 {
                return None;
            }
            let f = x.floor();
            let mut b = f as usize;
            let mut t = (x - f) as f32;
            if b + 1 >= n {
                // Exactly on the last centre (or a 1-voxel axis).
                b = n.saturating_sub(2).min(b);
                t = (x - b as f64) as f32;
                if n == 1 {
                    t = 0.0;
                }
            }
            base[a] = b;
            frac[a] = t;
        }
        let [i, j, k] = base;
        let step = |a: usize, b: usize| if self.dims[a] > 1 { b + 1 } else { b };
        let (i1, j1, k1) = (step(0, i), step(1, j), step(2, k));
        let [fx, fy, fz] = frac;
        let c00 = self.at(i, j, k) * (1.0 - fx) + self.at(i1, j, k) * fx;
        let c10 = self.at(i, j1, k) * (1.0 - fx) + self.at(i1, j1, k) * fx;
        let c01 = self.at(i, j, k1) * (1.0 - fx) + self.at(i1, j, k1) * fx;
        let c11 = self.at(i, j1, k1) * (1.0 - fx) + self.at(i1, j1, k1) * fx;
        let c0 = c00 * (1.0 - fy) + c10 * fy;
        let c1 = c01 * (1.0 - fy) + c11 * fy;
        Some(c0 * (1.0 - fz) + c1 * fz)
    }

    pub fn trilinear(&self, p: [f64; 3]) -> f32 {
        self.trilinear_voxel(self.to_voxel(p))
    }
}

/// World-space bounding box of a volume's voxel centres: `(min, max)` corners in mm.
pub fn world_bounds(map: &VoxelMap, dims: [usize; 3]) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for c in 0..8 {
        let ijk = [0, 1, 2].map(|a| {
            if c >> a & 1 == 1 {
                dims[a].saturating_sub(1) as f64
            } else {
                0.0
            }
        });
        let w = map.to_world(ijk);
        for a in 0..3 {
            lo[a] = lo[a].min(w[a]);
            hi[a] = hi[a].max(w[a]);
        }
    }
    (lo, hi)
}

/// An axis-aligned isotropic grid in world space, x fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldGrid {
    pub data: Vec<f32>,
    pub dims: [usize; 3],
    /// World position (mm) of voxel (0, 0, 0).
    pub origin: [f64; 3],
    /// Voxel size in mm, the same on every axis.
    pub spacing: f64,
    /// Value that stands for "outside the scanned field of view".
    pub outside: f32,
    /// Per grid point: it lies within the scanned field of view. The value there says so only
    /// where the outside is darker than anything scanned; a CT's air is the outside's value
    /// too, so a cut by the edge of a (tilted, cropped) field of view looks like skin over air
    /// and only this tells the two apart.
    pub scanned: Vec<bool>,
}

impl WorldGrid {
    /// The grid geometry that covers `vol` at `spacing` mm, with origin snapped to a multiple of
    /// the spacing so that two volumes covering the same space share sample points exactly,
    /// whatever order their axes are stored in.
    pub fn geometry_for(
        vol: &Volume,
        spacing: f64,
        max_dim: usize,
    ) -> Result<([f64; 3], [usize; 3], f64)> {
        vol.affine
            .validate()
            .map_err(|p| Error::geometry(vol.path(), p))?;
        let d = vol.dims();
        if d[0] == 0 || d[1] == 0 || d[2] == 0 {
            return Err(Error::geometry(vol.path(), "volume has no voxels"));
        }
        let map = vol
            .voxel_map()
            .ok_or_else(|| Error::geometry(vol.path(), "affine is not invertible"))?;
        let (lo, hi) = world_bounds(&map, [d[0], d[1], d[2]]);
        let extent = (0..3).map(|a| hi[a] - lo[a]).fold(0.0, f64::max);
        let spacing = spacing.max(extent / max_dim.max(2) as f64);
        let origin = lo.map(|x| (x / spacing).floor() * spacing);
        let dims = [0, 1, 2].map(|a| ((hi[a] - origin[a]) / spacing).ceil() as usize + 1);
        Ok((origin, dims, spacing))
    }

    /// Resamples frame 0 of `vol` (physical values) onto a world grid.
    pub fn resample(
        vol: &Volume,
        origin: [f64; 3],
        dims: [usize; 3],
        spacing: f64,
    ) -> Result<Self> {
        let frame = vol.frame_physical(0);
        let frame = if frame.as_slice_memory_order().is_some() {
            frame
        } else {
            frame.as_standard_layout().into_owned()
        };
        let outside = frame
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::INFINITY, f32::min);
        if !outside.is_finite() {
            return Err(Error::no_skin(vol.path(), "volume has no finite values"));
        }
        let sampler = vol
            .voxel_map()
            .and_then(|map| NativeSampler::new(&frame, map, outside))
            .ok_or_else(|| Error::geometry(vol.path(), "affine is not invertible"))?;
        let plane = dims[0] * dims[1];
        let mut data = vec![outside; plane * dims[2]];
        let mut scanned = vec![false; plane * dims[2]];
        data.par_chunks_mut(plane)
            .zip(scanned.par_chunks_mut(plane))
            .enumerate()
            .for_each(|(k, (slab, seen))| {
                for j in 0..dims[1] {
                    for i in 0..dims[0] {
                        let p = [
                            origin[0] + i as f64 * spacing,
                            origin[1] + j as f64 * spacing,
                            origin[2] + k as f64 * spacing,
                        ];
                        let v = sampler.scanned_voxel(sampler.to_voxel(p));
                        slab[j * dims[0] + i] = v.filter(|v| v.is_finite()).unwrap_or(outside);
                        seen[j * dims[0] + i] = v.is_some();
                    }
                }
            });
        Ok(WorldGrid {
            data,
            dims,
            origin,
            spacing,
            outside,
            scanned,
        })
    }

    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.dims[1] + j) * self.dims[0] + i
    }

    /// Continuous grid coordinates of a world point.
    #[inline]
    pub fn to_grid(&self, p: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|a| (p[a] - self.origin[a]) / self.spacing)
    }

    pub fn to_world(&self, g: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|a| self.origin[a] + g[a] * self.spacing)
    }

    /// Whether the grid point nearest to a world point lies within the scanned field of view.
    pub fn is_scanned(&self, p: [f64; 3]) -> bool {
        let g = self.to_grid(p);
        let mut ijk = [0usize; 3];
        for a in 0..3 {
            let x = g[a].round();
            if !(x >= 0.0 && x < self.dims[a] as f64) {
                return false;
            }
            ijk[a] = x as usize;
        }
        self.scanned[self.index(ijk[0], ijk[1], ijk[2])]
    }

    /// Trilinear value at a world point; `outside` beyond the grid.
    #[inline]
    pub fn sample(&self, p: [f64; 3]) -> f32 {
        let g = self.to_grid(p);
        let mut b = [0usize; 3];
        let mut f = [0f32; 3];
        for a in 0..3 {
            let x = g[a];
            if x.is_nan() || x < 0.0 || x >= (self.dims[a] - 1) as f64 {
                return self.outside;
            }
            let fl = x.floor();
            b[a] = fl as usize;
            f[a] = (x - fl) as f32;
        }
        let (sx, sy) = (1, self.dims[0]);
        let sz = self.dims[0] * self.dims[1];
        let o = self.index(b[0], b[1], b[2]);
        let d = &self.data;
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let c00 = lerp(d[o], d[o + sx], f[0]);
        let c10 = lerp(d[o + sy], d[o + sy + sx], f[0]);
        let c01 = lerp(d[o + sz], d[o + sz + sx], f[0]);
        let c11 = lerp(d[o + sz + sy], d[o + sz + sy + sx], f[0]);
        lerp(lerp(c00, c10, f[1]), lerp(c01, c11, f[1]), f[2])
    }

    /// Gradient (per mm) by central differences one voxel apart.
    pub fn gradient(&self, p: [f64; 3]) -> [f64; 3] {
        let h = self.spacing;
        let mut g = [0.0; 3];
        for a in 0..3 {
            let mut p1 = p;
            let mut p0 = p;
            p1[a] += h;
            p0[a] -= h;
            g[a] = (self.sample(p1) as f64 - self.sample(p0) as f64) / (2.0 * h);
        }
        g
    }

    /// Binomial (1 4 6 4 1)/16 blur along each axis (σ ≈ 1 voxel): MRI noise in the air would
    /// otherwise poke through the skin level as speckle in front of the face.
    pub fn smooth(&mut self) {
        for axis in 0..3 {
            self.smooth_axis(axis);
        }
    }

    fn smooth_axis(&mut self, axis: usize) {
        const W: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
        let dims = self.dims;
        let stride = [1, dims[0], dims[0] * dims[1]][axis];
        let n = dims[axis];
        let src = self.data.clone();
        let plane = dims[0] * dims[1];
        self.data
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(k, slab)| {
                for j in 0..dims[1] {
                    for i in 0..dims[0] {
                        let pos = [i, j, k][axis];
                        let o = (k * dims[1] + j) * dims[0] + i;
                        let mut acc = 0.0;
                        for (t, w) in W.iter().enumerate() {
                            let q =
                                (pos as isize + t as isize - 2).clamp(0, n as isize - 1) as usize;
                            acc += w * src[o - pos * stride + q * stride];
                        }
                        slab[j * dims[0] + i] = acc;
                    }
                }
            });
    }
}
