//! The working grid: a small RAS-aligned isotropic copy of the volume where the heavy work
//! happens, whatever the native orientation, obliquity or slice thickness.

use defacer_volume::{FrameVisitor, PhysicalFrame, Volume, VoxelMap};
use rayon::prelude::*;

/// A scalar field on a working grid, x fastest (index `i + nx * (j + ny * k)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field<T> {
    pub dims: [usize; 3],
    pub data: Vec<T>,
}

impl<T: Copy + Send + Sync> Field<T> {
    pub fn filled(dims: [usize; 3], v: T) -> Self {
        Field {
            dims,
            data: vec![v; dims[0] * dims[1] * dims[2]],
        }
    }
    #[inline]
    pub fn idx(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }
    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> T {
        self.data[self.idx(i, j, k)]
    }
    #[inline]
    pub fn coords(&self, n: usize) -> [usize; 3] {
        let nx = self.dims[0];
        let ny = self.dims[1];
        [n % nx, (n / nx) % ny, n / (nx * ny)]
    }
    /// A field whose cell `c` (in x-fastest order) is `f(c)`, computed in parallel.
    pub fn from_cells(dims: [usize; 3], f: impl Fn(usize) -> T + Sync + Send) -> Self {
        Field {
            dims,
            data: (0..dims[0] * dims[1] * dims[2])
                .into_par_iter()
                .map(f)
                .collect(),
        }
    }
    pub fn map<U: Copy + Send + Sync>(&self, f: impl Fn(T) -> U + Sync) -> Field<U> {
        Field {
            dims: self.dims,
            data: self.data.par_iter().map(|&v| f(v)).collect(),
        }
    }
    pub fn zip<U: Copy + Send + Sync, V: Copy + Send + Sync>(
        &self,
        other: &Field<U>,
        f: impl Fn(T, U) -> V + Sync,
    ) -> Field<V> {
        debug_assert_eq!(self.dims, other.dims);
        Field {
            dims: self.dims,
            data: self
                .data
                .par_iter()
                .zip(other.data.par_iter())
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }
}

/// The slices of `data` (planes of `plane` cells, one after the other) cut into column blocks of
/// `width` cells (the last one narrower): block `b` holds cells `b * width..` of every plane,
/// plane by plane. Work along z that goes block by block keeps its planes' rows in cache where
/// whole planes would not fit.
pub fn column_blocks<T>(data: &mut [T], plane: usize, width: usize) -> Vec<Vec<&mut [T]>> {
    let (plane, width) = (plane.max(1), width.max(1));
    let mut blocks: Vec<Vec<&mut [T]>> = (0..plane.div_ceil(width))
        .map(|_| Vec::with_capacity(data.len() / plane))
        .collect();
    for slice in data.chunks_mut(plane) {
        for (block, piece) in blocks.iter_mut().zip(slice.chunks_mut(width)) {
            block.push(piece);
        }
    }
    blocks
}

impl Field<bool> {
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&b| b).count()
    }
}

/// An isotropic, RAS-aligned grid: voxel `(i, j, k)` is at `origin + spacing * (i, j, k)` mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkingGrid {
    pub dims: [usize; 3],
    pub origin: [f64; 3],
    pub spacing: f64,
}

/// Larger heads or whole-body fields of view get a coarser grid so the work stays bounded.
const MAX_CELLS_PER_AXIS: f64 = 192.0;

/// Where a [`WorkingGrid`]'s cells lie against the field of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The cells centred on the field of view's box.
    Centred,
    /// Moved by half a cell along every axis from [`Phase::Centred`]: every cell centre then
    /// lies where the centred grid's cells meet.
    HalfCell,
}

impl WorkingGrid {
    /// The grid covering the world bounding box of `map`'s voxel grid of `dims` voxels.
    pub fn covering(map: &VoxelMap, dims: [usize; 3], spacing_mm: f64) -> Self {
        Self::covering_at(map, dims, spacing_mm, Phase::Centred)
    }

