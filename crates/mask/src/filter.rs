//! Box filters on the working grid: sums and masked means over (2r+1)³ cells, separable and
//! exact (prefix sums), for levels that must not be dragged by the cells left out.

use crate::grid::{column_blocks, Field};
use rayon::prelude::*;

/// Mean of `values` over the `mask` cells in a (2r+1)³ box around each cell (0 where the box
/// holds none): a separable box filter of the masked values and of the mask.
///
/// The filter runs on the box of cells whose windows reach a `mask` cell (the mask's bounding
/// box grown by `r`); elsewhere the mean is 0 by definition. Within that box the sums are the
/// whole grid's to the bit: every cell left out adds an exact zero to them. An oblique scan's
/// working grid is mostly air around the head (ch2 turned by 20° and 10°: 2.1 million cells,
/// less than half of them in its head's box).
pub fn local_mean(values: &Field<f32>, mask: &Field<bool>, r: usize) -> Field<f32> {
    let mut out = Field::filled(mask.dims, 0.0f32);
    let Some((lo, hi)) = bounding_box(mask) else {
        return out;
    };
    let lo = lo.map(|x| x.saturating_sub(r));
    let hi: [usize; 3] = std::array::from_fn(|a| (hi[a] + r).min(mask.dims[a] - 1));
    let dims: [usize; 3] = std::array::from_fn(|a| hi[a] + 1 - lo[a]);
    let [nx, ny, _] = mask.dims;
    // the first cell of row (j, k) of the box, on the whole grid
    let row_start = move |j: usize, k: usize| lo[0] + nx * (lo[1] + j + ny * (lo[2] + k));
    let (sum, n) = rayon::join(
        || {
            box_sum(dims, r, |j, k, line: &mut [f64]| {
                let at = row_start(j, k);
                let (v, m) = (&values.data[at..], &mask.data[at..]);
                for ((o, &v), &m) in line.iter_mut().zip(v).zip(m) {
                    *o = if m { v as f64 } else { 0.0 };
                }
            })
        },
        // counts are whole numbers: the same in u32 as in f64, at half the memory traffic
        || {
            box_sum(dims, r, |j, k, line: &mut [u32]| {
                let at = row_start(j, k);
                for (o, &m) in line.iter_mut().zip(&mask.data[at..]) {
                    *o = m as u32;
                }
            })
        },
    );
    let box_plane = dims[0] * dims[1];
    out.data
        .par_chunks_mut(nx * ny)
        .skip(lo[2])
        .zip(sum.par_chunks(box_plane).zip(n.par_chunks(box_plane)))
        .for_each(|(slab, (s, n))| {
            for (j, (s, n)) in s.chunks(dims[0]).zip(n.chunks(dims[0])).enumerate() {
                let at = lo[0] + nx * (lo[1] + j);
                for ((o, &s), &n) in slab[at..at + dims[0]].iter_mut().zip(s).zip(n) {
                    *o = if n > 0 { (s / n as f64) as f32 } else { 0.0 };
                }
            }
        });
    out
}

/// The smallest and largest cell index along each axis of the `true` cells (`None` if none).
fn bounding_box(mask: &Field<bool>) -> Option<([usize; 3], [usize; 3])> {
    let [nx, ny, _] = mask.dims;
    mask.data
        .par_chunks(nx.max(1))
        .enumerate()
        .filter_map(|(row, line)| {
            let first = line.iter().position(|&b| b)?;
            let last = line.iter().rposition(|&b| b)?;
            let (j, k) = (row % ny, row / ny);
            Some(([first, j, k], [last, j, k]))
        })
        .reduce_with(|(a, b), (c, d)| {
            (
                std::array::from_fn(|i| a[i].min(c[i])),
                std::array::from_fn(|i| b[i].max(d[i])),
            )
        })
}

/// What a box sum adds: the masked values (f64) and the mask's counts (u32).
trait Summand:
    Copy + Default + Send + Sync + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self>
{
}
impl Summand for f64 {}
impl Summand for u32 {}

