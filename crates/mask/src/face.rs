//! The face (and ear) removal region on the working grid: the template's face region as fitted
//! to the subject, minus the protected brain.

use crate::brain::ProtectedBrain;
use crate::distance::dilate;
use crate::grid::{Field, WorkingGrid};
use crate::template::{label, Template};
use nalgebra::{Matrix4, Vector4};

/// Radius (mm) of the ball around each of the template's eyes, as fitted, in which MRI voxels
/// are never taken for bone. In T1 the vitreous is as dark as cortical bone: on copies of the
/// Philips head with a raised, noisy background or 5 mm axial slabs the globes were kept as
/// bone and the eyes left in place. The globe's radius is about 12 mm; the orbital rims lie
/// 18–20 mm from its centre and stay bone.
pub const GLOBE_RADIUS_MM: f64 = 14.0;

/// The template's eyes mapped by `fit` (template world → subject world).
fn fitted_eyes(template: &Template, fit: &Matrix4<f64>) -> Vec<[f64; 3]> {
    named_eyes(template, fit)
        .into_iter()
        .map(|(_, w)| w)
        .collect()
}

/// The template's eyes mapped by `fit` (template world → subject world), with the side of
/// each (the subject's left or right).
pub fn named_eyes(template: &Template, fit: &Matrix4<f64>) -> Vec<(&'static str, [f64; 3])> {
    [("left", "eye_left"), ("right", "eye_right")]
        .into_iter()
        .filter_map(|(side, name)| template.landmarks.get(name).map(|p| (side, p)))
        .map(|(side, p)| {
            let w = fit * Vector4::new(p[0], p[1], p[2], 1.0);
            (side, [w[0], w[1], w[2]])
        })
        .collect()
}

/// Calls `visit` with the index of each cell of `grid` within `radius_mm` of world point
/// `centre` and its squared distance (mm²). Only the cells of the ball's bounding box are
/// looked at.
fn cells_within(
    grid: WorkingGrid,
    centre: [f64; 3],
    radius_mm: f64,
    mut visit: impl FnMut(usize, f64),
) {
    let g = grid.to_grid(centre);
    let reach = radius_mm / grid.spacing;
    let span = |a: usize| {
        let lo = (g[a] - reach).ceil().max(0.0) as usize;
        let hi = ((g[a] + reach).floor() + 1.0).clamp(0.0, grid.dims[a] as f64) as usize;
        lo..hi
    };
    let r2 = radius_mm * radius_mm;
    for k in span(2) {
        for j in span(1) {
            for i in span(0) {
                let w = grid.world(i, j, k);
                let d2 = (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum::<f64>();
                if d2 <= r2 {
                    visit(grid.cell([i, j, k]), d2);
                }
            }
        }
    }
}

/// The cells of `grid` within [`GLOBE_RADIUS_MM`] of the template's eyes mapped by `fit`
/// (template world → subject world).
pub fn globes(template: &Template, fit: &Matrix4<f64>, grid: WorkingGrid) -> Field<bool> {
    let mut inside = Field::filled(grid.dims, false);
    for e in fitted_eyes(template, fit) {
        cells_within(grid, e, GLOBE_RADIUS_MM, |c, _| inside.data[c] = true);
    }
    inside
}

/// The distance (mm) from each of the template's eyes mapped by `fit` to the nearest cell of
/// `field`, where one lies within `reach_mm` (`None` where none does).
pub fn eyes_to(
    template: &Template,
    fit: &Matrix4<f64>,
    grid: WorkingGrid,
    field: &Field<bool>,
    reach_mm: f64,
) -> Vec<Option<f64>> {
    fitted_eyes(template, fit)
        .into_iter()
        .map(|e| {
            let mut nearest: Option<f64> = None;
            cells_within(grid, e, reach_mm, |c, d2| {
                if field.data[c] && nearest.is_none_or(|n| d2 < n) {
                    nearest = Some(d2);
                }
            });
            nearest.map(f64::sqrt)
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct FaceRegion {
    pub face: Field<bool>,
    pub ears: Field<bool>,
    /// Cells that may change (in view, not protected, not soft tissue behind the face) within
    /// a cell's diagonal of the edge of the template's face label. A native voxel there takes
    /// the label at its own position, not at its nearest cell's centre: the edge then follows
    /// the fitted template, not the working grid's phase (ch2 padded by one voxel, which moves
    /// the grid by half a cell, agreed 0.957 with the unpadded removal by cells, 0.968 so; the
    /// 20° oblique copies of ch2 0.972–0.977 by cells, 0.978–0.981 so).
    pub edge: Field<bool>,
    /// The same along the edge of the ear label (outside [`Self::edge`]), when the ears are
    /// removed (empty otherwise). By cells, ch2's 20° copies removed with ears agreed 0.961–0.967 with
    /// the original.
    pub ear_edge: Field<bool>,
    /// Cells of the protected region (not of the brain itself, in view) that the template
    /// labels face (or ears, when removed). The protected cells reach the margin and a half diagonal from the
    /// brain cells' centres, so the removal's back stops on the working grid's steps there; a
    /// native voxel of these cells changes when it lies beyond the margin from every cube of the
    /// brain and takes the label at its own position (ch2 padded by one voxel agreed 0.968 with
    /// the unpadded removal, 0.970 so).
    pub protected_edge: Field<bool>,
}

impl FaceRegion {
    /// `labels` are the template labels mapped onto the working grid; `in_fov` the cells inside
    /// the native field of view; `behind_face`, where known (CT), the soft tissue between the
    /// fitted face region and the facial bone, which is face too. The ears' edges are looked
    /// for only `with_ears` (when they are removed).
    pub fn new(
        labels: &Field<u8>,
        brain: &ProtectedBrain,
        in_fov: &Field<bool>,
        behind_face: Option<&Field<bool>>,
        spacing: f64,
        with_ears: bool,
    ) -> Self {
        let allowed = brain.protected.zip(in_fov, |p, ok| ok && !p);
        let labelled = labels.map(|l| l & label::FACE != 0);
        let mut face = labelled.zip(&allowed, |l, a| a && l);
        let diagonal = 2.0 * brain.half_diagonal();
        // cells within a diagonal of both a labelled and an unlabelled cell
        let edge_of = |m: &Field<bool>| {
            dilate(m, diagonal, spacing)
                .zip(&dilate(&m.map(|l| !l), diagonal, spacing), |a, b| a && b)
        };
        let mut edge = edge_of(&labelled).zip(&allowed, |e, a| e && a);
        let mut ear_edge = if with_ears {
            edge_of(&labels.map(|l| l & label::EARS != 0)).zip(&allowed, |e, a| e && a)
        } else {
            Field::filled(labels.dims, false)
        };
        if let Some(behind) = behind_face {
            face = face.zip(behind, |f, b| f || b).zip(&allowed, |f, a| f && a);
            edge = edge.zip(behind, |e, b| e && !b);
            ear_edge = ear_edge.zip(behind, |e, b| e && !b);
        }
        let ear_edge = ear_edge.zip(&edge, |e, f| e && !f);
        let ears = labels.zip(&allowed, |l, a| {
            a && l & label::EARS != 0 && l & label::FACE == 0
        });
        let protected_edge = Field::from_cells(labels.dims, |c| {
            brain.protected.data[c]
                && !brain.brain.data[c]
                && brain.may_clear_margin(c)
                && in_fov.data[c]
                && (labels.data[c] & label::FACE != 0
                    || with_ears && labels.data[c] & label::EARS != 0)
        });
        FaceRegion {
            face,
            ears,
            edge,
            ear_edge,
            protected_edge,
        }
    }
}
