//! Distances and shapes on the working grid: exact Euclidean distance transforms in millimetres
//! (so margins mean millimetres whatever the voxel size), morphology built on them, connected
//! components and hole filling.

use crate::grid::{column_blocks, Field};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

const FAR: f32 = 1e20;

/// Beyond this many cells the lower envelope of [`distance_sq`] may cost less than the rows
/// within reach of [`distance_sq_within`]. Measured on a 99×133×135 working grid: the exact
/// transform 30 ms, rows within 8 cells 8 ms, 13 cells 10 ms, 21 cells 13 ms.
const MAX_REACH: usize = 24;

/// Squared distance (mm²) from every cell to the nearest `true` cell of `features`
/// (`FAR` when there is none). Exact (Felzenszwalb–Huttenlocher, separable), `spacing` mm per cell.
pub fn distance_sq(features: &Field<bool>, spacing: f64) -> Field<f32> {
    let [nx, ny, nz] = features.dims;
    let s = spacing as f32;
    let mut d = vec![FAR; features.data.len()];
    // x lines are contiguous; on a binary line the distance is to the nearest feature on
    // either side, two scans instead of the lower envelope
    d.par_chunks_mut(nx)
        .zip(features.data.par_chunks(nx))
        .for_each(|(line, f)| nearest_on_line(f, line, s));
    // y lines: within each z slab
    d.par_chunks_mut(nx * ny).for_each(|slab| {
        let mut scratch = Scratch::default();
        let mut buf = vec![0f32; ny];
        for i in 0..nx {
            for j in 0..ny {
                buf[j] = slab[i + nx * j];
            }
            transform_line(&mut buf, s, &mut scratch);
            for j in 0..ny {
                slab[i + nx * j] = buf[j];
            }
        }
    });
    // z lines: gather the columns of each y row in parallel (kept x fastest within each z, so
    // that the scatter below copies whole x rows), then scatter back in parallel over z slabs
    let cols: Vec<Vec<f32>> = (0..ny)
        .into_par_iter()
        .map(|j| {
            let mut scratch = Scratch::default();
            let mut out = vec![0f32; nx * nz];
            let mut buf = vec![0f32; nz];
            for i in 0..nx {
                for k in 0..nz {
                    buf[k] = d[i + nx * (j + ny * k)];
                }
                transform_line(&mut buf, s, &mut scratch);
                for k in 0..nz {
                    out[i + nx * k] = buf[k];
                }
            }
            out
        })
        .collect();
    d.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slab)| {
        for (j, col) in cols.iter().enumerate() {
            slab[nx * j..nx * (j + 1)].copy_from_slice(&col[nx * k..nx * (k + 1)]);
        }
    });
    Field {
        dims: features.dims,
        data: d,
    }
}

/// Squared distance along one line to its nearest `true` cell (`FAR` when there is none),
/// computed as the lower envelope would (`(pos(q) - pos(p))²`), so both agree to the bit.
fn nearest_on_line(features: &[bool], out: &mut [f32], w: f32) {
    let pos = |q: usize| q as f32 * w;
    let mut last: Option<usize> = None;
    for (q, (o, &f)) in out.iter_mut().zip(features).enumerate() {
        if f {
            last = Some(q);
        }
        *o = last.map_or(FAR, |p| {
            let dx = pos(q) - pos(p);
            dx * dx
        });
    }
    let mut next: Option<usize> = None;
    for (q, (o, &f)) in out.iter_mut().zip(features).enumerate().rev() {
        if f {
            next = Some(q);
        }
        if let Some(p) = next {
            let dx = pos(q) - pos(p);
            *o = o.min(dx * dx);
        }
    }
}

/// Buffers of [`transform_line`], reused across the lines of a pass: allocating three per line
/// cost as much as the transform itself.
#[derive(Default)]
struct Scratch {
    src: Vec<f32>,
    v: Vec<usize>,
    z: Vec<f32>,
}