/// Sums over a window of 2r+1 cells along each axis (clipped at the grid's edge) of the field of
/// `dims` whose x rows `fill(j, k, row)` writes. Along each axis the window's sum is the
/// difference of two prefix sums.
///
/// Memory traffic, not arithmetic, is the cost on grids larger than the caches: x and y are
/// summed slab by slab in scratch that stays in cache, the input written there directly, and z
/// in column blocks whose prefix sums are kept only as far back as a window reaches (a ring of
/// 2r+2 rows). Each cell's sums are the same additions in the same order as summing line by
/// line.
fn box_sum<T: Summand>(
    dims: [usize; 3],
    r: usize,
    fill: impl Fn(usize, usize, &mut [T]) + Sync,
) -> Vec<T> {
    let [nx, ny, nz] = dims;
    let plane = nx * ny;
    let mut xy = vec![T::default(); plane * nz];
    xy.par_chunks_mut(plane.max(1)).enumerate().for_each_init(
        || {
            (
                vec![T::default(); plane],
                vec![T::default(); nx + 1],
                vec![T::default(); nx * (ny + 1)],
            )
        },
        |(slab, prefix, rows_prefix), (k, out)| {
            // x: the input's rows, then a running sum along each
            for (j, o) in slab.chunks_mut(nx).enumerate() {
                fill(j, k, o);
                let mut acc = T::default();
                for (p, &v) in prefix[1..].iter_mut().zip(o.iter()) {
                    acc = acc + v;
                    *p = acc;
                }
                for (t, o) in o.iter_mut().enumerate() {
                    *o = prefix[(t + r + 1).min(nx)] - prefix[t.saturating_sub(r)];
                }
            }
            // y: prefix sums of whole x rows
            window_rows(slab, out, rows_prefix, nx, ny, r);
        },
    );
    // z: column blocks of whole planes' rows, each summed over z on its own, in place: slice
    // k's sums are written once rows up to k + r have been added into the ring, and row k is
    // never read again
    let width = Z_BLOCK.min(plane.max(1));
    let parts = column_blocks(&mut xy, plane, width);
    parts.into_par_iter().for_each(|mut outs| {
        let w = outs.first().map_or(0, |o| o.len());
        let slots = 2 * r + 2;
        // prefix t (the sum of rows 0..t) lives in slot t % slots; prefix 0 is zero
        let mut ring = vec![T::default(); slots * w];
        let mut next = 0;
        for t in 0..=nz {
            if t > 0 {
                let (prev, cur) = ((t - 1) % slots, t % slots);
                let src = &outs[t - 1][..];
                // the two slots, disjoint
                let (a, b) = ring.split_at_mut(cur.max(prev) * w);
                let (p, c) = if prev < cur {
                    (&a[prev * w..prev * w + w], &mut b[..w])
                } else {
                    (&b[..w], &mut a[cur * w..cur * w + w])
                };
                for ((c, &p), &v) in c.iter_mut().zip(p).zip(src) {
                    *c = p + v;
                }
            }
            // every slice whose window ends at t: from prefix max(k − r, 0) to prefix t
            while next < nz && (next + r + 1).min(nz) == t {
                let lo = next.saturating_sub(r) % slots;
                let hi = t % slots;
                let (h, l) = (&ring[hi * w..hi * w + w], &ring[lo * w..lo * w + w]);
                for ((o, &a), &b) in outs[next].iter_mut().zip(h).zip(l) {
                    *o = a - b;
                }
                next += 1;
            }
        }
    });
    xy
}

/// Columns per block of the z sums: a ring of 2r+2 rows of them (r = 8: 18 rows, 147 KB of
/// f64) stays in a core's cache.
const Z_BLOCK: usize = 1024;

