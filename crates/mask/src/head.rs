//! The subject's head: tissue versus air on the working grid, with whatever else is in the field
//! of view (CT table and head holder, frames, markers, noise) cut away.

use crate::distance::{close, dilate, fill_holes, largest_component, open};
use crate::filter::local_mean;
use crate::grid::{Corners, Field, WorkingImage};
use crate::order::Ranks;
use defacer_volume::Modality;
use rayon::prelude::*;
use std::borrow::Cow;

/// Tissue inside the skin (holes such as sinuses, ventricles and a dark skull filled).
#[derive(Debug, Clone)]
pub struct HeadMask {
    pub mask: Field<bool>,
    /// The intensity threshold used (physical units).
    pub threshold: f64,
}

/// Skin and fat are above this in CT (air −1000, fat ≈ −100, foam head rests ≈ −900…−600).
const CT_SKIN_HU: f64 = -300.0;
/// Opening radius that cuts thin attachments (head holder, table, tubes, coil padding).
const OPENING_MM: f64 = 4.0;
/// Closing radius that bridges the thin dark rims (skin of the nose, ear cartilage) MRI misses.
const CLOSING_MM: f64 = 4.0;

impl HeadMask {
    pub fn find(img: &WorkingImage, modality: Modality) -> Option<HeadMask> {
        let seen = &img.in_fov.data;
        if seen.par_iter().filter(|&&ok| ok).count() < 1000 {
            return None;
        }
        // (the threshold, and the noise floor where that did not set it)
        let (values, threshold, floor) = match modality {
            Modality::Ct => (Cow::Borrowed(&img.values), CT_SKIN_HU, None),
            _ => {
                let t = mri_threshold(&img.values.data, seen)?;
                let (values, t) = if t.set_by_noise {
                    // Air noise reaches the level of dim skin cell by cell (Rician noise of 8 %
                    // of white matter, an offset background): taken as it is, the threshold
                    // cut into the scalp and the fit then placed the brain too deep. Averaged
                    // over 3×3×3 cells (within the field of view) the noise is five times
                    // smaller, and air and skin part again. Where the noise still sets the
                    // threshold there (Rician noise of 22 %: it rose to 40 % of white matter,
                    // the head kept only its bright tissue, the fit slid up the forehead and
                    // the removal came within 0.5–0.8 mm of the frontal pole), over 5×5×5 cells,
                    // eleven times smaller.
                    let mut smoothed = local_mean(&img.values, &img.in_fov, 1);
                    let mut t = mri_threshold(&smoothed.data, seen)?;
                    if t.set_by_noise {
                        smoothed = local_mean(&img.values, &img.in_fov, 2);
                        t = mri_threshold(&smoothed.data, seen)?;
                    }
                    (Cow::Owned(smoothed), t)
                } else {
                    (Cow::Borrowed(&img.values), t)
                };
                let floor = (!t.set_by_noise).then_some(t.noise_floor);
                (values, t.value, floor)
            }
        };
        let sp = img.grid.spacing;
        let mut raw = values.zip(&img.in_fov, |v, ok| ok && v as f64 > threshold);
        if let Some(floor) = floor {
            raw = with_dimmed_tissue(&values, raw, &img.in_fov, threshold, floor);
        }
        let opened = open(&raw, OPENING_MM.max(sp), sp);
        let main = largest_component(&opened);
        if main.count() == 0 {
            return None;
        }
        // Restore the detail the opening rounded off (nose tip, ears), but only next to the
        // main component so detached objects stay away.
        let near = dilate(&main, OPENING_MM.max(sp) + sp, sp);
        let restored = raw.zip(&near, |r, n| r && n);
        let restored = largest_component(&restored.zip(&main, |a, b| a || b));
        let closed = close(&restored, CLOSING_MM.max(sp), sp);
        // closing may reach outside the field of view; there nothing is known
        let closed = closed.zip(&img.in_fov, |c, ok| c && ok);
        let mask = fill_holes(&closed);
        Some(HeadMask { mask, threshold })
    }
}