/// One-dimensional squared distance transform (lower envelope of parabolas), in place.
fn transform_line(f: &mut [f32], w: f32, scratch: &mut Scratch) {
    let n = f.len();
    if n == 0 || f.iter().all(|&v| v >= FAR) {
        return;
    }
    let Scratch { src, v, z } = scratch;
    src.clear();
    src.extend_from_slice(f);
    v.clear();
    v.resize(n, 0);
    z.clear();
    z.resize(n + 1, 0.0);
    let mut k = 0usize;
    let pos = |q: usize| q as f32 * w;
    // skip leading cells with no value
    let first = src.iter().position(|&x| x < FAR).unwrap_or(0);
    v[0] = first;
    z[0] = f32::NEG_INFINITY;
    z[1] = f32::INFINITY;
    for q in first + 1..n {
        if src[q] >= FAR {
            continue;
        }
        loop {
            let p = v[k];
            let s = ((src[q] + pos(q) * pos(q)) - (src[p] + pos(p) * pos(p)))
                / (2.0 * (pos(q) - pos(p)));
            if s <= z[k] && k > 0 {
                k -= 1;
                continue;
            }
            if s <= z[k] {
                // k == 0: the new parabola dominates everywhere
                v[0] = q;
                z[0] = f32::NEG_INFINITY;
                z[1] = f32::INFINITY;
                break;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f32::INFINITY;
            break;
        }
    }
    let mut k = 0usize;
    for (q, out) in f.iter_mut().enumerate() {
        while z[k + 1] < pos(q) {
            k += 1;
        }
        let p = v[k];
        let dx = pos(q) - pos(p);
        *out = dx * dx + src[p];
    }
}

/// Columns per block of [`distance_sq_within`]'s z pass: 2 × 24 + 1 rows of them, in f32,
/// are 400 KB.
const WITHIN_Z_BLOCK: usize = 2048;
/// At least this many blocks, so that both cores have work to the end.
const MIN_Z_BLOCKS: usize = 16;

/// How many rows either side [`distance_sq_within`] looks at for `radius_mm`: one more than the
/// radius reaches, so rounding never leaves out a row within it.
pub fn reach_cells(radius_mm: f64, spacing: f64) -> usize {
    (radius_mm.max(0.0) / spacing).floor() as usize + 1
}

/// [`distance_sq`] where it is at most `radius_mm`², and something larger elsewhere: what
/// thresholding at `radius_mm` needs, at a fraction of the cost. After the exact first pass,
/// each further pass takes the minimum over the rows within reach only (a feature farther along
/// one axis than the radius is farther than it in all three), whole x rows at a time, which
/// vectorises and reads memory in order. Where it is within the radius the value is the same
/// sum as the exact transform's, so a threshold at the radius selects the same cells.
pub fn distance_sq_within(features: &Field<bool>, spacing: f64, radius_mm: f64) -> Field<f32> {
    let [nx, ny, nz] = features.dims;
    let w = spacing as f32;
    let reach = reach_cells(radius_mm, spacing);
    if reach > MAX_REACH {
        return distance_sq(features, spacing);
    }
    let pos = |q: usize| q as f32 * w;
    let mut along_x = vec![FAR; features.data.len()];
    along_x
        .par_chunks_mut(nx)
        .zip(features.data.par_chunks(nx))
        .for_each(|(line, f)| nearest_on_line(f, line, w));
    let min_rows = |out: &mut [f32], src: &[f32], dy: f32| {
        let c = dy * dy;
        for (o, &v) in out.iter_mut().zip(src) {
            let d = c + v;
            *o = if d < *o { d } else { *o };
        }
    };
    let mut along_y = vec![FAR; features.data.len()];
    along_y
        .par_chunks_mut(nx * ny)
        .zip(along_x.par_chunks(nx * ny))
        .for_each(|(out, src)| {
            for j in 0..ny {
                let row = &mut out[nx * j..nx * (j + 1)];
                for j2 in j.saturating_sub(reach)..(j + reach + 1).min(ny) {
                    min_rows(row, &src[nx * j2..nx * (j2 + 1)], pos(j) - pos(j2));
                }
            }
        });
    let src = along_y;
    let mut d = along_x;
    // z: in column blocks, whose rows within reach of a slice stay in a core's cache (whole
    // planes within 13 cells of a slice of the Philips head's grid are 1.4 MB)
    let plane = nx * ny;
    let width = plane.div_ceil(plane.div_ceil(WITHIN_Z_BLOCK).max(MIN_Z_BLOCKS));
    column_blocks(&mut d, plane, width)
        .into_par_iter()
        .enumerate()
        .for_each(|(b, outs)| {
            let c0 = b * width;
            for (k, out) in outs.into_iter().enumerate() {
                out.fill(FAR);
                for k2 in k.saturating_sub(reach)..(k + reach + 1).min(nz) {
                    let from = &src[plane * k2 + c0..][..out.len()];
                    min_rows(out, from, pos(k) - pos(k2));
                }
            }
        });
    Field {
        dims: features.dims,
        data: d,
    }
}

/// Cells within `radius_mm` of `mask`: [`distance_sq_within`] thresholded, or the same cells
/// from a disc of cells (`Disc`) where the radius is small and the distances are exact.
pub fn dilate(mask: &Field<bool>, radius_mm: f64, spacing: f64) -> Field<bool> {
    if let Some(disc) = Disc::new(mask.dims, radius_mm, spacing) {
        return disc.dilate(mask);
    }
    let r2 = (radius_mm * radius_mm) as f32;
    distance_sq_within(mask, spacing, radius_mm).map(|d| d <= r2)
}

/// Whether [`distance_sq_within`] computes exact squared distances on a grid of `dims` cells of
/// `spacing` mm, up to `reach` cells and a cell beyond: every position along an axis is exact in
/// `f32`, and so is every sum of squares it adds up there. Then each squared distance is a whole
/// number of cells² times the spacing², the same wherever it is measured (on the 2 mm working
/// grid, for one). Elsewhere, rounding makes the same offset a slightly different float at
/// different positions.
pub fn exact_distances(dims: [usize; 3], spacing: f64, reach: usize) -> bool {
    let w = spacing as f32;
    if w.is_nan() || w <= 0.0 {
        return false;
    }
    let longest = dims.into_iter().max().unwrap_or(0);
    let exact_mm = |q: usize| (q as f32 * w) as f64 == q as f64 * w as f64;
    if !(0..longest.max(reach + 2)).all(exact_mm) {
        return false;
    }
    let term = |q: usize| {
        let d = q as f32 * w;
        d * d
    };
    (0..=reach + 1).all(|dz| {
        (0..=reach + 1).all(|dy| {
            (0..=reach + 1).all(|dx| {
                let sum = term(dz) + (term(dy) + term(dx));
                sum as f64 == ((dx * dx + dy * dy + dz * dz) as f64) * (w as f64) * (w as f64)
            })
        })
    })
}

/// Beyond this many cells of reach a [`Disc`]'s rows cost more than the distance transform's.
const DISC_MAX_REACH: usize = 6;

/// A dilation as the union of x rows: a cell is within the radius of a feature `dy` rows and
/// `dz` slices away when the feature lies within that offset's largest `dx` cells along x. Each row needs
/// only the distance along x to its nearest feature, in cells (one byte), and the rows it takes
/// are combined a byte at a time: a few times faster than the distance transform in floats at
/// the small radii of the masks' openings and closings.
///
/// It is used only where the distance transform's floats are exact (every position along an
/// axis, and every sum of squares near the radius, a whole multiple of the spacing's square
/// that `f32` holds exactly, as on the 2 mm working grid): there both select the same cells.
struct Disc {
    dims: [usize; 3],
    /// `(dy, dz, largest dx)` of every row offset that reaches within the radius.
    rows: Vec<(isize, isize, u8)>,
}

impl Disc {
    fn new(dims: [usize; 3], radius_mm: f64, spacing: f64) -> Option<Disc> {
        let w = spacing as f32;
        let r2 = (radius_mm * radius_mm) as f32;
        let reach = reach_cells(radius_mm, spacing);
        if reach > DISC_MAX_REACH {
            return None;
        }
        if !exact_distances(dims, spacing, reach) {
            return None;
        }
        let term = |q: usize| {
            let d = q as f32 * w;
            d * d
        };
        // no offset beyond the reach is within the radius (that is what the reach is)
        let mut rows = Vec::new();
        for dz in 0..=reach {
            for dy in 0..=reach {
                // the largest dx whose sum, as the transform computes it, is within the radius
                let largest = (0..=reach)
                    .filter(|&dx| term(dz) + (term(dy) + term(dx)) <= r2)
                    .max();
                if let Some(dx) = largest {
                    let dx = dx as u8;
                    for (sy, sz) in [(1, 1), (-1, 1), (1, -1), (-1, -1)] {
                        let row = (sy * dy as isize, sz * dz as isize, dx);
                        if !rows.contains(&row) {
                            rows.push(row);
                        }
                    }
                }
            }
        }
        Some(Disc { dims, rows })
    }

    fn dilate(&self, mask: &Field<bool>) -> Field<bool> {
        let [nx, ny, nz] = self.dims;
        // distance along x (cells) to the nearest feature of the row, 255 for none or farther
        let mut along = vec![u8::MAX; mask.data.len()];
        along
            .par_chunks_mut(nx)
            .zip(mask.data.par_chunks(nx))
            .for_each(|(out, line)| {
                let mut last: Option<usize> = None;
                for (q, (o, &f)) in out.iter_mut().zip(line).enumerate() {
                    if f {
                        last = Some(q);
                    }
                    if let Some(p) = last {
                        *o = (q - p).min(255) as u8;
                    }
                }
                let mut next: Option<usize> = None;
                for (q, (o, &f)) in out.iter_mut().zip(line).enumerate().rev() {
                    if f {
                        next = Some(q);
                    }
                    if let Some(p) = next {
                        *o = (*o).min((p - q).min(255) as u8);
                    }
                }
            });
        let mut out = Field::filled(self.dims, false);
        out.data
            .par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slab)| {
                let mut acc = vec![0u8; nx];
                for j in 0..ny {
                    acc.fill(0);
                    for &(dy, dz, dx) in &self.rows {
                        let (b, e) = (j as isize + dy, k as isize + dz);
                        if b < 0 || e < 0 || b >= ny as isize || e >= nz as isize {
                            continue;
                        }
                        let src = &along[nx * (b as usize + ny * e as usize)..][..nx];
                        for (a, &d) in acc.iter_mut().zip(src) {
                            *a |= (d <= dx) as u8;
                        }
                    }
                    for (o, &a) in slab[nx * j..nx * (j + 1)].iter_mut().zip(&acc) {
                        *o = a != 0;
                    }
                }
            });
        out
    }
}

