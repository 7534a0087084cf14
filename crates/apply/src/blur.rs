//! Gaussian smoothing in millimetres, and the blur method.

use defacer_volume::Volume;
use ndarray::{s, Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

/// Width of the ramp (in mm, as a Gaussian sigma) over which the blurred face fades into the
/// kept tissue, so no hard edge marks where the face was.
const BLEND_SIGMA_MM: f64 = 3.0;

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

/// Blurs each frame inside `region`, fading from the untouched border of the region to fully
/// blurred in its interior.
pub(crate) fn blur_region(vol: &mut Volume, region: ArrayView3<bool>, sigma_mm: f64) {
    let vox = vol.affine.voxel_size();
    let pad = vox.map(|v| ((3.0 * sigma_mm.max(BLEND_SIGMA_MM)) / v).ceil() as usize + 1);
    let Some(bb) = bounding_box(&region, pad) else {
        return;
    };
    let sl = s![bb[0].0..bb[0].1, bb[1].0..bb[1].1, bb[2].0..bb[2].1];
    let inside = region.slice(sl).mapv(|m| m as u8 as f32);
    // Weight 0 on the region's edge, 1 a few mm inside: 2·(smoothed indicator − ½), clipped.
    let weight = gaussian_blur_mm(&inside, vox, BLEND_SIGMA_MM)
        .mapv(|g| (2.0 * (g - 0.5)).clamp(0.0, 1.0))
        * &inside;
    let nt = vol.dims()[3];
    let blurred: Vec<Array3<f32>> = (0..nt)
        .into_par_iter()
        .map(|t| {
            let frame = vol.voxels.frame_f32(t).slice(sl).to_owned();
            gaussian_blur_mm(&frame, vox, sigma_mm)
        })
        .collect();
    let off = [bb[0].0, bb[1].0, bb[2].0];
    vol.voxels.replace_where(&region, |t, [i, j, k], old| {
        let l = [i - off[0], j - off[1], k - off[2]];
        let w = weight[l] as f64;
        w * blurred[t][l] as f64 + (1.0 - w) * old
    });
}
