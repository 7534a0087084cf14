//! The intensity at which air turns into skin, per volume and modality.
//!
//! CT has a physical scale: skin and fat sit near −100 HU and air at −1000 HU, so a level between
//! them works for every CT. MRI has no scale, so the level is found on the histogram: Otsu's
//! split between the dark class (air, noise, bone) and the bright class (tissue).

use defacer_volume::Modality;

/// Hounsfield level between air (−1000) and fat/skin (−100); the middle of the −300..−200 range
/// where published CT skin renders put the surface.
pub const CT_SKIN_HU: f32 = -250.0;

/// Chooses the skin level for a volume. `values` are physical intensities.
///
/// A volume of unknown modality is treated as CT when its values span a Hounsfield-like range
/// (air near −1000, tissue near 0), otherwise as MRI.
pub fn skin_level(values: &[f32], modality: Modality) -> Option<f32> {
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    let is_ct = match modality {
        Modality::Ct => true,
        Modality::Mr => false,
        Modality::Unknown => looks_like_hounsfield(&finite),
    };
    if is_ct {
        return Some(CT_SKIN_HU);
    }
    otsu_level(&finite)
}

fn looks_like_hounsfield(values: &[f32]) -> bool {
    let (lo, hi) = percentiles(values, 0.02, 0.98);
    // Air around −1000 HU and soft tissue near 0..100 HU; MRI is never that negative.
    lo < -800.0 && hi > -200.0
}

/// Otsu's threshold on a 256-bin histogram between the 0.5th and 99.5th percentiles, so that a
/// few very bright voxels (vessels, fat, artefacts) cannot squeeze the tissue into a few bins.
pub fn otsu_level(values: &[f32]) -> Option<f32> {
    let (lo, hi) = percentiles(values, 0.005, 0.995);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let mut hist = [0u64; BINS];
    for &v in values {
        let b = ((v - lo) / width).floor();
        let b = b.clamp(0.0, (BINS - 1) as f32) as usize;
        hist[b] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0u64, 0f64);
    let (mut best, mut best_var) = (0usize, -1f64);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += i as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0 || w1 == 0 {
            continue;
        }
        let m0 = sum0 / w0 as f64;
        let m1 = (sum_all - sum0) / w1 as f64;
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best_var {
            best_var = between;
            best = i;
        }
    }
    Some(lo + (best as f32 + 1.0) * width)
}

/// Two quantiles of `values` (by sorting a copy; volumes are small enough for this to be cheap
/// next to the rendering).
fn percentiles(values: &[f32], a: f64, b: f64) -> (f32, f32) {
    let mut s: Vec<f32> = values.to_vec();
    let n = s.len();
    let ia = ((n - 1) as f64 * a).round() as usize;
    let ib = ((n - 1) as f64 * b).round() as usize;
    let (_, va, _) = s.select_nth_unstable_by(ia, f32::total_cmp);
    let va = *va;
    let (_, vb, _) = s.select_nth_unstable_by(ib, f32::total_cmp);
    (va, *vb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_clusters() {
        let mut v = vec![0.0f32; 1000];
        v.extend(std::iter::repeat_n(100.0f32, 1000));
        let t = otsu_level(&v).unwrap();
        assert!(t > 0.0 && t < 100.0, "{t}");
    }

    #[test]
    fn hounsfield_volumes_get_the_ct_level() {
        let mut v = vec![-1000.0f32; 1000];
        v.extend(std::iter::repeat_n(40.0f32, 1000));
        assert_eq!(skin_level(&v, Modality::Unknown), Some(CT_SKIN_HU));
        let mri: Vec<f32> = (0..2000).map(|i| (i % 200) as f32).collect();
        assert_ne!(skin_level(&mri, Modality::Unknown), Some(CT_SKIN_HU));
    }

    #[test]
    fn constant_volume_has_no_level() {
        assert_eq!(otsu_level(&[5.0; 100]), None);
    }
}
