//! Replace the face by the template's average face, textured with the subject's own tissue.

use defacer_volume::Volume;
use ndarray::{s, Zip};

use crate::blur::{bounding_box, gaussian_blur_mm};
use crate::noise::{background_pools, hash};
use crate::{Fill, Region};

/// Sigma of the smoothing that turns independent tissue draws into a tissue-like texture.
const TEXTURE_SIGMA_MM: f64 = 1.5;

pub(crate) fn reface_region(vol: &mut Volume, region: &Region, fill: Fill, air: f64) {
    let Some(template) = region.template_head else {
        // Without a template face there is nothing to put back: removing is the safe choice.
        crate::fill_region(vol, region, region.change, fill, air);
        return;
    };
    let vox = vol.affine.voxel_size();
    let pad = vox.map(|v| (3.0 * TEXTURE_SIGMA_MM / v).ceil() as usize + 1);
    let Some(bb) = bounding_box(&region.change, pad) else {
        return;
    };
    let sl = s![bb[0].0..bb[0].1, bb[1].0..bb[1].1, bb[2].0..bb[2].1];
    let off = [bb[0].0, bb[1].0, bb[2].0];
    let background = background_pools(vol, region);
    // The subject's own facial tissue (head voxels of the region) gives intensity and texture.
    let tissue_at = Zip::from(&region.head)
        .and(&region.change)
        .map_collect(|&h, &c| h && c);
    let nt = vol.dims()[3];
    let mut textured = Vec::with_capacity(nt);
    for t in 0..nt {
        let frame = vol.voxels.frame_f32(t);
        let tissue: Vec<f32> =
            Zip::from(&frame)
                .and(&tissue_at)
                .fold(Vec::new(), |mut acc, &v, &m| {
                    if m {
                        acc.push(v);
                    }
                    acc
                });
        let mut field = frame.slice(sl).to_owned();
        Zip::indexed(&mut field)
            .and(region.change.slice(sl))
            .and(template.slice(sl))
            .for_each(|(i, j, k), v, &c, &tpl| {
                if !c {
                    return;
                }
                let ijk = [i + off[0], j + off[1], k + off[2]];
                *v = if tpl && !tissue.is_empty() {
                    tissue[(hash(t, ijk) % tissue.len() as u64) as usize]
                } else {
                    match fill {
                        Fill::Air => air as f32,
                        Fill::Noise => background.draw(t, ijk).unwrap_or(air) as f32,
                    }
                };
            });
        textured.push(gaussian_blur_mm(&field, vox, TEXTURE_SIGMA_MM));
    }
    vol.voxels.replace_where(&region.change, |t, [i, j, k], _| {
        textured[t][[i - off[0], j - off[1], k - off[2]]] as f64
    });
}