/// Cells of `mask` farther than `radius_mm` from any cell outside it. Cells beyond the grid
/// edge are not "outside": a head cut by the field of view is not eroded at the cut.
pub fn erode(mask: &Field<bool>, radius_mm: f64, spacing: f64) -> Field<bool> {
    dilate(&mask.map(|b| !b), radius_mm, spacing).map(|d| !d)
}

pub fn open(mask: &Field<bool>, radius_mm: f64, spacing: f64) -> Field<bool> {
    dilate(&erode(mask, radius_mm, spacing), radius_mm, spacing)
}

pub fn close(mask: &Field<bool>, radius_mm: f64, spacing: f64) -> Field<bool> {
    erode(&dilate(mask, radius_mm, spacing), radius_mm, spacing)
}

/// The runs of `true` cells along the x rows of a field, joined into 6-connected components.
///
/// Labelling by runs (one union–find node per run, not a flood cell by cell) touches each cell
/// once, in memory order: a head's masks are a few thousand runs where a flood pushes and pops
/// a million cells. Rows are joined to the row before them in y and in z wherever their runs
/// overlap in x, which is exactly 6-connectivity.
struct Runs {
    /// First cell and length of each run, in memory order.
    runs: Vec<(usize, usize)>,
    /// Each run's component: its label, numbered from 1 in the order of the components' first
    /// cells (as a flood from each unlabelled cell in memory order numbers them).
    label: Vec<u32>,
    /// Cells per label (index 0 unused).
    sizes: Vec<usize>,
}