    /// The grid covering `map`'s voxel grid, its cells placed as `phase` says.
    pub fn covering_at(map: &VoxelMap, dims: [usize; 3], spacing_mm: f64, phase: Phase) -> Self {
        let (lo, hi) = map.bounds(dims);
        let extent = (0..3).map(|a| hi[a] - lo[a]).fold(0.0, f64::max);
        let spacing = spacing_mm.max(extent / MAX_CELLS_PER_AXIS);
        let centred = [0, 1, 2].map(|a| ((hi[a] - lo[a]) / spacing).ceil() as usize + 1);
        let (dims, shift) = match phase {
            Phase::Centred => (centred, 0.0),
            // a cell more along each axis keeps the box covered
            Phase::HalfCell => (centred.map(|n| n + 1), 0.5),
        };
        let origin = [0, 1, 2].map(|a| {
            let span = (centred[a] - 1) as f64 * spacing;
            (lo[a] + hi[a]) / 2.0 - span / 2.0 - shift * spacing
        });
        WorkingGrid {
            dims,
            origin,
            spacing,
        }
    }

    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn world(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        [
            self.origin[0] + self.spacing * i as f64,
            self.origin[1] + self.spacing * j as f64,
            self.origin[2] + self.spacing * k as f64,
        ]
    }

    /// Continuous grid coordinates of a world point.
    #[inline]
    pub fn to_grid(&self, w: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|a| (w[a] - self.origin[a]) / self.spacing)
    }

    /// Nearest cell of a world point, if inside.
    #[inline]
    pub fn nearest(&self, w: [f64; 3]) -> Option<usize> {
        self.nearest_to_grid(self.to_grid(w))
    }

    /// Nearest cell of continuous grid coordinates `g`, if inside.
    #[inline]
    pub fn nearest_to_grid(&self, g: [f64; 3]) -> Option<usize> {
        let mut ijk = [0usize; 3];
        for a in 0..3 {
            ijk[a] = self.nearest_along(a, g[a])?;
        }
        Some(self.cell(ijk))
    }

    /// The index along axis `a` of the nearest cell to continuous grid coordinate `g`, if
    /// inside.
    #[inline(always)]
    pub fn nearest_along(&self, a: usize, g: f64) -> Option<usize> {
        // round half up by a cast, which truncates (a library call saved per point); the
        // casts go through i64 and i32, one instruction each where unsigned ones take
        // several (this runs for every native voxel), and the range checked fits them
        let r = g + 0.5;
        if !(r >= 0.0 && r < self.dims[a] as i64 as f64) {
            return None;
        }
        Some(r as i32 as usize)
    }

    /// The index of cell `(i, j, k)`.
    #[inline(always)]
    pub fn cell(&self, [i, j, k]: [usize; 3]) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// Builds a field by evaluating `f(world)` at every cell, in parallel over z-slices.
    pub fn build<T: Copy + Send + Sync + Default>(
        &self,
        f: impl Fn([f64; 3]) -> T + Sync,
    ) -> Field<T> {
        let [nx, ny, _] = self.dims;
        let mut data = vec![T::default(); self.len()];
        data.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slab)| {
                for j in 0..ny {
                    for i in 0..nx {
                        slab[i + nx * j] = f(self.world(i, j, k));
                    }
                }
            });
        Field {
            dims: self.dims,
            data,
        }
    }

    /// Trilinear interpolation of a field at a world point (`None` outside the grid).
    pub fn sample_f32(&self, f: &Field<f32>, w: [f64; 3]) -> Option<f32> {
        trilinear(&f.data, self.dims, self.to_grid(w))
    }
}

/// Trilinear interpolation in an x-fastest array at continuous index `g`; `None` outside.
/// This is the innermost operation of the template fit, hence the plain casts (`floor` and
/// `round` are library calls on the baseline x86-64 target).
#[inline]
pub fn trilinear(data: &[f32], dims: [usize; 3], g: [f64; 3]) -> Option<f32> {
    trilinear_with(dims, g, |k| data[k] as f64).map(|v| v as f32)
}