/// Window sums over 2r+1 rows of `width` (row t at t * width) of `len` rows, as the difference
/// of prefix sums of whole rows (`prefix`: (len + 1) rows of scratch).
fn window_rows<T: Summand>(
    src: &[T],
    dst: &mut [T],
    prefix: &mut [T],
    width: usize,
    len: usize,
    r: usize,
) {
    prefix[..width].fill(T::default());
    for t in 0..len {
        let (done, next) = prefix.split_at_mut(width * (t + 1));
        let prev = &done[width * t..];
        for ((p, &q), &v) in next[..width].iter_mut().zip(prev).zip(&src[width * t..]) {
            *p = q + v;
        }
    }
    for t in 0..len {
        let (hi, lo) = ((t + r + 1).min(len), t.saturating_sub(r));
        let (h, l) = (&prefix[width * hi..], &prefix[width * lo..]);
        for ((o, &a), &b) in dst[width * t..width * (t + 1)].iter_mut().zip(h).zip(l) {
            *o = a - b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> impl Iterator<Item = u64> {
        let mut seed = seed;
        (0..n).map(move |_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        })
    }

    /// The separable prefix-sum box filter against the plain sum over each clipped window, on
    /// whole numbers (exact in any order of addition), in f64 and u32, every axis length below,
    /// at and above the window, on planes of one and of two column blocks of the z sums.
    #[test]
    fn box_sum_is_the_sum_over_each_clipped_window() {
        for dims in [[7, 5, 11], [45, 31, 9]] {
            let n = dims.iter().product::<usize>();
            let data: Vec<f64> = random(n, 12345).map(|v| (v % 1000) as f64).collect();
            let f = Field { dims, data };
            let [nx, ny, _] = dims;
            let row = |j: usize, k: usize| nx * (j + ny * k);
            for r in [1, 3, 6] {
                let fast = box_sum(dims, r, |j, k, line: &mut [f64]| {
                    line.copy_from_slice(&f.data[row(j, k)..][..nx])
                });
                let counts = box_sum(dims, r, |j, k, line: &mut [u32]| {
                    for (o, &v) in line.iter_mut().zip(&f.data[row(j, k)..]) {
                        *o = v as u32;
                    }
                });
                for c in 0..f.data.len() {
                    let [i, j, k] = f.coords(c);
                    let span = |x: usize, n: usize| x.saturating_sub(r)..(x + r + 1).min(n);
                    let mut sum = 0.0;
                    for kk in span(k, dims[2]) {
                        for jj in span(j, dims[1]) {
                            for ii in span(i, dims[0]) {
                                sum += f.get(ii, jj, kk);
                            }
                        }
                    }
                    assert_eq!(fast[c], sum, "{dims:?} r {r} at {:?}", [i, j, k]);
                    assert_eq!(
                        counts[c] as f64,
                        sum,
                        "u32, {dims:?} r {r} at {:?}",
                        [i, j, k]
                    );
                }
            }
        }
    }

    /// The local mean over the mask's box is the whole grid's to the bit, on values whose sums
    /// round (any cell left out would show), and 0 beyond the box's reach.
    #[test]
    fn local_mean_over_the_masks_box_is_the_whole_grids() {
        let dims = [40, 33, 29];
        let n = dims.iter().product::<usize>();
        let values = Field {
            dims,
            data: random(n, 99).map(|v| (v % 100_000) as f32 / 7.3).collect(),
        };
        let bits: Vec<u64> = random(n, 7).collect();
        let mask = Field::from_cells(dims, |c| {
            let [i, j, k] = values.coords(c);
            (9..30).contains(&i)
                && (5..20).contains(&j)
                && (12..27).contains(&k)
                && !bits[c].is_multiple_of(3)
        });
        let [nx, ny, _] = dims;
        for r in [1, 4] {
            let row = |j: usize, k: usize| nx * (j + ny * k);
            let sum = box_sum(dims, r, |j, k, line: &mut [f64]| {
                for ((o, &v), &m) in line
                    .iter_mut()
                    .zip(&values.data[row(j, k)..])
                    .zip(&mask.data[row(j, k)..])
                {
                    *o = if m { v as f64 } else { 0.0 };
                }
            });
            let count = box_sum(dims, r, |j, k, line: &mut [u32]| {
                for (o, &m) in line.iter_mut().zip(&mask.data[row(j, k)..]) {
                    *o = m as u32;
                }
            });
            let mean = local_mean(&values, &mask, r);
            for c in 0..n {
                let whole = if count[c] > 0 {
                    (sum[c] / count[c] as f64) as f32
                } else {
                    0.0
                };
                assert_eq!(
                    mean.data[c].to_bits(),
                    whole.to_bits(),
                    "r {r} at {:?}",
                    values.coords(c)
                );
            }
            assert!(mean.data.iter().filter(|&&m| m != 0.0).count() > 5000);
        }
    }
}
