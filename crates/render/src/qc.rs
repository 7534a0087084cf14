//! Pictures for a person checking a defaced volume: the face before and after with the same
//! camera, and mid-slices with the removed region outlined.

use std::path::Path;

use defacer_volume::{Volume, VoxelMap};
use image::{GrayImage, Rgb, RgbImage};
use ndarray::ArrayView3;

use crate::error::{Error, Result};
use crate::scene::{RenderOptions, SkinScene, View};
use crate::world_grid::{world_bounds, NativeSampler};

/// Renders `before` and `after` from each view with one camera and one skin level (those of
/// `before`): a two-row sheet, before on top, one column per view.
pub fn before_after(
    before: &Volume,
    after: &Volume,
    views: &[View],
    opts: &RenderOptions,
) -> Result<RgbImage> {
    let b = SkinScene::new(before, opts)?;
    let a = SkinScene::like(after, &b)?;
    let top: Vec<GrayImage> = views.iter().map(|v| b.render(v)).collect();
    let bottom: Vec<GrayImage> = views.iter().map(|v| a.render(v)).collect();
    Ok(sheet(&[top, bottom]))
}

/// Lays out rows of equally sized grey pictures on one RGB sheet with a 2-pixel gap.
pub fn sheet(rows: &[Vec<GrayImage>]) -> RgbImage {
    const GAP: u32 = 2;
    let w = rows
        .iter()
        .flat_map(|r| r.iter().map(|i| i.width()))
        .max()
        .unwrap_or(0);
    let h = rows
        .iter()
        .flat_map(|r| r.iter().map(|i| i.height()))
        .max()
        .unwrap_or(0);
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0) as u32;
    let sw = (cols * (w + GAP)).saturating_sub(GAP).max(1);
    let sh = (rows.len() as u32 * (h + GAP)).saturating_sub(GAP).max(1);
    let mut out = RgbImage::from_pixel(sw, sh, Rgb([40, 40, 40]));
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let (x0, y0) = (c as u32 * (w + GAP), r as u32 * (h + GAP));
            for (x, y, p) in img.enumerate_pixels() {
                out.put_pixel(x0 + x, y0 + y, Rgb([p[0]; 3]));
            }
        }
    }
    out
}

/// Axial, coronal and sagittal slices of `vol` through the centroid of `mask` (the region that
/// was removed, on `vol`'s voxel grid), side by side, with the region tinted and outlined in red.
///
/// Slices are world-aligned at 1 mm (or the finest voxel size if coarser), shown as seen from
/// the front/below: the subject's right on the image's left, anterior on the left in the
/// sagittal slice.
pub fn mask_slices(vol: &Volume, mask: &ArrayView3<bool>) -> Result<RgbImage> {
    let d = vol.dims();
    if mask.shape() != [d[0], d[1], d[2]] {
        return Err(Error::mismatch(
            vol.path(),
            format!("mask is {:?} but the volume is {:?}", mask.shape(), &d[..3]),
        ));
    }
    vol.affine
        .validate()
        .map_err(|p| Error::geometry(vol.path(), p))?;
    let frame = vol.frame_physical(0);
    let frame = if frame.as_slice_memory_order().is_some() {
        frame
    } else {
        frame.as_standard_layout().into_owned()
    };
    let map = vol
        .voxel_map()
        .ok_or_else(|| Error::geometry(vol.path(), "affine is not invertible"))?;
    let sampler = NativeSampler::new(&frame, map, f32::NAN)
        .ok_or_else(|| Error::geometry(vol.path(), "voxel array is not in a contiguous layout"))?;
    let (lo, hi) = world_bounds(&map, [d[0], d[1], d[2]]);
    let centre = mask_centroid(&map, mask).unwrap_or([0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a])));
    let (black, white) = display_window(&frame);
    let step = map
        .voxel_size()
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1.0);

    // (column axis, column sign, row axis, row sign, fixed axis)
    let planes = [
        (0usize, -1.0, 1usize, -1.0, 2usize),
        (0, -1.0, 2, -1.0, 1),
        (1, -1.0, 2, -1.0, 0),
    ];
    let panels: Vec<RgbImage> = planes
        .iter()
        .map(|&(ca, cs, ra, rs, fa)| {
            let ncol = ((hi[ca] - lo[ca]) / step).floor() as u32 + 1;
            let nrow = ((hi[ra] - lo[ra]) / step).floor() as u32 + 1;
            let start = |a: usize, s: f64| if s > 0.0 { lo[a] } else { hi[a] };
            let mut img = RgbImage::new(ncol, nrow);
            let mut inside = vec![false; (ncol * nrow) as usize];
            for r in 0..nrow {
                for c in 0..ncol {
                    let mut p = [0.0; 3];
                    p[fa] = centre[fa];
                    p[ca] = start(ca, cs) + cs * c as f64 * step;
                    p[ra] = start(ra, rs) + rs * r as f64 * step;
                    let v = sampler.to_voxel(p);
                    let value = sampler.trilinear_voxel(v);
                    let g = if value.is_finite() {
                        (((value - black) / (white - black)).clamp(0.0, 1.0) * 255.0) as u8
                    } else {
                        0
                    };
                    let m = nearest(mask, v);
                    inside[(r * ncol + c) as usize] = m;
                    let px = if m {
                        [g / 2 + 100, g / 2, g / 2]
                    } else {
                        [g, g, g]
                    };
                    img.put_pixel(c, r, Rgb(px));
                }
            }
            outline(&mut img, &inside);
            img
        })
        .collect();
    Ok(side_by_side(&panels))
}

