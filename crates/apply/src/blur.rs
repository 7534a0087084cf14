//! Gaussian smoothing in millimetres, and the two methods that rebuild the face region from a
//! smooth shape: blur (the subject's own head, smoothed) and reface (the template's head).

use defacer_volume::Volume;
use ndarray::{s, Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

use crate::noise::{background_pools, hash};
use crate::{Fill, Region};

/// Width of the ramp (in mm, as a Gaussian sigma) over which the rebuilt face fades into the
/// kept tissue, so no hard edge marks where the face was.
const BLEND_SIGMA_MM: f64 = 3.0;

/// The level of the smoothed shape taken as the new surface (see [`smooth_shape`]).
const SHAPE_LEVEL: f32 = 0.3;

/// The level that erodes a smoothed shape by about one sigma from a flat surface; a cylinder of
/// radius 1.5 sigma (a nose, for sigma 10 mm) peaks below it and vanishes.
const ERODE_LEVEL: f32 = 0.85;

/// Sigma of the smoothing that turns independent tissue draws into a tissue-like texture.
const TEXTURE_SIGMA_MM: f64 = 1.5;

/// Smooths `field` with an isotropic Gaussian of `sigma_mm`, given the voxel size along each
/// axis (anisotropic voxels get anisotropic kernels in voxels). Edges replicate the border.
pub fn gaussian_blur_mm(field: &Array3<f32>, voxel_mm: [f64; 3], sigma_mm: f64) -> Array3<f32> {
    let mut out = field.clone();
    for (axis, vox) in voxel_mm.iter().enumerate() {
        let sigma = sigma_mm / vox.max(1e-6);
        if sigma < 0.2 {
            continue;
        }
        out = blur_axis(&out, Axis(axis), &kernel(sigma));
    }
    out
}

fn kernel(sigma: f64) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f64> = (-r..=r)
        .map(|x| (-(x * x) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k.into_iter().map(|v| v as f32).collect()
}

/// One axis of the separable Gaussian. Works on the standard (z-fastest) layout: along the
/// contiguous axis each lane is copied once with its ends replicated, so the taps need no
/// clamping; along the other two, whole contiguous rows are weighted and summed, which streams
/// through memory instead of striding once per tap. Outputs are accumulated one tap at a time
/// over a whole row, which vectorises. Every voxel sums its taps in the same
/// order as a plain per-voxel loop would, whatever the thread count.
fn blur_axis(a: &Array3<f32>, axis: Axis, k: &[f32]) -> Array3<f32> {
    let src = a.as_standard_layout();
    let (nx, ny, nz) = a.dim();
    let src = src.as_slice().unwrap_or(&[]);
    let r = (k.len() / 2) as isize;
    let mut out = vec![0f32; nx * ny * nz];
    if src.is_empty() || out.is_empty() {
        return Array3::zeros(a.raw_dim());
    }
    let plane = ny * nz;
    match axis.index() {
        2 => out
            .par_chunks_mut(nz)
            .zip(src.par_chunks(nz))
            .for_each_init(Vec::new, |padded, (o, lane)| {
                padded.clear();
                padded.extend(
                    (-r..nz as isize + r).map(|i| lane[i.clamp(0, nz as isize - 1) as usize]),
                );
                // tap by tap over the whole lane: vectorises, and each voxel still adds its
                // taps in order
                for (t, w) in k.iter().enumerate() {
                    for (o, v) in o.iter_mut().zip(&padded[t..t + nz]) {
                        *o += w * v;
                    }
                }
            }),
        1 => out
            .par_chunks_mut(plane)
            .zip(src.par_chunks(plane))
            .for_each(|(o, slab)| {
                for j in 0..ny {
                    let row = &mut o[j * nz..(j + 1) * nz];
                    for (t, w) in k.iter().enumerate() {
                        let jj = (j as isize + t as isize - r).clamp(0, ny as isize - 1) as usize;
                        let from = &slab[jj * nz..(jj + 1) * nz];
                        for (o, v) in row.iter_mut().zip(from) {
                            *o += w * v;
                        }
                    }
                }
            }),
        _ => out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| {
            for (t, w) in k.iter().enumerate() {
                let ii = (i as isize + t as isize - r).clamp(0, nx as isize - 1) as usize;
                let from = &src[ii * plane..(ii + 1) * plane];
                for (o, v) in o.iter_mut().zip(from) {
                    *o += w * v;
                }
            }
        }),
    }
    Array3::from_shape_vec((nx, ny, nz), out).unwrap_or_else(|_| Array3::zeros(a.raw_dim()))
}

/// Bounding box `[lo, hi)` of the true voxels, grown by `pad` voxels per axis.
pub(crate) fn bounding_box(
    mask: &ArrayView3<bool>,
    pad: [usize; 3],
) -> Option<[(usize, usize); 3]> {
    let sh = mask.shape();
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for ((i, j, k), &m) in mask.indexed_iter() {
        if m {
            for (a, v) in [i, j, k].into_iter().enumerate() {
                lo[a] = lo[a].min(v);
                hi[a] = hi[a].max(v + 1);
            }
        }
    }
    if lo[0] == usize::MAX {
        return None;
    }
    Some([0, 1, 2].map(|a| (lo[a].saturating_sub(pad[a]), (hi[a] + pad[a]).min(sh[a]))))
}

/// The shape the blur method smooths: the subject's head, united with the fitted template head
/// where there is one. The head mask alone has tunnels (nasal and oral cavities, sinuses, the
/// faint lower face of head-coil images); smoothing it would carve those into the surface as
/// holes that read as eyes and a mouth.
pub(crate) fn subject_envelope(region: &Region) -> Array3<bool> {
    match region.template_head {
        Some(t) => Zip::from(&region.head).and(&t).map_collect(|&h, &t| h || t),
        None => region.head.to_owned(),
    }
}

/// A plain version of a head shape: an opening (erode, then dilate, each by about one sigma,
/// both as levels of a Gaussian-smoothed indicator) removes every protrusion narrower than
/// about three sigmas — the nose, lips, chin point — and a last smoothing at a level below ½
/// bulges over the concavities (eye sockets) instead of cutting into them.
fn smooth_shape(shape: &Array3<bool>, vox: [f64; 3], sigma_mm: f64) -> Array3<bool> {
    let indicator = |a: &Array3<bool>| a.mapv(|m| m as u8 as f32);
    let eroded = gaussian_blur_mm(&indicator(shape), vox, sigma_mm).mapv(|g| g >= ERODE_LEVEL);
    let opened =
        gaussian_blur_mm(&indicator(&eroded), vox, sigma_mm).mapv(|g| g >= 1.0 - ERODE_LEVEL);
    gaussian_blur_mm(&indicator(&opened), vox, sigma_mm / 2.0).mapv(|g| g >= SHAPE_LEVEL)
}

/// Median of `values` where `weights` > 0.
fn median_where(values: &Array3<f32>, weights: &Array3<f32>) -> Option<f32> {
    let mut v: Vec<f32> = Zip::from(values)
        .and(weights)
        .fold(Vec::new(), |mut acc, &x, &w| {
            if w > 0.0 && x.is_finite() {
                acc.push(x);
            }
            acc
        });
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    Some(*m)
}

/// What fills the rebuilt shape.
pub(crate) enum Tissue {
    /// The local mean of the subject's tissue, smoothed with this sigma (mm): no texture, no
    /// detail, no dilution by air (normalised convolution over head voxels only).
    SmoothMean { sigma_mm: f64 },
    /// Random draws from the subject's own tissue in the region, smoothed into a texture.
    Texture,
}

/// Rebuilds the face region: inside `shape` (the smoothed shape of `head_like` with
/// `shape_sigma_mm`), tissue; outside, air or background noise; blended into the original over
/// a few mm at the region's edge.
pub(crate) fn rebuild_region(
    vol: &mut Volume,
    region: &Region,
    head_like: ArrayView3<bool>,
    shape_sigma_mm: f64,
    tissue: Tissue,
    fill: Fill,
    air: f64,
) {
    // An uneven stack's narrowest slice gap stands for all of them: kernels in voxels are then
    // at least as wide in mm as asked everywhere.
    let vox = vol
        .voxel_map()
        .map_or_else(|| vol.affine.voxel_size(), |m| m.voxel_size());
    let widest = match tissue {
        Tissue::SmoothMean { sigma_mm } => sigma_mm,
        Tissue::Texture => TEXTURE_SIGMA_MM,
    }
    .max(shape_sigma_mm)
    .max(BLEND_SIGMA_MM);
    let pad = vox.map(|v| (3.0 * widest / v).ceil() as usize + 1);
    let Some(bb) = bounding_box(&region.change, pad) else {
        return;
    };
    let sl = s![bb[0].0..bb[0].1, bb[1].0..bb[1].1, bb[2].0..bb[2].1];
    let off = [bb[0].0, bb[1].0, bb[2].0];
    let change = region.change.slice(sl);
    let inside = change.mapv(|m| m as u8 as f32);
    // Weight 0 on the region's edge, 1 a few mm inside: 2·(smoothed indicator − ½), clipped.
    let weight = gaussian_blur_mm(&inside, vox, BLEND_SIGMA_MM)
        .mapv(|g| (2.0 * (g - 0.5)).clamp(0.0, 1.0))
        * &inside;
    // The new surface: a level of the smoothed shape. Narrow features (nose, lips) are thinner
    // than the kernel and vanish. The level is below ½ so that the surface bulges out over
    // concavities instead of cutting into the head: cutting in would open the nasal and oral
    // cavities behind the region, holes that read as eyes and mouth.
    let shape = smooth_shape(&head_like.slice(sl).to_owned(), vox, shape_sigma_mm);
    let head = region.head.slice(sl).mapv(|m| m as u8 as f32);
    // the background's samples only for a noise fill (gathering them reads the whole volume)
    let background = matches!(fill, Fill::Noise).then(|| background_pools(vol, region));
    let nt = vol.dims()[3];
    let mut targets = Vec::with_capacity(nt);
    for t in 0..nt {
        let frame = vol.voxels.frame_f32(t).slice(sl).to_owned();
        let mut target = match tissue {
            Tissue::SmoothMean { sigma_mm } => {
                let num = gaussian_blur_mm(&(&frame * &head), vox, sigma_mm);
                let den = gaussian_blur_mm(&head, vox, sigma_mm);
                // Where the coil's signal fades (lower face in head coils) the local mean can
                // fall below the skin level and render as a hole; the head's median tissue
                // value is the floor.
                let floor = median_where(&frame, &head).unwrap_or(f32::NAN);
                Zip::from(&num).and(&den).map_collect(|&n, &d| {
                    if d > 1e-3 {
                        (n / d).max(floor)
                    } else {
                        f32::NAN
                    }
                })
            }
            Tissue::Texture => {
                let pool: Vec<f32> = Zip::from(&frame).and(&head).and(&change).fold(
                    Vec::new(),
                    |mut acc, &v, &h, &c| {
                        if h > 0.0 && c {
                            acc.push(v);
                        }
                        acc
                    },
                );
                Array3::from_shape_fn(frame.raw_dim(), |(i, j, k)| {
                    let ijk = [i + off[0], j + off[1], k + off[2]];
                    if pool.is_empty() {
                        f32::NAN
                    } else {
                        pool[(hash(t, ijk) % pool.len() as u64) as usize]
                    }
                })
            }
        };
        // Outside the new shape: air or background.
        Zip::indexed(&mut target)
            .and(&shape)
            .for_each(|(i, j, k), v, &in_shape| {
                if !in_shape || v.is_nan() {
                    let ijk = [i + off[0], j + off[1], k + off[2]];
                    *v = match fill {
                        Fill::Air => air as f32,
                        Fill::Noise => background
                            .as_ref()
                            .and_then(|b| b.draw(t, ijk))
                            .unwrap_or(air) as f32,
                    };
                }
            });
        if matches!(tissue, Tissue::Texture) {
            target = gaussian_blur_mm(&target, vox, TEXTURE_SIGMA_MM);
        }
        targets.push(target);
    }
    vol.voxels
        .replace_where(&region.change, |t, [i, j, k], old| {
            let l = [i - off[0], j - off[1], k - off[2]];
            let w = weight[l] as f64;
            w * targets[t][l] as f64 + (1.0 - w) * old
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    /// The plain per-voxel convolution with clamped taps.
    fn reference(a: &Array3<f32>, axis: Axis, k: &[f32]) -> Array3<f32> {
        let r = (k.len() / 2) as isize;
        let n = a.len_of(axis) as isize;
        let mut out = Array3::<f32>::zeros(a.raw_dim());
        Zip::from(out.lanes_mut(axis))
            .and(a.lanes(axis))
            .for_each(|mut o, src| {
                for i in 0..n {
                    let mut acc = 0.0f32;
                    for (kk, w) in k.iter().enumerate() {
                        let j = (i + kk as isize - r).clamp(0, n - 1);
                        acc += w * src[j as usize];
                    }
                    o[i as usize] = acc;
                }
            });
        out
    }

    #[test]
    fn blur_axis_equals_the_plain_convolution_bit_for_bit() {
        for (dims, fortran) in [((7, 5, 9), false), ((13, 1, 4), true), ((3, 11, 2), true)] {
            let f = |(i, j, k): (usize, usize, usize)| {
                ((i * 7919 + j * 104729 + k * 1299709) % 1000) as f32 / 7.0 - 50.0
            };
            let a = if fortran {
                Array3::from_shape_fn(dims.f(), f)
            } else {
                Array3::from_shape_fn(dims, f)
            };
            // kernels wider than some axes: the replicated ends are taken many times
            for sigma in [0.7, 2.5] {
                let k = kernel(sigma);
                for axis in 0..3 {
                    let fast = blur_axis(&a, Axis(axis), &k);
                    let slow = reference(&a, Axis(axis), &k);
                    assert_eq!(fast, slow, "dims {dims:?} axis {axis} sigma {sigma}");
                }
            }
        }
    }
}
