//! dlib's MMOD CNN face detector (`mmod_human_face_detector`), re-implemented for inference.
//!
//! Network (dlib `dnn_mmod_face_detection_ex`): three 5×5 stride-2 convolutions (16, 32, 32
//! filters, no padding) each followed by a per-channel affine (folded batch norm) and ReLU, three
//! 5×5 stride-1 convolutions with 45 filters (same padding) + affine + ReLU, and one 9×9
//! convolution to a single score map. It scans a 5/6-rate image pyramid; every positive score
//! is an 80×80 window (at that pyramid level) centred on the score's receptive field, and
//! overlapping windows are suppressed greedily by score.
//!
//! Like dlib, all pyramid levels run as one tiled image: the network's receptive field (about
//! 190 pixels) reaches neighbouring tiles, so running levels separately would change scores.

use crate::error::{Error, Result};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Mean colour subtracted before the network (dlib `input_rgb_image`), then divided by 256.
const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];
/// Border around the tiled pyramid (dlib's outer padding).
const PAD: usize = 11;
/// dlib's `pyramid_down<6>`: each level is 5/6 the size of the previous one.
const RATE: f64 = 5.0 / 6.0;

/// The face detector's weights.
#[derive(Debug, Clone)]
pub struct MmodNet {
    layers: Vec<Layer>,
    window: (f64, f64),
    nms_iou: f64,
    nms_covered: f64,
}

#[derive(Debug, Clone)]
struct Conv {
    out_ch: usize,
    in_ch: usize,
    k: usize,
    stride: usize,
    pad: usize,
    /// `[out][in][ky][kx]`
    weights: Vec<f32>,
    bias: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Layer {
    conv: Conv,
    /// Per-channel `gamma·x + beta` then ReLU; absent on the final score layer.
    affine_relu: Option<(Vec<f32>, Vec<f32>)>,
}

/// A detection in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Detection {
    /// Network score; dlib reports a face above 0.
    pub confidence: f32,
    /// `[left, top, right, bottom]` in pixels.
    pub bbox: [f32; 4],
}