/// A threshold between air and tissue for MRI: Otsu's split of intensities clipped at the
/// 99.5th percentile, lowered towards the background (to 35 %): Otsu on a head separates dark from bright
/// tissue as readily as air from tissue (T2: CSF and eyes against the rest), and skin is dim. The
/// threshold is never below the noise floor (3× the background median absolute level). Over
/// the cells `seen` (the field of view) with finite values.
fn mri_threshold(values: &[f32], seen: &[bool]) -> Option<Threshold> {
    let finite = |c: usize, x: f32| seen[c] && x.is_finite();
    let v = Ranks::new(values, finite);
    let lo = v.nth(0)? as f64;
    let at = ((v.len() - 1) as f64 * 0.995) as usize;
    let hi = v.nth(at)? as f64;
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    const BINS: usize = 256;
    // whole counts, the same added in any order; a part of the cells per task
    const PART: usize = 1 << 16;
    let counts = values
        .par_chunks(PART)
        .enumerate()
        .map(|(p, part)| {
            let mut n = [0u64; BINS];
            for (c, &x) in (p * PART..).zip(part) {
                if finite(c, x) {
                    let b = (((x as f64 - lo) / (hi - lo)) * (BINS - 1) as f64)
                        .clamp(0.0, (BINS - 1) as f64);
                    n[b as usize] += 1;
                }
            }
            n
        })
        .reduce(
            || [0u64; BINS],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    let hist = counts.map(|n| n as f64);
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0usize);
    for (t, &h) in hist.iter().enumerate() {
        w0 += h;
        sum0 += t as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    let otsu = lo + (best_t as f64 + 0.5) / (BINS - 1) as f64 * (hi - lo);
    // background level: median of the values below the Otsu split
    let below = Ranks::new(values, |c, x| finite(c, x) && (x as f64) < otsu);
    let bg = below.nth(below.len() / 2).map_or(lo, |x| x as f64);
    let noise = (bg - lo).abs() * 3.0 + lo;
    let tissue = lo + (otsu - lo) * 0.35;
    Some(Threshold {
        value: tissue.max(noise),
        set_by_noise: noise > tissue,
        noise_floor: noise,
    })
}

/// The MRI air/tissue threshold and whether the background's noise floor set it.
struct Threshold {
    value: f64,
    set_by_noise: bool,
    noise_floor: f64,
}

/// Cells per side of a block of the tissue-level map (8 mm on the 2 mm working grid).
const LEVEL_BLOCK: usize = 4;
/// A block's level is the brightest tissue within this many blocks of it (Chebyshev distance):
/// 16–20 mm, within which every point of a head has fat, white matter or CSF.
const LEVEL_REACH_BLOCKS: usize = 2;
/// Tissue whose level is below this share of the head's median level is taken for dimmed by
/// the coil.
const DIMMED_LEVEL: f64 = 0.7;
/// The threshold is lowered to this share of the head's at most.
const MIN_THRESHOLD_SHARE: f64 = 0.2;

/// `tissue` (the cells above the MRI `threshold`) with the tissue a receive coil sees dimly.
/// A coil's sensitivity falls off away from its elements (a chin far from the coil, the centre
/// brightening of 7 T), and one threshold for the whole head lost a dim face: ch2 darkened
/// threefold at 90 mm from the centre kept only part of its face in the head, the template
/// fitted to the rest lay 17 mm off at the eyes, and the removal took 979 voxels of the ch2bet
/// brain.
///
/// The threshold is lowered where the head's bright tissue nearby is dim. Each block of
/// [`LEVEL_BLOCK`]³ cells holds the brightest `tissue` within [`LEVEL_REACH_BLOCKS`] of it,
/// interpolated between block centres; where that level is below [`DIMMED_LEVEL`] of its
/// median over the head, the threshold falls in proportion (to [`MIN_THRESHOLD_SHARE`] of it
/// at most, and never below `floor`, the background's noise). Elsewhere nothing changes: in an
/// evenly lit head some bright tissue lies within reach of every point, so its level stays
/// near the median. Nor where no tissue is within reach: the air around the head, and a ghost
/// beside a well-lit head, whose level is the head's. Only added cells differ, and the head
/// mask's opening and largest component follow, as for the rest. On the test heads the chin
/// and jaw at the bottom of the Philips field of view (coil falloff) joined the head.
fn with_dimmed_tissue(
    values: &Field<f32>,
    tissue: Field<bool>,
    in_fov: &Field<bool>,
    threshold: f64,
    floor: f64,
) -> Field<bool> {
    let [nx, ny, nz] = values.dims;
    let b = LEVEL_BLOCK;
    let blocks = [nx, ny, nz].map(|n| n.div_ceil(b));
    let block_of = |[i, j, k]: [usize; 3]| i + blocks[0] * (j + blocks[1] * k);
    // the brightest tissue of each block, a layer of blocks (b slices) per task
    let layer = blocks[0] * blocks[1];
    let mut brightest = vec![0f32; layer * blocks[2]];
    brightest
        .par_chunks_mut(layer)
        .enumerate()
        .for_each(|(kb, out)| {
            for k in kb * b..((kb + 1) * b).min(nz) {
                for j in 0..ny {
                    let row = nx * (j + ny * k);
                    for i in 0..nx {
                        if tissue.data[row + i] {
                            let o = &mut out[i / b + blocks[0] * (j / b)];
                            *o = o.max(values.data[row + i]);
                        }
                    }
                }
            }
        });
    let r = LEVEL_REACH_BLOCKS;
    let level: Vec<f32> = (0..brightest.len())
        .into_par_iter()
        .map(|c| {
            let at = [c % blocks[0], (c / blocks[0]) % blocks[1], c / layer];
            let span = |a: usize| at[a].saturating_sub(r)..(at[a] + r + 1).min(blocks[a]);
            let mut m = 0f32;
            for k in span(2) {
                for j in span(1) {
                    for i in span(0) {
                        m = m.max(brightest[block_of([i, j, k])]);
                    }
                }
            }
            m
        })
        .collect();
    let mut held: Vec<f32> = brightest
        .iter()
        .zip(&level)
        .filter(|(&b, _)| b > 0.0)
        .map(|(_, &l)| l)
        .collect();
    if held.is_empty() {
        return tissue;
    }
    let mid = held.len() / 2;
    let median = *held.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1 as f64;
    let dim = |l: f32| l > 0.0 && (l as f64) < DIMMED_LEVEL * median;
    // Blocks none of whose neighbours is dimmed: their cells interpolate between levels that
    // are not, and keep the threshold (most of the grid; checked first, it saves most of the
    // interpolations).
    let calm: Vec<bool> = (0..level.len())
        .into_par_iter()
        .map(|c| {
            let at = [c % blocks[0], (c / blocks[0]) % blocks[1], c / layer];
            let span = |a: usize| at[a].saturating_sub(1)..(at[a] + 2).min(blocks[a]);
            span(2).all(|k| span(1).all(|j| span(0).all(|i| !dim(level[block_of([i, j, k])]))))
        })
        .collect();
    // block centres lie at (b − 1) / 2 cells into their blocks
    let centre = (b as f64 - 1.0) / 2.0;
    Field::from_cells(values.dims, |c| {
        if tissue.data[c] || !in_fov.data[c] {
            return tissue.data[c];
        }
        // the lowered threshold is never below the floor: air is out at once (most of the
        // cells outside the head)
        if values.data[c] as f64 <= floor {
            return false;
        }
        let at = tissue.coords(c);
        if calm[block_of(at.map(|x| x / b))] {
            return false;
        }
        let g = [0, 1, 2]
            .map(|a| ((at[a] as f64 - centre) / b as f64).clamp(0.0, (blocks[a] - 1) as f64));
        let Some(corners) = Corners::around(blocks, g) else {
            return false;
        };
        // a corner with no tissue within reach: not near the head
        if corners.interpolate(|q| if level[q] > 0.0 { 0.0 } else { 1.0 }) > 0.0 {
            return false;
        }
        let share = corners.interpolate(|q| level[q] as f64) / median;
        if share >= DIMMED_LEVEL {
            return false;
        }
        let t = (threshold * share.max(MIN_THRESHOLD_SHARE)).max(floor);
        values.data[c] as f64 > t
    })
}