impl Runs {
    fn of(mask: &Field<bool>) -> Runs {
        let [nx, ny, nz] = mask.dims;
        let rows = ny * nz;
        // each row's runs, found in parallel; then numbered in memory order
        let per_row: Vec<Vec<(usize, usize)>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                let line = &mask.data[nx * r..nx * (r + 1)];
                let mut out = Vec::new();
                let mut i = 0;
                while i < nx {
                    if line[i] {
                        let start = i;
                        while i < nx && line[i] {
                            i += 1;
                        }
                        out.push((nx * r + start, i - start));
                    } else {
                        i += 1;
                    }
                }
                out
            })
            .collect();
        let mut first = Vec::with_capacity(rows + 1);
        let mut runs = Vec::new();
        for row in per_row {
            first.push(runs.len());
            runs.extend(row);
        }
        first.push(runs.len());
        // union–find over runs; the root of a set is its earliest run
        let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
        fn root(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let up = parent[parent[x as usize] as usize];
                parent[x as usize] = up;
                x = up;
            }
            x
        }
        let join = |parent: &mut Vec<u32>, a: u32, b: u32| {
            let (ra, rb) = (root(parent, a), root(parent, b));
            if ra != rb {
                let (lo, hi) = (ra.min(rb), ra.max(rb));
                parent[hi as usize] = lo;
            }
        };
        let x_range = |&(start, len): &(usize, usize)| {
            let x = start % nx;
            (x, x + len)
        };
        for r in 0..rows {
            let (j, k) = (r % ny, r / ny);
            let neighbours = [(j > 0).then(|| r - 1), (k > 0).then(|| r - ny)];
            for other in neighbours.into_iter().flatten() {
                // both rows' runs are sorted in x: walk them together
                let (mut a, mut b) = (first[r], first[other]);
                while a < first[r + 1] && b < first[other + 1] {
                    let (a0, a1) = x_range(&runs[a]);
                    let (b0, b1) = x_range(&runs[b]);
                    if a0 < b1 && b0 < a1 {
                        join(&mut parent, a as u32, b as u32);
                    }
                    if a1 < b1 {
                        a += 1;
                    } else {
                        b += 1;
                    }
                }
            }
        }
        let mut label = vec![0u32; runs.len()];
        let mut sizes = vec![0usize];
        for (run, &(_, len)) in runs.iter().enumerate() {
            let r = root(&mut parent, run as u32) as usize;
            if r == run {
                label[run] = sizes.len() as u32;
                sizes.push(0);
            } else {
                label[run] = label[r];
            }
            sizes[label[run] as usize] += len;
        }
        Runs { runs, label, sizes }
    }

    /// The cells of the labels `keep` accepts.
    fn cells(&self, dims: [usize; 3], keep: impl Fn(usize) -> bool) -> Field<bool> {
        let mut out = Field::filled(dims, false);
        for (&(start, len), &l) in self.runs.iter().zip(&self.label) {
            if keep(l as usize) {
                out.data[start..start + len].fill(true);
            }
        }
        out
    }
}

/// The label of the largest component, the first of equals (`None` without components).
fn largest_label(sizes: &[usize]) -> Option<usize> {
    (1..sizes.len()).max_by_key(|&l| (sizes[l], std::cmp::Reverse(l)))
}

/// The 6-connected components of `mask` holding at least `share` of the `marker` cells that lie
/// in `mask`, and the largest component in any case (empty if `mask` is).
pub fn components_holding(mask: &Field<bool>, marker: &Field<bool>, share: f64) -> Field<bool> {
    let runs = Runs::of(mask);
    let mut marked = vec![0usize; runs.sizes.len()];
    for (&(start, len), &l) in runs.runs.iter().zip(&runs.label) {
        marked[l as usize] += marker.data[start..start + len]
            .iter()
            .filter(|&&m| m)
            .count();
    }
    let total: usize = marked.iter().sum();
    let largest = largest_label(&runs.sizes);
    runs.cells(mask.dims, |l| {
        Some(l) == largest || (total > 0 && marked[l] as f64 >= share * total as f64)
    })
}

/// The largest 6-connected component of `mask` (empty if `mask` is).
pub fn largest_component(mask: &Field<bool>) -> Field<bool> {
    let runs = Runs::of(mask);
    let largest = largest_label(&runs.sizes);
    runs.cells(mask.dims, |l| Some(l) == largest)
}

