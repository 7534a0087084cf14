//! Geometric signs of a face that do not depend on a detector: skin left near facial landmarks,
//! and how far a nose sticks out of the face.

use defacer_render::{SkinScene, View};
use serde::Serialize;

/// A named point in world (RAS, mm) space where a facial feature is expected, e.g. from a
/// template fit mapped into the subject: `("nose_tip", [x, y, z])`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landmark {
    pub name: String,
    pub world_mm: [f64; 3],
}

/// How much skin surface remains near one landmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandmarkResidual {
    pub name: String,
    pub world_mm: [f64; 3],
    /// Search radius, mm.
    pub radius_mm: f64,
    /// Skin surface area within the radius, mm² (boundary voxels of the working grid × voxel
    /// face area).
    pub skin_area_mm2: f64,
    /// Distance to the nearest skin surface voxel within twice the radius, if any.
    pub nearest_skin_mm: Option<f64>,
}

/// Detector-independent measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Residuals {
    pub landmarks: Vec<LandmarkResidual>,
    /// How far (mm) the most anterior skin point near the midline stands in front of the skin
    /// beside it (20–35 mm lateral, same height): about 20–30 mm with a nose, near 0 for a face
    /// cut flat. `None` if the front view sees no skin at all.
    pub nose_prominence_mm: Option<f64>,
}

/// Skin surface area near each landmark: grid voxels at or above the skin level that touch a
/// voxel below it.
pub fn landmark_residuals(
    scene: &SkinScene,
    landmarks: &[Landmark],
    radius_mm: f64,
) -> Vec<LandmarkResidual> {
    let g = scene.grid();
    let level = scene.skin_level();
    let inside = |i: usize, j: usize, k: usize| g.data[g.index(i, j, k)] >= level;
    landmarks
        .iter()
        .map(|lm| {
            let c = g.to_grid(lm.world_mm);
            let reach = 2.0 * radius_mm / g.spacing;
            let range = |a: usize| {
                let lo = (c[a] - reach).floor().max(1.0) as usize;
                let hi = ((c[a] + reach).ceil().max(0.0) as usize).min(g.dims[a].saturating_sub(2));
                lo..=hi
            };
            let (mut count, mut nearest) = (0usize, f64::INFINITY);
            for k in range(2) {
                for j in range(1) {
                    for i in range(0) {
                        if !inside(i, j, k) {
                            continue;
                        }
                        let boundary = !inside(i - 1, j, k)
                            || !inside(i + 1, j, k)
                            || !inside(i, j - 1, k)
                            || !inside(i, j + 1, k)
                            || !inside(i, j, k - 1)
                            || !inside(i, j, k + 1);
                        if !boundary {
                            continue;
                        }
                        let d = g.spacing
                            * ((i as f64 - c[0]).powi(2)
                                + (j as f64 - c[1]).powi(2)
                                + (k as f64 - c[2]).powi(2))
                            .sqrt();
                        nearest = nearest.min(d);
                        if d <= radius_mm {
                            count += 1;
                        }
                    }
                }
            }
            LandmarkResidual {
                name: lm.name.clone(),
                world_mm: lm.world_mm,
                radius_mm,
                skin_area_mm2: count as f64 * g.spacing * g.spacing,
                nearest_skin_mm: nearest.is_finite().then_some(nearest),
            }
        })
        .collect()
}

/// Nose prominence from the frontal view's surface points: the most anterior point within 15 mm
/// of the head's midline, against the median anteriority of skin 20–35 mm to either side within
/// 15 mm of the same height.
pub fn nose_prominence(scene: &SkinScene) -> Option<f64> {
    let hits: Vec<[f64; 3]> = scene
        .hits(&View::FRONT)
        .into_iter()
        .flatten()
        .map(|h| h.point)
        .collect();
    let mid_x = scene.framing().centre[0];
    let apex = hits
        .iter()
        .filter(|p| (p[0] - mid_x).abs() <= 15.0)
        .max_by(|a, b| a[1].total_cmp(&b[1]))?;
    let mut beside: Vec<f64> = hits
        .iter()
        .filter(|p| {
            let dx = (p[0] - mid_x).abs();
            (20.0..=35.0).contains(&dx) && (p[2] - apex[2]).abs() <= 15.0
        })
        .map(|p| p[1])
        .collect();
    if beside.is_empty() {
        return Some(0.0);
    }
    beside.sort_by(f64::total_cmp);
    Some(apex[1] - beside[beside.len() / 2])
}
