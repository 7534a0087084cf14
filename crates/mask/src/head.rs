//! The subject's head: tissue versus air on the working grid, with whatever else is in the field
//! of view (CT table and head holder, frames, markers, noise) cut away.

use crate::distance::{close, dilate, fill_holes, largest_component, open};
use crate::filter::local_mean;
use crate::grid::{Field, WorkingImage};
use defacer_volume::Modality;
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
        let in_view = |values: &Field<f32>| -> Vec<f32> {
            values
                .data
                .iter()
                .zip(&img.in_fov.data)
                .filter(|(_, &v)| v)
                .map(|(&x, _)| x)
                .collect()
        };
        let inside = in_view(&img.values);
        if inside.len() < 1000 {
            return None;
        }
        let (values, threshold) = match modality {
            Modality::Ct => (Cow::Borrowed(&img.values), CT_SKIN_HU),
            _ => {
                let t = mri_threshold(&inside)?;
                if t.set_by_noise {
                    // Air noise reaches the level of dim skin cell by cell (Rician noise of 8 %
                    // of white matter, an offset background): taken as it is, the threshold
                    // cut into the scalp and the fit then placed the brain too deep. Averaged
                    // over 3×3×3 cells (within the field of view) the noise is five times
                    // smaller, and air and skin part again.
                    let smoothed = local_mean(&img.values, &img.in_fov, 1);
                    let t = mri_threshold(&in_view(&smoothed))?;
                    (Cow::Owned(smoothed), t.value)
                } else {
                    (Cow::Borrowed(&img.values), t.value)
                }
            }
        };
        let sp = img.grid.spacing;
        let raw = values.zip(&img.in_fov, |v, ok| ok && v as f64 > threshold);
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
/// threshold is never below the noise floor (3× the background median absolute level).
fn mri_threshold(values: &[f32]) -> Option<Threshold> {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    // Order statistics by selection, not a full sort: the same values, a fraction of the time
    // on a large field of view.
    let lo = v
        .iter()
        .copied()
        .min_by(|a, b| a.total_cmp(b))
        .unwrap_or(0.0) as f64;
    let at = ((v.len() - 1) as f64 * 0.995) as usize;
    let hi = *v.select_nth_unstable_by(at, |a, b| a.total_cmp(b)).1 as f64;
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    const BINS: usize = 256;
    let mut hist = [0f64; BINS];
    for &x in &v {
        let b = (((x as f64 - lo) / (hi - lo)) * (BINS - 1) as f64).clamp(0.0, (BINS - 1) as f64);
        hist[b as usize] += 1.0;
    }
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
    let mut below: Vec<f32> = v.iter().copied().filter(|&x| (x as f64) < otsu).collect();
    let bg = if below.is_empty() {
        lo
    } else {
        let mid = below.len() / 2;
        *below.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1 as f64
    };
    let noise = (bg - lo).abs() * 3.0 + lo;
    let tissue = lo + (otsu - lo) * 0.35;
    Some(Threshold {
        value: tissue.max(noise),
        set_by_noise: noise > tissue,
    })
}

/// The MRI air/tissue threshold and whether the background's noise floor set it.
struct Threshold {
    value: f64,
    set_by_noise: bool,
}