/// [`trilinear`] of the values `value(index)` of an x-fastest grid of `dims` cells.
#[inline(always)]
pub fn trilinear_with(dims: [usize; 3], g: [f64; 3], value: impl Fn(usize) -> f64) -> Option<f64> {
    Corners::around(dims, g).map(|c| c.interpolate(value))
}

/// The eight cells around continuous grid coordinates, for trilinear interpolation.
#[derive(Debug, Clone, Copy)]
pub struct Corners {
    /// Index of the lowest corner.
    pub base: usize,
    /// Index step to the next corner along x, y, z (0 along a one-cell axis).
    pub step: [usize; 3],
    /// Position between the corners along each axis, 0 to 1.
    pub frac: [f64; 3],
}

impl Corners {
    /// The corners around `g` in a grid of `dims` cells; `None` unless every coordinate lies in
    /// `[0, n − 1]`.
    #[inline(always)]
    pub fn around(dims: [usize; 3], g: [f64; 3]) -> Option<Self> {
        let mut base = [0usize; 3];
        let mut frac = [0f64; 3];
        let mut step = [1usize, dims[0], dims[0] * dims[1]];
        for a in 0..3 {
            let n = dims[a];
            // The casts go through i64 and i32, one instruction each where unsigned ones take
            // several on the baseline x86-64 target (this runs for every point of every fit
            // evaluation); a grid axis and a coordinate within it fit them exactly.
            if !(g[a] >= 0.0 && g[a] <= (n as i64 - 1) as f64) {
                return None;
            }
            // non-negative, so the cast is the floor
            let f = (g[a] as i32 as usize).min(n.saturating_sub(2));
            base[a] = f;
            frac[a] = g[a] - f as i32 as f64;
            if f + 1 >= n {
                // a one-cell axis: both corners are the same cell
                step[a] = 0;
            }
        }
        Some(Corners {
            base: base[0] + dims[0] * (base[1] + dims[1] * base[2]),
            step,
            frac,
        })
    }

    /// The corner nearest to the point (ties, at exactly half a cell, go up).
    #[inline(always)]
    pub fn nearest(&self) -> usize {
        let [sx, sy, sz] = self.step;
        let [fx, fy, fz] = self.frac;
        self.base
            + if fx >= 0.5 { sx } else { 0 }
            + if fy >= 0.5 { sy } else { 0 }
            + if fz >= 0.5 { sz } else { 0 }
    }

    /// The trilinear blend of the corners' values `v(index)`.
    #[inline(always)]
    pub fn interpolate(&self, v: impl Fn(usize) -> f64) -> f64 {
        let o = self.base;
        let [sx, sy, sz] = self.step;
        let [fx, fy, fz] = self.frac;
        let c00 = v(o) * (1.0 - fx) + v(o + sx) * fx;
        let c10 = v(o + sy) * (1.0 - fx) + v(o + sy + sx) * fx;
        let c01 = v(o + sz) * (1.0 - fx) + v(o + sz + sx) * fx;
        let c11 = v(o + sz + sy) * (1.0 - fx) + v(o + sz + sy + sx) * fx;
        let c0 = c00 * (1.0 - fy) + c10 * fy;
        let c1 = c01 * (1.0 - fy) + c11 * fy;
        c0 * (1.0 - fz) + c1 * fz
    }