/// Channels × rows × cols, row-major.
struct Tensor {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl MmodNet {
    /// Reads the weight file: a sequence of `(u32 index, u32 count, count × f32)` records, all
    /// little-endian, in dlib's `visit_layer_parameters` order (score layer first).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let bad = |p: &str| Error::Model {
            name: name.to_string(),
            problem: p.to_string(),
        };
        let mut tensors: Vec<Vec<f32>> = Vec::new();
        let mut pos = 0usize;
        let u32_at = |p: usize| -> Option<u32> {
            bytes
                .get(p..p + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        while pos < bytes.len() {
            let _index = u32_at(pos).ok_or_else(|| bad("truncated record header"))?;
            let n = u32_at(pos + 4).ok_or_else(|| bad("truncated record header"))? as usize;
            pos += 8;
            let body = bytes
                .get(pos..pos + 4 * n)
                .ok_or_else(|| bad("truncated weights"))?;
            tensors.push(
                body.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            );
            pos += 4 * n;
        }
        // Only layers with parameters are recorded: 7 convolutions and 6 affines, top first.
        let non_empty: Vec<Vec<f32>> = tensors.into_iter().filter(|t| !t.is_empty()).collect();
        if non_empty.len() != 13 {
            return Err(bad(&format!(
                "expected 13 parameter tensors, found {}",
                non_empty.len()
            )));
        }
        // (out, in, k, stride, pad) from the input upwards.
        let shapes = [
            (16, 3, 5, 2, 0),
            (32, 16, 5, 2, 0),
            (32, 32, 5, 2, 0),
            (45, 32, 5, 1, 2),
            (45, 45, 5, 1, 2),
            (45, 45, 5, 1, 2),
            (1, 45, 9, 1, 4),
        ];
        let mut rev: Vec<Vec<f32>> = non_empty.into_iter().rev().collect::<Vec<_>>();
        // Now input-first: conv, affine, conv, affine, ..., conv(score).
        let mut layers = Vec::new();
        let mut it = rev.drain(..);
        for (li, &(out_ch, in_ch, k, stride, pad)) in shapes.iter().enumerate() {
            let p = it.next().ok_or_else(|| bad("missing convolution"))?;
            let nw = out_ch * in_ch * k * k;
            if p.len() != nw + out_ch {
                return Err(bad(&format!(
                    "convolution {li} has {} values, expected {}",
                    p.len(),
                    nw + out_ch
                )));
            }
            let conv = Conv {
                out_ch,
                in_ch,
                k,
                stride,
                pad,
                weights: p[..nw].to_vec(),
                bias: p[nw..].to_vec(),
            };
            let affine_relu = if li + 1 < shapes.len() {
                let a = it.next().ok_or_else(|| bad("missing affine"))?;
                if a.len() != 2 * out_ch {
                    return Err(bad(&format!(
                        "affine {li} has {} values, expected {}",
                        a.len(),
                        2 * out_ch
                    )));
                }
                Some((a[..out_ch].to_vec(), a[out_ch..].to_vec()))
            } else {
                None
            };
            layers.push(Layer { conv, affine_relu });
        }
        Ok(MmodNet {
            layers,
            window: (80.0, 80.0),
            nms_iou: 0.338276,
            nms_covered: 1.0,
        })
    }

    /// Faces in a grey picture, best first, with scores above `threshold` (dlib's default is 0).
    pub fn detect(&self, img: &image::GrayImage, threshold: f32) -> Vec<Detection> {
        let (input, tiles) = tiled_pyramid(img);
        if tiles.is_empty() {
            // An empty picture has no pyramid and no faces.
            return Vec::new();
        }
        let scores = self.forward(&input);
        let mut dets: Vec<Detection> = Vec::new();
        for r in 0..scores.h {
            for c in 0..scores.w {
                let s = scores.data[r * scores.w + c];
                if s > threshold {
                    dets.push(window_at(&tiles, self.window, c, r, s));
                }
            }
        }
        // Stable sort: equal scores keep raster order, so the result never depends on threads.
        dets.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut kept: Vec<Detection> = Vec::new();
        for d in dets {
            if !kept.iter().any(|k| self.overlaps(&k.bbox, &d.bbox)) {
                kept.push(d);
            }
        }
        kept
    }

    fn overlaps(&self, a: &[f32; 4], b: &[f32; 4]) -> bool {
        let area = |r: &[f32; 4]| ((r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0)) as f64;
        let inter = [
            a[0].max(b[0]),
            a[1].max(b[1]),
            a[2].min(b[2]),
            a[3].min(b[3]),
        ];
        let i = area(&inter);
        let u = area(a) + area(b) - i;
        (u > 0.0 && i / u > self.nms_iou)
            || i / area(a).max(1e-9) > self.nms_covered
            || i / area(b).max(1e-9) > self.nms_covered
    }

    fn forward(&self, input: &Tensor) -> Tensor {
        let mut x = conv(&self.layers[0].conv, input);
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 {
                x = conv(&layer.conv, &x);
            }
            if let Some((g, b)) = &layer.affine_relu {
                let plane = x.h * x.w;
                for (ch, chunk) in x.data.chunks_mut(plane).enumerate() {
                    for v in chunk {
                        *v = (g[ch] * *v + b[ch]).max(0.0);
                    }
                }
            }
        }
        x
    }
}