fn nearest(mask: &ArrayView3<bool>, v: [f64; 3]) -> bool {
    let s = mask.shape();
    let idx: Option<Vec<usize>> = (0..3)
        .map(|a| {
            let r = v[a].round();
            (r >= 0.0 && (r as usize) < s[a]).then_some(r as usize)
        })
        .collect();
    idx.is_some_and(|i| mask[[i[0], i[1], i[2]]])
}

fn outline(img: &mut RgbImage, inside: &[bool]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let at = |x: i64, y: i64| x >= 0 && y >= 0 && x < w && y < h && inside[(y * w + x) as usize];
    for y in 0..h {
        for x in 0..w {
            if at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1)) {
                img.put_pixel(x as u32, y as u32, Rgb([255, 40, 40]));
            }
        }
    }
}

fn side_by_side(panels: &[RgbImage]) -> RgbImage {
    const GAP: u32 = 4;
    let w: u32 = panels
        .iter()
        .map(|p| p.width() + GAP)
        .sum::<u32>()
        .saturating_sub(GAP)
        .max(1);
    let h = panels.iter().map(|p| p.height()).max().unwrap_or(1);
    let mut out = RgbImage::from_pixel(w, h, Rgb([40, 40, 40]));
    let mut x0 = 0;
    for p in panels {
        let y0 = (h - p.height()) / 2;
        for (x, y, px) in p.enumerate_pixels() {
            out.put_pixel(x0 + x, y0 + y, *px);
        }
        x0 += p.width() + GAP;
    }
    out
}

fn mask_centroid(map: &VoxelMap, mask: &ArrayView3<bool>) -> Option<[f64; 3]> {
    let mut sum = [0.0f64; 3];
    let mut n = 0u64;
    for ((i, j, k), &m) in mask.indexed_iter() {
        if m {
            sum[0] += i as f64;
            sum[1] += j as f64;
            sum[2] += k as f64;
            n += 1;
        }
    }
    (n > 0).then(|| map.to_world(sum.map(|s| s / n as f64)))
}

/// Grey window from the 1st to the 99.5th percentile of the non-background voxels.
fn display_window(frame: &ndarray::Array3<f32>) -> (f32, f32) {
    let mut v: Vec<f32> = frame.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    let n = v.len();
    let lo = *v.select_nth_unstable_by(n / 100, f32::total_cmp).1;
    let hi = *v
        .select_nth_unstable_by((n - 1) * 995 / 1000, f32::total_cmp)
        .1;
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

/// Writes a picture as PNG, naming the file on failure.
pub fn save_png<P, C>(img: &image::ImageBuffer<P, C>, path: &Path) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| Error::Png {
            path: path.to_path_buf(),
            source,
        })
}