    /// The trilinear blend of the corners' values (as [`Corners::interpolate`] computes it, to
    /// the bit) and its gradient per grid step along x, y, z: the blend's own derivative, from
    /// the same eight reads.
    #[inline(always)]
    pub fn interpolate_with_gradient(&self, v: impl Fn(usize) -> f64) -> (f64, [f64; 3]) {
        let o = self.base;
        let [sx, sy, sz] = self.step;
        let [fx, fy, fz] = self.frac;
        let [v000, v100, v010, v110] = [v(o), v(o + sx), v(o + sy), v(o + sy + sx)];
        let [v001, v101, v011, v111] = [
            v(o + sz),
            v(o + sz + sx),
            v(o + sz + sy),
            v(o + sz + sy + sx),
        ];
        let c00 = v000 * (1.0 - fx) + v100 * fx;
        let c10 = v010 * (1.0 - fx) + v110 * fx;
        let c01 = v001 * (1.0 - fx) + v101 * fx;
        let c11 = v011 * (1.0 - fx) + v111 * fx;
        let c0 = c00 * (1.0 - fy) + c10 * fy;
        let c1 = c01 * (1.0 - fy) + c11 * fy;
        let value = c0 * (1.0 - fz) + c1 * fz;
        let gx0 = (v100 - v000) * (1.0 - fy) + (v110 - v010) * fy;
        let gx1 = (v101 - v001) * (1.0 - fy) + (v111 - v011) * fy;
        let gradient = [
            gx0 * (1.0 - fz) + gx1 * fz,
            (c10 - c00) * (1.0 - fz) + (c11 - c01) * fz,
            c1 - c0,
        ];
        (value, gradient)
    }
}

/// The native volume's intensities (physical units) resampled onto the working grid, with the
/// cells that lie inside the native field of view. Outside it nothing is known: such cells are
/// neither head nor air.
#[derive(Debug, Clone)]
pub struct WorkingImage<'a> {
    pub grid: WorkingGrid,
    pub values: Field<f32>,
    pub in_fov: Field<bool>,
    /// The native voxels' physical values, for the native-resolution steps (bone is judged
    /// voxel by voxel).
    pub native: NativeValues<'a>,
}

/// The native voxels' physical values, x fastest: read where the volume stores them when it
/// stores them x fastest (as read from files), with no converted copy of the volume (on a
/// 256×256×170 series that copy was 44 MB, a sixth of a command's memory); converted once
/// otherwise.
#[derive(Debug, Clone)]
pub enum NativeValues<'a> {
    InPlace(PhysicalFrame<'a>),
    Converted(Vec<f32>),
}

impl<'a> NativeValues<'a> {
    /// The values of `vol`'s first frame.
    pub fn of(vol: &'a Volume) -> Self {
        if let Some(frame) = vol.physical_frame(0) {
            return NativeValues::InPlace(frame);
        }
        let [nx, ny, nz, _] = vol.dims();
        let phys = vol.frame_physical(0);
        let mut v = vec![0f32; nx * ny * nz];
        for ((i, j, k), &x) in phys.indexed_iter() {
            v[i + nx * (j + ny * k)] = x;
        }
        NativeValues::Converted(v)
    }

    /// `visitor` run with a reader of these values of one concrete type (see
    /// [`PhysicalFrame::visit`]): the physical value of voxel `i` (x fastest), as
    /// [`Volume::frame_physical`] gives it.
    pub fn visit<V: FrameVisitor>(&self, visitor: V) -> V::Output {
        match self {
            NativeValues::InPlace(frame) => frame.visit(visitor),
            NativeValues::Converted(v) => visitor.visit(|i| v[i]),
        }
    }

    /// The values of voxels `start..start + out.len()` into `out` (see
    /// [`PhysicalFrame::read_run`]).
    pub fn read_run(&self, start: usize, out: &mut [f32]) {
        match self {
            NativeValues::InPlace(frame) => frame.read_run(start, out),
            NativeValues::Converted(v) => out.copy_from_slice(&v[start..start + out.len()]),
        }
    }
}

/// The native values interpolated at every cell of `grid`, with whether the cell is in view
/// (see [`WorkingImage::from_volume`]), given a reader of the values.
struct Resample<'g> {
    grid: &'g WorkingGrid,
    map: &'g VoxelMap<'g>,
    dims: [usize; 3],
    /// The continuous voxel indices within which a cell is in view.
    limits: ([f64; 3], [f64; 3]),
}

