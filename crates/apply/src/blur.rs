//! Gaussian smoothing in millimetres, and the two methods that rebuild the face region from a
//! smooth shape: blur (the subject's own head, smoothed) and reface (the template's head).

use defacer_volume::Volume;
use ndarray::{s, Array3, ArrayView3, Axis, Zip};

use crate::noise::{background_pools, hash};
use crate::{Fill, Region};

/// Width of the ramp (in mm, as a Gaussian sigma) over which the rebuilt face fades into the
/// kept tissue, so no hard edge marks where the face was.
const BLEND_SIGMA_MM: f64 = 3.0;

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

fn blur_axis(a: &Array3<f32>, axis: Axis, k: &[f32]) -> Array3<f32> {
    let r = (k.len() / 2) as isize;
    let mut out = Array3::<f32>::zeros(a.raw_dim());
    let n = a.len_of(axis) as isize;
    // Lanes along `axis` are independent: parallel over them, each computed the same way
    // whatever the thread count.
    Zip::from(out.lanes_mut(axis))
        .and(a.lanes(axis))
        .par_for_each(|mut o, src| {
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
    let vox = vol.affine.voxel_size();
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
    // The new surface: the 50% level of the smoothed shape. Narrow features (nose, lips, eye
    // sockets) are thinner than the kernel and vanish.
    let shape_f = head_like.slice(sl).mapv(|m| m as u8 as f32);
    let shape = gaussian_blur_mm(&shape_f, vox, shape_sigma_mm).mapv(|g| g >= 0.5);
    let head = region.head.slice(sl).mapv(|m| m as u8 as f32);
    let background = background_pools(vol, region);
    let nt = vol.dims()[3];
    let mut targets = Vec::with_capacity(nt);
    for t in 0..nt {
        let frame = vol.voxels.frame_f32(t).slice(sl).to_owned();
        let mut target = match tissue {
            Tissue::SmoothMean { sigma_mm } => {
                let num = gaussian_blur_mm(&(&frame * &head), vox, sigma_mm);
                let den = gaussian_blur_mm(&head, vox, sigma_mm);
                Zip::from(&num)
                    .and(&den)
                    .map_collect(|&n, &d| if d > 1e-3 { n / d } else { f32::NAN })
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
                        Fill::Noise => background.draw(t, ijk).unwrap_or(air) as f32,
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