/// Zero-padded cross-correlation (dlib/cuDNN convention) as a matrix product: for a band of
/// output rows the input patches under the kernel are laid out as columns (`in × k × k` rows,
/// one column per output pixel), and the weights (`out × in·k·k`) multiply them. The product is
/// `matrixmultiply`'s (through ndarray), which packs and blocks for the caches and picks the
/// widest vector instructions the CPU has at run time; a direct loop built for the baseline
/// target ran the whole check about twice as long. Bands run in parallel, each into its own
/// buffer, so the result does not depend on the thread count.
fn conv(cv: &Conv, x: &Tensor) -> Tensor {
    let (k, s, p) = (cv.k, cv.stride, cv.pad);
    let hp = x.h + 2 * p;
    let wp = x.w + 2 * p;
    if hp < k || wp < k {
        return Tensor {
            c: cv.out_ch,
            h: 0,
            w: 0,
            data: Vec::new(),
        };
    }
    let oh = (hp - k) / s + 1;
    let ow = (wp - k) / s + 1;
    let padded = pad_tensor(x, p);
    let depth = cv.in_ch * k * k;
    let weights = ArrayView2::from_shape((cv.out_ch, depth), &cv.weights)
        .expect("weights hold out × in × k × k values");
    // a band's patch matrix stays within about a megabyte
    let band = (BAND_VALUES / (depth * ow)).clamp(1, oh);
    let bands: Vec<(usize, Vec<f32>)> = (0..oh)
        .step_by(band)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|oy0| {
            let rows = band.min(oh - oy0);
            let n = rows * ow;
            let mut cols = vec![0f32; depth * n];
            for ic in 0..cv.in_ch {
                let src = &padded[ic * hp * wp..(ic + 1) * hp * wp];
                for ky in 0..k {
                    for kx in 0..k {
                        let row = &mut cols[((ic * k + ky) * k + kx) * n..][..n];
                        for (r, dst) in row.chunks_exact_mut(ow).enumerate() {
                            let line = &src[((oy0 + r) * s + ky) * wp..][..wp];
                            if s == 1 {
                                dst.copy_from_slice(&line[kx..kx + ow]);
                            } else {
                                for (d, &v) in dst.iter_mut().zip(line[kx..].iter().step_by(s)) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
            let cols = ArrayView2::from_shape((depth, n), &cols).expect("patches are depth × n");
            let mut out = Array2::from_shape_fn((cv.out_ch, n), |(o, _)| cv.bias[o]);
            general_mat_mul(1.0, &weights, &cols, 1.0, &mut out);
            (oy0, out.into_raw_vec_and_offset().0)
        })
        .collect();
    let mut out = vec![0f32; cv.out_ch * oh * ow];
    for (oy0, values) in bands {
        let n = values.len() / cv.out_ch;
        for (o, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
            plane[oy0 * ow..oy0 * ow + n].copy_from_slice(&values[o * n..(o + 1) * n]);
        }
    }
    Tensor {
        c: cv.out_ch,
        h: oh,
        w: ow,
        data: out,
    }
}

/// How many values a band's patch matrix holds at most (a megabyte of floats).
const BAND_VALUES: usize = 1 << 18;

fn pad_tensor(x: &Tensor, p: usize) -> Vec<f32> {
    if p == 0 {
        return x.data.clone();
    }
    let (hp, wp) = (x.h + 2 * p, x.w + 2 * p);
    let mut out = vec![0f32; x.c * hp * wp];
    for c in 0..x.c {
        for y in 0..x.h {
            let src = &x.data[(c * x.h + y) * x.w..(c * x.h + y + 1) * x.w];
            let d0 = (c * hp + y + p) * wp + p;
            out[d0..d0 + x.w].copy_from_slice(src);
        }
    }
    out
}

/// A pyramid level's place in the tiled input: `(left, top, width, height)`.
type Tile = (usize, usize, usize, usize);

/// dlib's `compute_tiled_image_pyramid_details`: level 0 at the top left, smaller levels below
/// it, then back up a second column on the right; `PADDING` between tiles, `PAD` around all.
fn tile_layout(h: usize, w: usize) -> (Vec<Tile>, usize, usize) {
    const PADDING: i64 = 10;
    let outer = PAD as i64;
    if h == 0 || w == 0 {
        return (Vec::new(), 0, 0);
    }
    let mut sizes = vec![(w as i64, h as i64)];
    let (mut nr, mut nc) = (h as i64, w as i64);
    loop {
        nr = (RATE * nr as f64).floor() as i64;
        nc = (RATE * nc as f64).floor() as i64;
        if nr * nc == 0 || nr < 5 {
            break;
        }
        sizes.push((nc, nr));
    }
    let (w0, h0) = sizes[0];
    let total_height: i64 = sizes.iter().map(|s| s.1 + PADDING).sum::<i64>() - 2 * PADDING;
    let (mut height, mut prev_width) = (0i64, 0i64);
    for &(sw, sh) in &sizes {
        if sw <= w0 - prev_width - PADDING && (height - h0) * 2 >= total_height - h0 {
            break;
        }
        height += sh + PADDING;
        prev_width = sw;
    }
    height -= PADDING;
    let (out_h, out_w) = (height + 2 * outer, w0 + 2 * outer);
    // Tiles as (left, top, right, bottom), inclusive like dlib's rectangles.
    let mut tiles: Vec<(i64, i64, i64, i64)> = Vec::new();
    let mut y = outer;
    let mut i = 0;
    while y < height + outer && i < sizes.len() {
        let (sw, sh) = sizes[i];
        tiles.push((outer, y, outer + sw - 1, y + sh - 1));
        y += sh + PADDING;
        i += 1;
    }
    y -= PADDING;
    while i < sizes.len() {
        let (sw, sh) = sizes[i];
        let (right, bottom) = (outer + w0 - 1, y - 1);
        let t = (right - (sw - 1), bottom - (sh - 1), right, bottom);
        let first = tiles[0];
        let disjoint = t.2 < first.0 || t.0 > first.2 || t.3 < first.1 || t.1 > first.3;
        if !disjoint {
            break;
        }
        tiles.push(t);
        y -= sh + PADDING;
        i += 1;
    }
    let tiles = tiles
        .into_iter()
        .map(|(l, t, r, b)| {
            (
                l as usize,
                t as usize,
                (r - l + 1) as usize,
                (b - t + 1) as usize,
            )
        })
        .collect();
    (tiles, out_h as usize, out_w as usize)
}

/// The normalised picture and its 5/6-rate pyramid tiled into one input, exactly as dlib's
/// `input_rgb_image_pyramid` builds it: the network sees the same neighbourhood around every
/// level (other levels 10 pixels away, zero = mean colour between them), so it gives the same
/// scores as dlib.
fn tiled_pyramid(img: &image::GrayImage) -> (Tensor, Vec<Tile>) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (tiles, th, tw) = tile_layout(h, w);
    let mut t = Tensor {
        c: 3,
        h: th,
        w: tw,
        data: vec![0f32; 3 * th * tw],
    };
    if tiles.is_empty() {
        return (t, tiles);
    }
    let (l0, t0, _, _) = tiles[0];
    for (ch, mean) in MEAN_RGB.iter().enumerate() {
        for (y, row) in img.as_raw().chunks_exact(w.max(1)).enumerate() {
            let d0 = (ch * th + t0 + y) * tw + l0;
            for (x, &g) in row.iter().enumerate() {
                t.data[d0 + x] = (g as f32 - mean) / 256.0;
            }
        }
    }
    for i in 1..tiles.len() {
        let (sl, st, sw, sh) = tiles[i - 1];
        let (dl, dt, dw, dh) = tiles[i];
        let ys = (sh as f32 - 1.0) / (dh.max(2) - 1) as f32;
        let xs = (sw as f32 - 1.0) / (dw.max(2) - 1) as f32;
        for ch in 0..3 {
            for r in 0..dh {
                let (y0, y1, ty) = bilinear_taps(r as f32 * ys, sh);
                for c in 0..dw {
                    let (x0, x1, tx) = bilinear_taps(c as f32 * xs, sw);
                    let at = |y: usize, x: usize| t.data[(ch * th + st + y) * tw + sl + x];
                    let top = at(y0, x0) * (1.0 - tx) + at(y0, x1) * tx;
                    let bot = at(y1, x0) * (1.0 - tx) + at(y1, x1) * tx;
                    t.data[(ch * th + dt + r) * tw + dl + c] = top * (1.0 - ty) + bot * ty;
                }
            }
        }
    }
    (t, tiles)
}

fn bilinear_taps(v: f32, n: usize) -> (usize, usize, f32) {
    let v0 = (v.floor().max(0.0) as usize).min(n - 1);
    let v1 = (v0 + 1).min(n - 1);
    (v0, v1, v - v0 as f32)
}

/// The 80×80 window of score (`c`, `r`) mapped back to image pixels through the tile it falls
/// in (dlib `tiled_pyramid_to_image`).
fn window_at(tiles: &[Tile], window: (f64, f64), c: usize, r: usize, score: f32) -> Detection {
    // Three stride-2 5×5 convolutions without padding: input = 2·output + 2, thrice.
    let centre = |o: usize| (((o * 2 + 2) * 2 + 2) * 2 + 2) as f64;
    let (cx, cy) = (centre(c), centre(r));
    let (w, h) = (window.0 - 1.0, window.1 - 1.0);
    let level = nearest_tile(tiles, cx, cy);
    let (l, t, _, _) = tiles[level];
    let up = |x: f64| (0..level).fold(x, |v, _| v / RATE + 0.3);
    let bbox = [
        up(cx - w / 2.0 - l as f64) as f32,
        up(cy - h / 2.0 - t as f64) as f32,
        up(cx + w / 2.0 - l as f64) as f32,
        up(cy + h / 2.0 - t as f64) as f32,
    ];
    Detection {
        confidence: score,
        bbox,
    }
}

fn nearest_tile(tiles: &[Tile], x: f64, y: f64) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (i, &(l, t, w, h)) in tiles.iter().enumerate() {
        let nx = x.clamp(l as f64, (l + w - 1) as f64);
        let ny = y.clamp(t as f64, (t + h - 1) as f64);
        let d = (nx - x).powi(2) + (ny - y).powi(2);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> MmodNet {
        MmodNet::from_bytes(crate::MMOD_WEIGHTS, "embedded").unwrap()
    }

    #[test]
    fn truncated_weights_are_refused() {
        let w = crate::MMOD_WEIGHTS;
        assert!(MmodNet::from_bytes(&w[..w.len() - 3], "cut").is_err());
        assert!(MmodNet::from_bytes(&w[..w.len() / 2], "half").is_err());
    }

    #[test]
    fn blank_pictures_hold_no_face() {
        let n = net();
        assert!(n.detect(&image::GrayImage::new(0, 0), -10.0).is_empty());
        assert!(n
            .detect(
                &image::GrayImage::from_pixel(200, 200, image::Luma([0])),
                0.0
            )
            .is_empty());
        assert!(n
            .detect(
                &image::GrayImage::from_pixel(200, 200, image::Luma([128])),
                0.0
            )
            .is_empty());
    }

    /// The direct definition: out[o][y][x] = bias[o] + Σ w[o][i][ky][kx] · in[i][y·s+ky−p][x·s+kx−p].
    fn direct(cv: &Conv, x: &Tensor) -> Vec<f32> {
        let (k, s, p) = (cv.k, cv.stride, cv.pad);
        let oh = (x.h + 2 * p - k) / s + 1;
        let ow = (x.w + 2 * p - k) / s + 1;
        let mut out = vec![0f32; cv.out_ch * oh * ow];
        for o in 0..cv.out_ch {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut sum = cv.bias[o] as f64;
                    for i in 0..cv.in_ch {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (r, c) = (y * s + ky, xo * s + kx);
                                if r < p || c < p || r - p >= x.h || c - p >= x.w {
                                    continue;
                                }
                                let v = x.data[(i * x.h + r - p) * x.w + c - p];
                                sum += cv.weights[((o * cv.in_ch + i) * k + ky) * k + kx] as f64
                                    * v as f64;
                            }
                        }
                    }
                    out[(o * oh + y) * ow + xo] = sum as f32;
                }
            }
        }
        out
    }

    #[test]
    fn convolution_is_the_direct_cross_correlation() {
        // a small deterministic generator: values in [-1, 1)
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        // (out, in, k, stride, pad, h, w): the network's two kinds of layer, and one whose
        // rows are too long for a band of more than one row
        for &(out_ch, in_ch, k, stride, pad, h, w) in &[
            (4, 3, 5, 2, 0, 17, 23),
            (5, 6, 5, 1, 2, 9, 12),
            (3, 45, 5, 1, 2, 6, 300),
        ] {
            let cv = Conv {
                out_ch,
                in_ch,
                k,
                stride,
                pad,
                weights: (0..out_ch * in_ch * k * k).map(|_| next()).collect(),
                bias: (0..out_ch).map(|_| next()).collect(),
            };
            let x = Tensor {
                c: in_ch,
                h,
                w,
                data: (0..in_ch * h * w).map(|_| next()).collect(),
            };
            let got = conv(&cv, &x);
            let want = direct(&cv, &x);
            assert_eq!(got.data.len(), want.len());
            for (g, w) in got.data.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} against {w}");
            }
        }
    }

    #[test]
    fn tile_layout_matches_dlib() {
        // dlib 19/20 places a 320×320 picture's levels at these rectangles (left, top, w, h).
        let (tiles, h, w) = tile_layout(320, 320);
        assert_eq!((h, w), (1206, 342));
        assert_eq!(tiles.len(), 22);
        assert_eq!(tiles[0], (11, 11, 320, 320));
        assert_eq!(tiles[4], (11, 1042, 153, 153));
        assert_eq!(tiles[5], (204, 1068, 127, 127));
        assert_eq!(tiles[21], (326, 333, 5, 5));
    }
}