impl FrameVisitor for Resample<'_> {
    type Output = Field<(f32, bool)>;
    fn visit(self, read: impl Fn(usize) -> f32 + Sync) -> Self::Output {
        let (dims, (lo, hi)) = (self.dims, self.limits);
        let read = &read;
        self.grid.build(|w| {
            let g = self.map.to_voxel(w);
            if (0..3).any(|a| g[a] < lo[a] || g[a] > hi[a]) {
                return (0f32, false);
            }
            let c = g.map(|x| x.max(0.0));
            let c = [0, 1, 2].map(|a| c[a].min((dims[a] - 1) as f64));
            let v = trilinear_with(dims, c, |k| read(k) as f64).map(|v| v as f32);
            (v.unwrap_or(0.0), true)
        })
    }
}

impl<'a> WorkingImage<'a> {
    /// The working image of `vol`, its voxels placed in the world by `map` (the volume's own,
    /// or one that turns it).
    pub fn from_volume(vol: &'a Volume, map: &VoxelMap, spacing_mm: f64) -> Self {
        Self::from_volume_at(vol, map, spacing_mm, Phase::Centred)
    }

    /// As [`WorkingImage::from_volume`], on the grid placed as `phase` says.
    pub fn from_volume_at(vol: &'a Volume, map: &VoxelMap, spacing_mm: f64, phase: Phase) -> Self {
        let [nx, ny, nz, _] = vol.dims();
        let dims = [nx, ny, nz];
        let grid = WorkingGrid::covering_at(map, dims, spacing_mm, phase);
        let native = NativeValues::of(vol);
        // Native voxels take the value of their nearest cell, so every cell that is nearest to
        // some native voxel must count as seen, even when its centre lies just beyond the native
        // box (otherwise the outermost native slices, often the nose tip, are never removed).
        let (lo, hi) = map.index_limits(dims, 0.5 * grid.spacing);
        let pairs = native.visit(Resample {
            grid: &grid,
            map,
            dims,
            limits: (lo, hi),
        });
        let values = pairs.map(|p| if p.0.is_finite() { p.0 } else { 0.0 });
        let in_fov = pairs.map(|p| p.1);
        WorkingImage {
            grid,
            values,
            in_fov,
            native,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blend's gradient is its derivative: along each axis the trilinear blend is linear
    /// within a cell, so a difference across part of the cell gives the same slope; and the
    /// value is `interpolate`'s to the bit.
    #[test]
    fn the_gradient_is_the_blend_s_own_slope() {
        let dims = [5, 4, 3];
        let value = |c: usize| ((c * 7919) % 23) as f64 * 0.37 - 2.0;
        for at in [
            [1.3, 2.6, 0.2],
            [0.0, 0.0, 0.0],
            [3.9, 1.1, 1.75],
            [2.5, 2.5, 1.5],
        ] {
            let corners = Corners::around(dims, at).unwrap();
            let (v, gradient) = corners.interpolate_with_gradient(value);
            assert_eq!(v.to_bits(), corners.interpolate(value).to_bits(), "{at:?}");
            for (a, &slope_at) in gradient.iter().enumerate() {
                // two points of the same cell, a quarter of a cell apart along axis `a`
                let f = corners.frac[a];
                let (lo, hi) = if f > 0.5 {
                    (f - 0.25, f)
                } else {
                    (f, f + 0.25)
                };
                let read = |t: f64| {
                    let mut c = corners;
                    c.frac[a] = t;
                    c.interpolate(value)
                };
                let slope = (read(hi) - read(lo)) / (hi - lo);
                assert!(
                    (slope - slope_at).abs() < 1e-9,
                    "{at:?} axis {a}: {slope} against {slope_at}"
                );
            }
        }
    }
}