/// Cells not in `mask` that cannot reach the grid border without crossing `mask`
/// (6-connected paths): the components of the rest that touch no face of the grid.
pub fn enclosed(mask: &Field<bool>) -> Field<bool> {
    let [nx, ny, nz] = mask.dims;
    let rest = mask.map(|m| !m);
    let runs = Runs::of(&rest);
    let mut open = vec![false; runs.sizes.len()];
    for (&(start, len), &l) in runs.runs.iter().zip(&runs.label) {
        let (i, r) = (start % nx, start / nx);
        let (j, k) = (r % ny, r / ny);
        if i == 0 || i + len == nx || j == 0 || j + 1 == ny || k == 0 || k + 1 == nz {
            open[l as usize] = true;
        }
    }
    runs.cells(mask.dims, |l| !open[l])
}

/// Cells of `passable` that a path from `seeds` reaches within `radius_mm`, moving through
/// `passable` cells only: a geodesic distance, propagated in order of distance (Dijkstra) over
/// the 26 neighbours with their true step lengths, so that it is nearly the same whichever way
/// the grid is turned (6-neighbour steps would overstate diagonal paths by up to √3).
///
/// The queue is a bucket per cell of distance (Dial's): no step is shorter than a cell, so a
/// cell taken from bucket `b` only ever improves cells in later buckets, every cell of a bucket
/// is final when the bucket is reached, and the order within a bucket does not matter. Each
/// distance is the same float sum as a binary heap's Dijkstra gives, at a fraction of the cost.
pub fn reach_through(
    seeds: &Field<bool>,
    passable: &Field<bool>,
    radius_mm: f64,
    spacing: f64,
) -> Field<bool> {
    let [nx, ny, nz] = seeds.dims;
    let limit = (radius_mm / spacing) as f32;
    let mut buckets: Vec<Vec<(u32, f32)>> = vec![Vec::new(); limit.max(0.0) as usize + 1];
    // A seed leads anywhere only through a passable neighbour: the others are not queued (most
    // seeds are air far from the head). The cells beside a passable one are those within 1.8
    // cells of it (the 3×3×3 cube's farthest corner is √3 away, the next cell 2): one dilation
    // instead of 27 reads around every seed.
    let beside_passable = dilate(passable, 1.8 * spacing, spacing);
    buckets[0] = (0..seeds.data.len())
        .into_par_iter()
        .filter(|&c| seeds.data[c] && beside_passable.data[c])
        .map(|c| (c as u32, 0.0))
        .collect();
    let steps: Vec<([isize; 3], f32)> = (0..27)
        .filter(|&n| n != 13)
        .map(|n| {
            let o = [n % 3, (n / 3) % 3, n / 9].map(|x| x as isize - 1);
            let len = ((o[0] * o[0] + o[1] * o[1] + o[2] * o[2]) as f32).sqrt();
            (o, len)
        })
        .collect();
    // a step's index offset, for cells away from the grid's faces
    let deltas: Vec<isize> = steps
        .iter()
        .map(|(o, _)| o[0] + nx as isize * (o[1] + ny as isize * o[2]))
        .collect();
    // Every cell of a bucket is final when the bucket is reached and improves cells of later
    // buckets only, so a bucket's cells are relaxed in parallel: each distance is lowered by an
    // atomic minimum (non-negative floats order as their bits do), and a cell is queued by
    // whichever step lowered it. The distances are the same floats as one cell at a time gives;
    // only the order within later buckets varies, which does not matter.
    let dist: Vec<AtomicU32> = seeds
        .data
        .par_iter()
        .map(|&s| AtomicU32::new(if s { 0.0f32 } else { f32::INFINITY }.to_bits()))
        .collect();
    let at = |c: usize| f32::from_bits(dist[c].load(Ordering::Relaxed));
    for b in 0..buckets.len() {
        let bucket = std::mem::take(&mut buckets[b]);
        let queued: Vec<Vec<(u32, f32)>> = bucket
            .par_chunks(1024)
            .map(|cells| {
                let mut queued = Vec::new();
                for &(c, d) in cells {
                    let c = c as usize;
                    if d > at(c) {
                        continue;
                    }
                    let [i, j, k] = [c % nx, (c / nx) % ny, c / (nx * ny)].map(|x| x as isize);
                    let inner = i > 0
                        && j > 0
                        && k > 0
                        && i + 1 < nx as isize
                        && j + 1 < ny as isize
                        && k + 1 < nz as isize;
                    for (&(o, len), &delta) in steps.iter().zip(&deltas) {
                        let nb = if inner {
                            c.wrapping_add_signed(delta)
                        } else {
                            let (a, e, f) = (i + o[0], j + o[1], k + o[2]);
                            if a < 0
                                || e < 0
                                || f < 0
                                || a >= nx as isize
                                || e >= ny as isize
                                || f >= nz as isize
                            {
                                continue;
                            }
                            a as usize + nx * (e as usize + ny * f as usize)
                        };
                        let nd = d + len;
                        if passable.data[nb]
                            && nd <= limit
                            && nd < at(nb)
                            && f32::from_bits(dist[nb].fetch_min(nd.to_bits(), Ordering::Relaxed))
                                > nd
                        {
                            queued.push((nb as u32, nd));
                        }
                    }
                }
                queued
            })
            .collect();
        for (nb, nd) in queued.into_iter().flatten() {
            buckets[nd as usize].push((nb, nd));
        }
    }
    Field {
        dims: seeds.dims,
        data: (0..dist.len())
            .into_par_iter()
            .map(|c| !seeds.data[c] && at(c) <= limit)
            .collect(),
    }
}

