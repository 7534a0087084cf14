//! Box filters on the working grid: sums and masked means over (2r+1)³ cells, separable and
//! exact (prefix sums), for levels that must not be dragged by the cells left out.

use crate::grid::Field;
use rayon::prelude::*;

/// Mean of `values` over the `mask` cells in a (2r+1)³ box around each cell (0 where the box
/// holds none): a separable box filter of the masked values and of the mask.
pub fn local_mean(values: &Field<f32>, mask: &Field<bool>, r: usize) -> Field<f32> {
    let (sum, n) = rayon::join(
        || box_sum(&values.zip(mask, |v, m| if m { v as f64 } else { 0.0 }), r),
        // counts are whole numbers: the same in u32 as in f64, at half the memory traffic
        || box_sum(&mask.map(|m| m as u32), r),
    );
    sum.zip(&n, |s, n| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
}

/// What a box sum adds: the masked values (f64) and the mask's counts (u32).
trait Summand:
    Copy + Default + Send + Sync + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self>
{
}
impl Summand for f64 {}
impl Summand for u32 {}

fn box_sum<T: Summand>(f: &Field<T>, r: usize) -> Field<T> {
    let mut data = box_axis(&f.data, f.dims, 0, r);
    for axis in 1..3 {
        data = box_axis(&data, f.dims, axis, r);
    }
    Field { dims: f.dims, data }
}

/// Running sum over a window of 2r+1 cells along one axis (clipped at the grid edge), as the
/// difference of two prefix sums. Along y and z the prefix sums are taken of whole x rows at a
/// time (contiguous, and the same additions in the same order as line by line).
fn box_axis<T: Summand>(data: &[T], dims: [usize; 3], axis: usize, r: usize) -> Vec<T> {
    let [nx, ny, nz] = dims;
    let mut out = vec![T::default(); data.len()];
    // prefix sums of `len` rows of `width` (row t at t * width) and the window sums from them
    let rows = |src: &[T], dst: &mut [T], width: usize, len: usize| {
        let mut prefix = vec![T::default(); width * (len + 1)];
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
    };
    match axis {
        // along x the rows are single cells: a running sum (the same additions, in the same
        // order), one scratch line per slab
        0 => out
            .par_chunks_mut(nx * ny)
            .zip(data.par_chunks(nx * ny))
            .for_each(|(o, slab)| {
                let mut prefix = vec![T::default(); nx + 1];
                for (o, line) in o.chunks_mut(nx).zip(slab.chunks(nx)) {
                    let mut acc = T::default();
                    for (p, &v) in prefix[1..].iter_mut().zip(line) {
                        acc = acc + v;
                        *p = acc;
                    }
                    for (t, o) in o.iter_mut().enumerate() {
                        *o = prefix[(t + r + 1).min(nx)] - prefix[t.saturating_sub(r)];
                    }
                }
            }),
        1 => out
            .par_chunks_mut(nx * ny)
            .zip(data.par_chunks(nx * ny))
            .for_each(|(o, slab)| rows(slab, o, nx, ny)),
        _ => {
            // z: split the x-y plane into column blocks, each summed over z on its own
            let plane = nx * ny;
            let block = nx.max(plane.div_ceil(8));
            let parts: Vec<(usize, Vec<T>)> = (0..plane.div_ceil(block))
                .into_par_iter()
                .map(|b| {
                    let (c0, c1) = (b * block, ((b + 1) * block).min(plane));
                    let width = c1 - c0;
                    let src: Vec<T> = (0..nz)
                        .flat_map(|k| data[plane * k + c0..plane * k + c1].iter().copied())
                        .collect();
                    let mut dst = vec![T::default(); width * nz];
                    rows(&src, &mut dst, width, nz);
                    (c0, dst)
                })
                .collect();
            out.par_chunks_mut(plane).enumerate().for_each(|(k, o)| {
                for (c0, dst) in &parts {
                    let width = dst.len() / nz;
                    o[*c0..c0 + width].copy_from_slice(&dst[width * k..width * (k + 1)]);
                }
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The separable prefix-sum box filter against the plain sum over each clipped window, on
    /// whole numbers (exact in any order of addition), in f64 and u32, every axis length below,
    /// at and above the window.
    #[test]
    fn box_sum_is_the_sum_over_each_clipped_window() {
        let dims = [7, 5, 11];
        let mut seed = 12345u64;
        let data: Vec<f64> = (0..dims.iter().product::<usize>())
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) % 1000) as f64
            })
            .collect();
        let f = Field { dims, data };
        let whole = f.map(|v| v as u32);
        for r in [1, 3, 6] {
            let fast = box_sum(&f, r);
            let counts = box_sum(&whole, r);
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
                assert_eq!(fast.data[c], sum, "r {r} at {:?}", [i, j, k]);
                assert_eq!(counts.data[c] as f64, sum, "u32, r {r} at {:?}", [i, j, k]);
            }
        }
    }
}