/// `mask` with its enclosed holes filled.
pub fn fill_holes(mask: &Field<bool>) -> Field<bool> {
    let holes = enclosed(mask);
    mask.zip(&holes, |a, b| a || b)
}

#[inline]
pub fn neighbours6(dims: [usize; 3], c: usize) -> impl Iterator<Item = usize> {
    let [nx, ny, nz] = dims;
    let i = c % nx;
    let j = (c / nx) % ny;
    let k = c / (nx * ny);
    let sx = 1;
    let sy = nx;
    let sz = nx * ny;
    [
        (i > 0).then(|| c - sx),
        (i + 1 < nx).then(|| c + sx),
        (j > 0).then(|| c - sy),
        (j + 1 < ny).then(|| c + sy),
        (k > 0).then(|| c - sz),
        (k + 1 < nz).then(|| c + sz),
    ]
    .into_iter()
    .flatten()
}

/// Cells of `mask` with at least one 6-neighbour outside it for which `counts(neighbour)` holds.
///
/// The cells outside that count are marked once; each row then takes its neighbours' marks as
/// whole rows (the rows beside it in y and z, itself shifted by one in x), in loops the
/// compiler vectorises, instead of six index computations per cell.
pub fn boundary(mask: &Field<bool>, counts: impl Fn(usize) -> bool + Sync) -> Field<bool> {
    let [nx, ny, nz] = mask.dims;
    let plane = nx * ny;
    let outside: Vec<bool> = (0..mask.data.len())
        .into_par_iter()
        .map(|c| !mask.data[c] && counts(c))
        .collect();
    let mut data = vec![false; mask.data.len()];
    data.par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(k, slab)| {
            let mut near = vec![false; nx];
            for j in 0..ny {
                let at = nx * (j + ny * k);
                let row = |at: usize| &outside[at..at + nx];
                near.fill(false);
                // the rows beside this one in y and z, where the grid has them
                let beside = [
                    (j > 0).then(|| at - nx),
                    (j + 1 < ny).then(|| at + nx),
                    (k > 0).then(|| at - plane),
                    (k + 1 < nz).then(|| at + plane),
                ];
                for b in beside.into_iter().flatten() {
                    near.iter_mut().zip(row(b)).for_each(|(n, &o)| *n |= o);
                }
                // x: the cells before and after along the row itself
                let own = row(at);
                if nx > 1 {
                    near[1..].iter_mut().zip(own).for_each(|(n, &o)| *n |= o);
                    near[..nx - 1]
                        .iter_mut()
                        .zip(&own[1..])
                        .for_each(|(n, &o)| *n |= o);
                }
                let inside = &mask.data[at..at + nx];
                for ((o, &m), &n) in slab[nx * j..nx * (j + 1)].iter_mut().zip(inside).zip(&near) {
                    *o = m && n;
                }
            }
        });
    Field {
        dims: mask.dims,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`boundary`] row by row is the cells of the mask with a counted 6-neighbour outside it,
    /// checked cell by cell, on random masks (grids with axes of one and two cells among them)
    /// and a `counts` that takes some of the cells.
    #[test]
    fn boundary_is_each_cells_neighbours() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for dims in [
            [9, 7, 5],
            [1, 6, 4],
            [5, 1, 3],
            [4, 3, 1],
            [2, 2, 2],
            [17, 3, 6],
        ] {
            let n = dims.iter().product::<usize>();
            for density in [2, 3, 5] {
                let mask = Field {
                    dims,
                    data: (0..n).map(|_| next() % density != 0).collect(),
                };
                let take: Vec<bool> = (0..n).map(|_| next() % 4 != 0).collect();
                let fast = boundary(&mask, |c| take[c]);
                for c in 0..n {
                    let slow =
                        mask.data[c] && neighbours6(dims, c).any(|nb| !mask.data[nb] && take[nb]);
                    assert_eq!(fast.data[c], slow, "{dims:?} cell {:?}", mask.coords(c));
                }
            }
        }
    }

    /// Two blobs: the largest is always kept, the smaller only when it holds the share of the
    /// marked cells asked for.
    #[test]
    fn components_holding_keeps_the_largest_and_the_marked() {
        let dims = [12, 5, 5];
        let mut mask = Field::filled(dims, false);
        let mut marker = Field::filled(dims, false);
        for k in 1..4 {
            for j in 1..4 {
                for i in 1..6 {
                    let c = mask.idx(i, j, k);
                    mask.data[c] = true; // large: 45 cells
                }
                for i in 8..10 {
                    let c = mask.idx(i, j, k);
                    mask.data[c] = true; // small: 18 cells
                    marker.data[c] = i == 8 && j == 2;
                }
            }
        }
        let large = mask.zip(&Field::from_cells(dims, |c| c % 12 < 7), |m, l| m && l);
        // 3 marked cells, all in the small blob
        assert_eq!(components_holding(&mask, &marker, 0.05), mask);
        assert_eq!(
            components_holding(&mask, &marker.map(|_| false), 0.05),
            large
        );
        assert_eq!(largest_component(&mask), large);
    }

    #[test]
    fn distance_matches_brute_force() {
        let dims = [9, 7, 5];
        let mut f = Field::filled(dims, false);
        for &(i, j, k) in &[(1, 1, 1), (7, 5, 3), (4, 0, 4)] {
            let c = f.idx(i, j, k);
            f.data[c] = true;
        }
        let d = distance_sq(&f, 2.0);
        for c in 0..f.data.len() {
            let [i, j, k] = f.coords(c);
            let mut best = f32::MAX;
            for &(a, b, e) in &[(1, 1, 1), (7, 5, 3), (4, 0, 4)] {
                let dd = ((i as f32 - a as f32).powi(2)
                    + (j as f32 - b as f32).powi(2)
                    + (k as f32 - e as f32).powi(2))
                    * 4.0;
                best = best.min(dd);
            }
            assert!(
                (d.data[c] - best).abs() < 1e-3,
                "{c}: {} vs {best}",
                d.data[c]
            );
        }
    }

    /// A blobby mask: random seeds grown by a random distance each.
    fn blobs(dims: [usize; 3], seed: u64) -> Field<bool> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let seeds: Vec<([usize; 3], usize)> = (0..6)
            .map(|_| {
                (
                    [next() % dims[0], next() % dims[1], next() % dims[2]],
                    next() % 4,
                )
            })
            .collect();
        let mut f = Field::filled(dims, false);
        for c in 0..f.data.len() {
            let [i, j, k] = f.coords(c);
            f.data[c] = seeds.iter().any(|&(s, r)| {
                let d2: usize = (0..3).map(|a| [i, j, k][a].abs_diff(s[a]).pow(2)).sum();
                d2 <= r * r
            });
        }
        f
    }

    #[test]
    fn distance_within_a_radius_is_the_exact_distance() {
        for (seed, spacing) in [(1, 2.0), (2, 1.5), (3, 2.0), (4, 1.0)] {
            let f = blobs([23, 17, 19], seed);
            let exact = distance_sq(&f, spacing);
            for radius in [0.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 15.0] {
                let r2 = (radius * radius) as f32;
                let within = distance_sq_within(&f, spacing, radius);
                for c in 0..f.data.len() {
                    let (e, w) = (exact.data[c], within.data[c]);
                    if e <= r2 {
                        assert_eq!(e, w, "seed {seed} radius {radius} cell {c}");
                    } else {
                        assert!(w > r2, "seed {seed} radius {radius} cell {c}: {w} vs {e}");
                    }
                }
                let dilated = dilate(&f, radius, spacing);
                assert_eq!(dilated, exact.map(|d| d <= r2));
            }
        }
    }

    #[test]
    fn holes_are_filled_but_open_cavities_are_not() {
        let dims = [7, 7, 7];
        let mut shell = Field::filled(dims, false);
        for c in 0..shell.data.len() {
            let [i, j, k] = shell.coords(c);
            let m = [i, j, k]
                .iter()
                .map(|&x| (x as i32 - 3).abs())
                .max()
                .unwrap_or(0);
            shell.data[c] = m == 2;
        }
        assert_eq!(fill_holes(&shell).count(), 125);
        let open_at = shell.idx(3, 3, 5);
        shell.data[open_at] = false;
        assert_eq!(fill_holes(&shell).count(), 97);
    }

    /// The geodesic reach against relaxation to a fixed point (Bellman–Ford): the same cells,
    /// whatever the queue. Small grids with scattered seeds and walls, and a larger one whose
    /// seeds are a whole face of the grid among scattered walls, where each bucket holds
    /// thousands of cells and is relaxed in several parallel pieces.
    #[test]
    fn reach_through_is_the_geodesic_ball() {
        for seed in 1..6 {
            let dims = [21, 18, 16];
            let seeds = blobs(dims, seed);
            let walls = blobs(dims, seed + 100);
            let passable = Field::from_cells(dims, |c| !seeds.data[c] && !walls.data[c]);
            reaches_as_bellman_ford(&seeds, &passable, &format!("seed {seed}"));
        }
        let dims = [64, 56, 40];
        let seeds = Field::from_cells(dims, |c| c < 2 * dims[0] * dims[1]);
        for step in [7, 11] {
            let passable = Field::from_cells(dims, |c| {
                let [i, j, k] = seeds.coords(c);
                !seeds.data[c] && (i * 7 + j * 13 + k * 3) % step != 0
            });
            reaches_as_bellman_ford(&seeds, &passable, &format!("a face, walls every {step}"));
        }
    }

    fn reaches_as_bellman_ford(seeds: &Field<bool>, passable: &Field<bool>, case: &str) {
        let dims = seeds.dims;
        let steps: Vec<([isize; 3], f32)> = (0..27)
            .filter(|&n| n != 13)
            .map(|n| {
                let o = [n % 3, (n / 3) % 3, n / 9].map(|x| x as isize - 1);
                (o, ((o[0] * o[0] + o[1] * o[1] + o[2] * o[2]) as f32).sqrt())
            })
            .collect();
        let mut dist: Vec<f32> = seeds
            .data
            .iter()
            .map(|&s| if s { 0.0 } else { f32::INFINITY })
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for c in 0..dist.len() {
                if !passable.data[c] {
                    continue;
                }
                let [i, j, k] = seeds.coords(c).map(|x| x as isize);
                for &(o, len) in &steps {
                    let n = [i + o[0], j + o[1], k + o[2]];
                    if (0..3).any(|a| n[a] < 0 || n[a] >= dims[a] as isize) {
                        continue;
                    }
                    let nb = seeds.idx(n[0] as usize, n[1] as usize, n[2] as usize);
                    if dist[nb] + len < dist[c] {
                        dist[c] = dist[nb] + len;
                        changed = true;
                    }
                }
            }
        }
        for (radius, spacing) in [(6.0, 2.0), (9.0, 1.5), (4.5, 1.0), (30.0, 2.0)] {
            let limit = (radius / spacing) as f32;
            let reached = reach_through(seeds, passable, radius, spacing);
            let expected = Field::from_cells(dims, |c| !seeds.data[c] && dist[c] <= limit);
            assert!(expected.count() > 20, "{case}: a trivial case");
            assert_eq!(reached, expected, "{case} radius {radius}");
        }
    }

    /// Components labelled by a plain breadth-first flood from each unlabelled cell in memory
    /// order: the reference for the run-based labelling.
    fn flood_labels(mask: &Field<bool>) -> (Vec<u32>, Vec<usize>) {
        let mut label = vec![0u32; mask.data.len()];
        let mut sizes = vec![0usize];
        for start in 0..mask.data.len() {
            if !mask.data[start] || label[start] != 0 {
                continue;
            }
            let l = sizes.len() as u32;
            sizes.push(0);
            label[start] = l;
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(c) = queue.pop_front() {
                sizes[l as usize] += 1;
                for nb in neighbours6(mask.dims, c) {
                    if mask.data[nb] && label[nb] == 0 {
                        label[nb] = l;
                        queue.push_back(nb);
                    }
                }
            }
        }
        (label, sizes)
    }

    #[test]
    fn runs_label_the_components_as_a_flood_does() {
        let (mut components, mut hole_cells) = (0, 0);
        for seed in 0..40 {
            let dims = [13 + seed as usize % 5, 11, 9 + seed as usize % 3];
            // thin, ragged shapes: many components, runs touching only at corners or edges
            let a = blobs(dims, seed);
            let b = blobs(dims, seed + 1000);
            let mask = Field::from_cells(dims, |c| a.data[c] ^ b.data[c] ^ (c % 7 == 3));
            let (label, sizes) = flood_labels(&mask);
            let runs = Runs::of(&mask);
            assert_eq!(runs.sizes, sizes, "seed {seed}");
            for (&(start, len), &l) in runs.runs.iter().zip(&runs.label) {
                assert!(
                    label[start..start + len].iter().all(|&x| x == l),
                    "seed {seed}"
                );
            }
            let covered: usize = runs.runs.iter().map(|r| r.1).sum();
            assert_eq!(covered, mask.count());
            // the holes: what the border's flood does not reach
            let outside = Field::from_cells(dims, |c| !mask.data[c]);
            let (out_label, _) = flood_labels(&outside);
            let mut open = std::collections::HashSet::new();
            for (c, &l) in out_label.iter().enumerate() {
                let [i, j, k] = mask.coords(c);
                let border = [i, j, k]
                    .iter()
                    .zip(dims)
                    .any(|(&x, n)| x == 0 || x + 1 == n);
                if border && l != 0 {
                    open.insert(l);
                }
            }
            let holes =
                Field::from_cells(dims, |c| out_label[c] != 0 && !open.contains(&out_label[c]));
            assert_eq!(enclosed(&mask), holes, "seed {seed}");
            components += sizes.len() - 1;
            hole_cells += holes.count();
        }
        assert!(
            components > 200 && hole_cells > 20,
            "{components} {hole_cells}"
        );
    }

    /// Dilation and erosion by rows of a disc select what the distance transform selects.
    #[test]
    fn disc_rows_are_the_distance_threshold() {
        let mut by_disc = 0;
        for (seed, spacing) in [(1, 2.0), (2, 1.5), (3, 2.0), (4, 1.0), (5, 1.7), (6, 0.5)] {
            let f = blobs([29, 17, 19], seed);
            for radius in [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 12.0] {
                let r2 = (radius * radius) as f32;
                let near = distance_sq_within(&f, spacing, radius).map(|d| d <= r2);
                let far_inside =
                    distance_sq_within(&f.map(|b| !b), spacing, radius).map(|d| d > r2);
                assert_eq!(
                    dilate(&f, radius, spacing),
                    near,
                    "{seed} {radius} {spacing}"
                );
                assert_eq!(
                    erode(&f, radius, spacing),
                    far_inside,
                    "{seed} {radius} {spacing}"
                );
                by_disc += Disc::new(f.dims, radius, spacing).is_some() as usize;
            }
        }
        // the 2 mm working grid's radii up to 10 mm take the rows, larger ones the transform;
        // a 1.7 mm grid never does (its positions are not exact in f32)
        assert!(Disc::new([29, 17, 19], 10.0, 2.0).is_some());
        assert!(Disc::new([29, 17, 19], 12.0, 2.0).is_none());
        assert!(Disc::new([29, 17, 19], 4.0, 1.7).is_none());
        assert!(by_disc > 30, "{by_disc}");
    }
}
