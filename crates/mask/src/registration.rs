//! Fitting the template to a subject in world space: a 9-parameter transform (translation,
//! rotation, per-axis scale) that lays the template's head surface onto the subject's.
//!
//! Only the skin surface is used, because the head/air boundary looks the same in every
//! modality. Template points falling outside the subject's field of view are not counted as
//! misses (cropped scans), and the template surface stops above the neck (necks and shoulders
//! vary and are often cut).
//!
//! The optimiser is a hand-written Nelder–Mead (about 60 lines): the problem has 9 parameters
//! and a cheap, non-smooth (truncated) cost, a simplex method needs no gradients, and it keeps
//! the crate free of a numerical dependency tree. Starts run in parallel and the winner is
//! chosen by (cost, start index), so the result does not depend on the thread count.

use crate::distance::{boundary, distance_sq_within, exact_distances, reach_cells};
use crate::grid::{trilinear_with, Corners, Field, WorkingGrid};
use crate::head::HeadMask;
use crate::template::{label, Template};
use nalgebra::{Matrix3, Matrix4, Rotation3, Vector3, Vector4};
use rayon::prelude::*;

/// The subject's skin surface as a distance field on the working grid.
pub struct SubjectSurface {
    pub grid: WorkingGrid,
    /// Squared distance (mm²) to the nearest skin cell, exact up to `reach_mm` and larger beyond.
    pub distance_sq: Field<f32>,
    pub reach_mm: f64,
    /// Where the skin may be seen: the native field of view, less what lies beyond a planar cut.
    pub in_fov: Field<bool>,
    /// Flat cuts of the head by the edge of an earlier field of view (see [`planar_cuts`]).
    pub cuts: Vec<PlanarCut>,
}

impl SubjectSurface {
    pub fn new(head: &HeadMask, grid: WorkingGrid, in_fov: &Field<bool>) -> Self {
        // Only boundaries against real air count as skin: where the head touches the edge of
        // the field of view, the boundary is the cut, not the skin.
        let skin = boundary(&head.mask, |nb| in_fov.data[nb]);
        // Nor does skin right at that edge: the cut lies anywhere within the cell, and a planar
        // cut (below) loses the same band, so both kinds of field-of-view edge look alike.
        let skin = skin.zip(&boundary(&head.mask, |nb| !in_fov.data[nb]), |s, e| s && !e);
        // A volume resliced into a larger grid (registered, rotated, conformed) pads the space
        // beyond its original field of view with a constant that looks like air: the cut is
        // then a flat "skin". It is the edge of the field of view, and what lies beyond it is
        // unknown, exactly as if the grid ended there.
        let cuts = planar_cuts(&head.mask, &skin, grid);
        let mut skin = skin;
        // The outermost cells of the field of view are partly beyond it (they are kept for the
        // native voxels nearest to them) and have no skin (above): they are not evidence.
        let mut in_fov = boundary(in_fov, |_| true).zip(in_fov, |edge, seen| seen && !edge);
        for cut in &cuts {
            for c in 0..skin.data.len() {
                let [i, j, k] = skin.coords(c);
                let h = cut.height(grid.world(i, j, k));
                if h > cut.tolerance_mm {
                    in_fov.data[c] = false;
                }
                if skin.data[c] && h > -cut.tolerance_mm {
                    skin.data[c] = false;
                }
            }
        }
        // The fit reads distances up to its largest cap ([`QUALITY_CAP_MM`]); a value
        // interpolated below it has every corner within a cell diagonal more, so the field
        // needs to be exact only that far.
        let reach_mm = QUALITY_CAP_MM + grid.spacing * 3f64.sqrt();
        let distance_sq = distance_sq_within(&skin, grid.spacing, reach_mm);
        SubjectSurface {
            grid,
            distance_sq,
            reach_mm,
            in_fov,
            cuts,
        }
    }
}

impl SubjectSurface {
    /// The cells of the field of view whose air is real air: `in_fov` less the non-head cells on
    /// or beyond a planar cut, which are padding. Floods that start from the air (what the skull
    /// encloses, what the outside reaches) would otherwise enter the head through its cut face.
    pub fn air_in_view(&self, head: &Field<bool>, in_fov: &Field<bool>) -> Field<bool> {
        if self.cuts.is_empty() {
            return in_fov.clone();
        }
        let grid = self.grid;
        Field::from_cells(in_fov.dims, |c| {
            if !in_fov.data[c] || head.data[c] {
                return in_fov.data[c];
            }
            let [i, j, k] = in_fov.coords(c);
            let w = grid.world(i, j, k);
            self.cuts
                .iter()
                .all(|cut| cut.height(w) <= -cut.tolerance_mm)
        })
    }
}

/// A plane where the head is cut by the edge of the original field of view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanarCut {
    /// Unit normal pointing out of the head.
    pub normal: [f64; 3],
    /// `normal · x` on the plane (mm).
    pub offset_mm: f64,
    /// Area (mm²) of head boundary lying on the plane.
    pub area_mm2: f64,
    pub tolerance_mm: f64,
}

impl PlanarCut {
    /// Signed distance (mm) of a world point beyond the plane (positive outside the head).
    #[inline]
    pub fn height(&self, w: [f64; 3]) -> f64 {
        self.normal[0] * w[0] + self.normal[1] * w[1] + self.normal[2] * w[2] - self.offset_mm
    }
}

/// Flat boundary larger than this is a cut, not skin: a forehead within ±2 mm of a plane is about
/// 10 cm², a skull pressed on a table a few cm², a head cut at the nose over 100 cm².
const MIN_CUT_AREA_MM2: f64 = 4000.0;

/// A cut is flat: the normals of its cells (each from a 5-cell neighbourhood) agree to within
/// this; skin curves (radius ≲ 15 cm), so a patch of it this flat is a few cm² at most.
const MAX_CUT_TILT_DEG: f64 = 6.0;

/// Outward normal of the head boundary at a cell: the direction away from the head cells in
/// its 5×5×5 neighbourhood.
fn outward_normal(head: &Field<bool>, c: usize) -> Option<[f64; 3]> {
    let [nx, ny, nz] = head.dims;
    let [i, j, k] = head.coords(c);
    let mut n = [0f64; 3];
    for dk in -2i64..=2 {
        for dj in -2i64..=2 {
            for di in -2i64..=2 {
                let (a, b, e) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                if a < 0 || b < 0 || e < 0 || a >= nx as i64 || b >= ny as i64 || e >= nz as i64 {
                    continue;
                }
                if head.get(a as usize, b as usize, e as usize) {
                    n[0] -= di as f64;
                    n[1] -= dj as f64;
                    n[2] -= dk as f64;
                }
            }
        }
    }
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    (len > 1e-9).then(|| n.map(|x| x / len))
}

/// Large flat parts of the head boundary (at most three). Every skin cell votes for the plane
/// through it along its normal (normals quantised to ~7°, offsets to 2 mm); the strongest
/// vote is refined on the cells that agree with it to within `MAX_CUT_TILT_DEG` (6°) and a cell's
/// width.
pub fn planar_cuts(head: &Field<bool>, skin: &Field<bool>, grid: WorkingGrid) -> Vec<PlanarCut> {
    let cells: Vec<(usize, [f64; 3], [f64; 3])> = (0..skin.data.len())
        .into_par_iter()
        .filter(|&c| skin.data[c])
        .filter_map(|c| {
            let [i, j, k] = skin.coords(c);
            outward_normal(head, c).map(|n| (c, n, grid.world(i, j, k)))
        })
        .collect();
    let tolerance_mm = grid.spacing;
    let cell_area = grid.spacing * grid.spacing;
    let mut used = vec![false; cells.len()];
    let mut cuts = Vec::new();
    for _ in 0..3 {
        // each cell's vote; the plane with the most, the smallest of those tied
        let mut votes: Vec<[i64; 4]> = cells
            .par_iter()
            .zip(&used)
            .filter(|(_, &used)| !used)
            .map(|(&(_, nrm, w), _)| {
                let key = nrm.map(|x| (x * 8.0).round() as i64);
                let len = ((key[0] * key[0] + key[1] * key[1] + key[2] * key[2]) as f64).sqrt();
                let d = (key[0] as f64 * w[0] + key[1] as f64 * w[1] + key[2] as f64 * w[2]) / len;
                [key[0], key[1], key[2], (d / 2.0).round() as i64]
            })
            .collect();
        votes.par_sort_unstable();
        let Some((key, count)) = votes
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len()))
            .fold(
                None,
                |best: Option<([i64; 4], usize)>, (key, n)| match best {
                    Some((_, most)) if most >= n => best,
                    _ => Some((key, n)),
                },
            )
        else {
            break;
        };
        if (count as f64) * cell_area < MIN_CUT_AREA_MM2 / 4.0 {
            break;
        }
        let len = ((key[0] * key[0] + key[1] * key[1] + key[2] * key[2]) as f64).sqrt();
        let mut normal = [0, 1, 2].map(|a| key[a] as f64 / len);
        let mut offset = key[3] as f64 * 2.0;
        let mut members = Vec::new();
        for _ in 0..3 {
            members = (0..cells.len())
                .filter(|&n| {
                    let (_, nrm, w) = cells[n];
                    let h = normal[0] * w[0] + normal[1] * w[1] + normal[2] * w[2] - offset;
                    !used[n]
                        && dot(nrm, normal) > MAX_CUT_TILT_DEG.to_radians().cos()
                        && h.abs() <= tolerance_mm
                })
                .collect();
            if members.is_empty() {
                break;
            }
            let m = members.len() as f64;
            let mean_n = [0, 1, 2].map(|a| members.iter().map(|&n| cells[n].1[a]).sum::<f64>());
            let l = dot(mean_n, mean_n).sqrt();
            normal = mean_n.map(|x| x / l);
            offset = members
                .iter()
                .map(|&n| dot(normal, cells[n].2))
                .sum::<f64>()
                / m;
        }
        let area = members.len() as f64 * cell_area;
        if area < MIN_CUT_AREA_MM2 {
            break;
        }
        for &n in &members {
            used[n] = true;
        }
        cuts.push(PlanarCut {
            normal,
            offset_mm: offset,
            area_mm2: area,
            tolerance_mm,
        });
    }
    cuts
}

#[inline]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Distances beyond this (mm) count as this much in the fit's reported mean distance, the
/// largest cap of any of its costs.
const QUALITY_CAP_MM: f64 = 20.0;

/// The template's neck: its surface behind y = −20 mm and below z = −55 mm (template world,
/// MNI-like: the back of the neck below the occiput). The neck bends on the head: the GE CT
/// lies about 18° chin-up against the template, and its field of view, tilted with the gantry,
/// takes in the neck behind. Searched with the neck it was fitted to the neck, the template's
/// eyes 25 and 27 mm from the subject's; searched without it, 3 and 5 mm.
fn in_neck(p: &[f64; 3]) -> bool {
    p[1] < -20.0 && p[2] < -55.0
}

/// Template world → subject world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadFit {
    pub matrix: Matrix4<f64>,
    /// translation (mm), rotation about x, y, z (degrees), log scale per axis
    pub params: [f64; 9],
    /// Mean distance (mm) between the fitted template surface and the subject's skin, over the
    /// template surface points of the head (not the neck) inside the field of view (distances
    /// capped at 20 mm).
    pub mean_distance_mm: f64,
    /// Share of those points within 5 mm of the skin.
    pub inlier_fraction: f64,
    /// Share of the template head's surface points inside the subject's field of view.
    pub in_fov_fraction: f64,
    /// How far (log scale) the template was let shrink without penalty: `SCALE_LIMIT` (0.2), or
    /// `SMALL_HEAD_SCALE_LIMIT` (0.35) for a head smaller than an adult's.
    pub scale_limit: f64,
}

impl HeadFit {
    /// The fit's rotation (template → subject world), as an affine matrix.
    pub fn rotation(&self) -> Matrix4<f64> {
        let p = &self.params;
        Rotation3::from_euler_angles(p[3].to_radians(), p[4].to_radians(), p[5].to_radians())
            .to_homogeneous()
    }

    /// How far (degrees) the fit turns the upright template.
    pub fn tilt_deg(&self) -> f64 {
        let p = &self.params;
        Rotation3::from_euler_angles(p[3].to_radians(), p[4].to_radians(), p[5].to_radians())
            .angle()
            .to_degrees()
    }

    /// Axes on which the template was shrunk to its bound (within 1.2 %) or beyond: the head is
    /// smaller than the fit allows there, and two or more such axes mean the fit was forced
    /// (measured with the adult bound: ch2 scaled to 0.75 fits with its template eyes 30 mm
    /// off, at 0.81 / 0.81 / 0.94; adult heads stay at the bound on one axis at most).
    pub fn axes_at_smallest_scale(&self) -> usize {
        self.params[6..9]
            .iter()
            .filter(|&&ls| ls <= -self.scale_limit + 0.012)
            .count()
    }

    /// Whether the head was fitted as smaller than an adult's (see [`fit`]).
    pub fn small_head(&self) -> bool {
        self.scale_limit > SCALE_LIMIT
    }
}

/// The skin distance with the field of view folded in. The fit reads it tens of millions of
/// times, so where it can it keeps two bytes per cell instead of a float's four: on a grid
/// whose distances are exact (see [`exact_distances`]; the 2 mm working grid is) the distances
/// within the surface's reach are few (square roots of whole numbers of cells²), and each cell
/// holds the index of its distance in a table, with the top bit set where the cell is not in
/// view. Cells farther than the reach share one level that is farther still: beyond the reach
/// the fit reads only that a point is past every cap. A field half the size stays in the caches
/// better: the fit takes about a tenth less time. Other grids keep the floats, the sign bit
/// set where the cell is not in view.
struct ViewedDistance {
    grid: WorkingGrid,
    cells: Cells,
}

enum Cells {
    Coded { codes: Vec<u16>, levels: Vec<f32> },
    Plain(Vec<f32>),
}

/// The top bit of a code: the cell is not in view.
const UNSEEN: u16 = 0x8000;

impl ViewedDistance {
    fn new(surface: &SubjectSurface) -> Self {
        let reach_sq = (surface.reach_mm * surface.reach_mm) as f32;
        let d = &surface.distance_sq.data;
        let g = surface.grid;
        let reach = reach_cells(surface.reach_mm, g.spacing);
        if !exact_distances(g.dims, g.spacing, reach) {
            let data = d
                .par_iter()
                .zip(&surface.in_fov.data)
                .map(|(&d2, &seen)| if seen { d2.sqrt() } else { -d2.sqrt() })
                .collect();
            return ViewedDistance {
                grid: g,
                cells: Cells::Plain(data),
            };
        }
        // the distinct squares within reach, as whole numbers of cells² (at most reach³ of
        // them: no more than a few thousand on the finest working grid), and the nearest
        // square beyond the reach
        let w = g.spacing as f32;
        let cell_sq = w * w;
        let n_max = (reach + 1) * (reach + 1) * 3;
        let present = (0..d.len())
            .into_par_iter()
            .fold(
                || (vec![false; n_max + 1], f32::MAX),
                |(mut present, far), c| {
                    let v = d[c];
                    if v > reach_sq {
                        (present, far.min(v))
                    } else {
                        present[((v / cell_sq).round() as usize).min(n_max)] = true;
                        (present, far)
                    }
                },
            )
            .reduce(
                || (vec![false; n_max + 1], f32::MAX),
                |(a, fa), (b, fb)| {
                    (
                        a.iter().zip(&b).map(|(&x, &y)| x || y).collect(),
                        fa.min(fb),
                    )
                },
            );
        let (present, far) = present;
        let mut squares: Vec<f32> = (0..=n_max)
            .filter(|&n| present[n])
            .map(|n| n as f32 * cell_sq)
            .collect();
        squares.push(far);
        let last = squares.len() - 1;
        debug_assert!(last < UNSEEN as usize);
        let codes = d
            .par_iter()
            .zip(&surface.in_fov.data)
            .map(|(&v, &seen)| {
                let level = if v <= reach_sq {
                    squares[..last].partition_point(|&l| l < v)
                } else {
                    last
                } as u16;
                if seen {
                    level
                } else {
                    level | UNSEEN
                }
            })
            .collect();
        ViewedDistance {
            grid: g,
            cells: Cells::Coded {
                codes,
                levels: squares.iter().map(|v| v.sqrt()).collect(),
            },
        }
    }

    /// The distance at cell `c`.
    #[inline(always)]
    fn level(&self, c: usize) -> f64 {
        match &self.cells {
            Cells::Coded { codes, levels } => levels[(codes[c] & !UNSEEN) as usize] as f64,
            Cells::Plain(d) => d[c].abs() as f64,
        }
    }

    /// Whether cell `c` is out of view.
    #[inline(always)]
    fn unseen(&self, c: usize) -> bool {
        match &self.cells {
            Cells::Coded { codes, .. } => codes[c] & UNSEEN != 0,
            Cells::Plain(d) => d[c].is_sign_negative(),
        }
    }

    /// The skin distance at grid coordinates `at`, read in one pass over the eight cells around
    /// it (the nearest of which says whether the point is in view).
    #[inline]
    fn sample(&self, at: [f64; 3]) -> Sample {
        let Some(corners) = Corners::around(self.grid.dims, at) else {
            // within half a cell of the grid's edge, or beyond it
            return if self.seen(at) {
                Sample::Edge
            } else {
                Sample::Unseen
            };
        };
        if self.unseen(corners.nearest()) {
            return Sample::Unseen;
        }
        Sample::Distance(corners.interpolate(|k| self.level(k)) as f32)
    }

    /// World → continuous grid coordinates, as a matrix to fold into a transform.
    fn grid_from_world(&self) -> Matrix4<f64> {
        let s = 1.0 / self.grid.spacing;
        let o = self.grid.origin;
        Matrix4::new(
            s,
            0.0,
            0.0,
            -o[0] * s, //
            0.0,
            s,
            0.0,
            -o[1] * s, //
            0.0,
            0.0,
            s,
            -o[2] * s, //
            0.0,
            0.0,
            0.0,
            1.0,
        )
    }

    /// The skin distance at grid coordinates `at` and its gradient per grid step, where the
    /// point is in view and has a trilinear value (as [`ViewedDistance::sample`] reads it).
    #[inline]
    fn sample_with_gradient(&self, at: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let corners = Corners::around(self.grid.dims, at)?;
        if self.unseen(corners.nearest()) {
            return None;
        }
        let (d, gradient) = corners.interpolate_with_gradient(|k| self.level(k));
        // the value rounded as `sample` rounds it, so residuals and costs agree
        Some((d as f32 as f64, gradient))
    }

    /// Whether the cell nearest to grid coordinates `at` is inside the grid and in view.
    #[inline]
    fn seen(&self, at: [f64; 3]) -> bool {
        self.grid
            .nearest_to_grid(at)
            .is_some_and(|c| !self.unseen(c))
    }

    /// The distance (mm) to the skin, interpolated at grid coordinates `at` (`None` outside).
    #[inline]
    fn distance(&self, at: [f64; 3]) -> Option<f32> {
        trilinear_with(self.grid.dims, at, |k| self.level(k)).map(|d| d as f32)
    }
}

/// What the fit reads at a point: out of view, in view but within half a cell of the grid's
/// edge (no trilinear value), or the distance to the skin.
enum Sample {
    Unseen,
    Edge,
    Distance(f32),
}

struct Problem<'a> {
    surface: &'a ViewedDistance,
    /// The subject's world → the surface's grid coordinates: `surface.grid_from_world()`, or
    /// for a head looked at turned ([`rough_costs`]) that after the way back from the turn.
    to_grid: Matrix4<f64>,
    points: Vec<[f64; 3]>,
    centre: [f64; 3],
    cap_mm: f64,
    scale_limit: f64,
}

fn matrix(p: &[f64; 9], centre: [f64; 3]) -> Matrix4<f64> {
    let r = Rotation3::from_euler_angles(p[3].to_radians(), p[4].to_radians(), p[5].to_radians());
    let s = Matrix3::from_diagonal(&Vector3::new(p[6].exp(), p[7].exp(), p[8].exp()));
    let a = r.matrix() * s;
    let c = Vector3::from(centre);
    let t = c + Vector3::new(p[0], p[1], p[2]) - a * c;
    let mut m = Matrix4::identity();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(&a);
    m.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
    m
}

/// Log-scale beyond which the fit is penalised (±20 %).
const SCALE_LIMIT: f64 = 0.2;

/// How far a head smaller than an adult's may shrink the template without penalty (to 0.70):
/// a young child's head is about three quarters of the adult, MNI-sized template.
const SMALL_HEAD_SCALE_LIMIT: f64 = 0.35;

/// Scales beyond ±[`SCALE_LIMIT`] and rotations beyond 45° are penalised: they only ever win
/// on a bad surface (a bare brain fits a template shrunk by a fifth). The template is
/// MNI-sized: adult heads fit at 0.82–1.05 per axis, often at the bound vertically. A head
/// three quarters of an adult's (a young child's) is fitted again with `shrink_limit` wider
/// (see [`fit`]).
fn prior(p: &[f64; 9], shrink_limit: f64) -> f64 {
    let mut pen = 0.0;
    for &ls in &p[6..9] {
        let limit = if ls < 0.0 { shrink_limit } else { SCALE_LIMIT };
        let over = (ls.abs() - limit).max(0.0);
        pen += 2000.0 * over * over;
    }
    for &deg in &p[3..6] {
        let over = (deg.abs() - 45.0).max(0.0);
        pen += 0.5 * over * over;
    }
    pen
}

impl Problem<'_> {
    /// Truncated mean squared distance; a point outside the field of view costs as much as one
    /// at `cap/√2`: less than a miss, so cropped scans still fit, but enough that pushing the
    /// template out of view does not pay.
    fn cost(&self, p: &[f64; 9]) -> f64 {
        let m = self.to_grid * matrix(p, self.centre);
        let cap2 = self.cap_mm * self.cap_mm;
        let mut sum = 0.0;
        for x in &self.points {
            let at = m * Vector4::new(x[0], x[1], x[2], 1.0);
            sum += match self.surface.sample([at[0], at[1], at[2]]) {
                Sample::Unseen => 0.5 * cap2,
                Sample::Edge => cap2,
                Sample::Distance(d) => (d as f64 * d as f64).min(cap2),
            };
        }
        sum / self.points.len().max(1) as f64 + prior(p, self.scale_limit)
    }

    fn quality(&self, p: &[f64; 9]) -> (f64, f64, f64) {
        let m = matrix(p, self.centre);
        let g = &self.surface.grid;
        let (mut n_in, mut sum, mut inl) = (0usize, 0.0, 0usize);
        for x in &self.points {
            let w = m * Vector4::new(x[0], x[1], x[2], 1.0);
            let w = [w[0], w[1], w[2]];
            if !self.surface.seen(g.to_grid(w)) {
                continue;
            }
            let d = self
                .surface
                .distance(g.to_grid(w))
                .unwrap_or(QUALITY_CAP_MM as f32) as f64;
            n_in += 1;
            sum += d.min(QUALITY_CAP_MM);
            inl += (d <= 5.0) as usize;
        }
        let n = n_in.max(1) as f64;
        (
            sum / n,
            inl as f64 / n,
            n_in as f64 / self.points.len().max(1) as f64,
        )
    }
}

/// Levenberg–Marquardt stops when a step gains less than this share of the cost: beyond it the
/// steps creep along the trilinear field's kinks by hundredths of a millimetre.
const LM_TOLERANCE: f64 = 1e-4;

/// Levenberg–Marquardt on the truncated least-squares skin distance: each template point in
/// view and within `cap_mm` of the skin pulls along the distance field's gradient. Near the
/// optimum this converges in a few iterations to the bottom of the cost, where a simplex
/// stalls on the cost's flat valleys (pitch and height of a round cranium). The points that
/// count are chosen once per round, so a point drifting out of view or off the cap does not
/// make the cost jump under the solver. Sequential sums: deterministic.
fn refine(problem: &Problem, mut p: [f64; 9], rounds: usize) -> [f64; 9] {
    let cap = problem.cap_mm;
    let cap2 = cap * cap;
    let eps = [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-5, 1e-5, 1e-5];
    let to_grid = problem.to_grid;
    // the distance at a point, in grid coordinates, when in view
    let distance = |at: [f64; 3]| -> Option<f64> {
        match problem.surface.sample(at) {
            Sample::Distance(d) => Some(d as f64),
            Sample::Unseen | Sample::Edge => None,
        }
    };
    let apply = |m: &Matrix4<f64>, x: &[f64; 3]| {
        let w = m * Vector4::new(x[0], x[1], x[2], 1.0);
        [w[0], w[1], w[2]]
    };
    for _ in 0..rounds {
        let m = to_grid * matrix(&p, problem.centre);
        let active: Vec<[f64; 3]> = problem
            .points
            .iter()
            .filter(|x| distance(apply(&m, x)).is_some_and(|d| d <= cap))
            .copied()
            .collect();
        if active.len() < 10 {
            break;
        }
        let cost = |q: &[f64; 9]| {
            let m = to_grid * matrix(q, problem.centre);
            let sum: f64 = active
                .iter()
                .map(|x| distance(apply(&m, x)).map_or(cap2, |d| (d * d).min(cap2)))
                .sum();
            sum / active.len() as f64 + prior(q, problem.scale_limit)
        };
        let mut current = cost(&p);
        let mut lambda = 1e-3;
        for _ in 0..15 {
            let world = matrix(&p, problem.centre);
            let m = to_grid * world;
            // how each parameter moves a template point, in grid coordinates
            let dm: [Matrix4<f64>; 9] = std::array::from_fn(|k| {
                let mut q = p;
                q[k] += eps[k];
                to_grid * (matrix(&q, problem.centre) - world) / eps[k]
            });
            let mut jtj = nalgebra::SMatrix::<f64, 9, 9>::zeros();
            let mut jtr = nalgebra::SVector::<f64, 9>::zeros();
            for x in &active {
                let at = apply(&m, x);
                // the distance and its gradient per grid step, from the trilinear blend itself
                let Some((d, grad)) = problem
                    .surface
                    .sample_with_gradient(at)
                    .filter(|&(d, _)| d <= cap)
                else {
                    continue;
                };
                let xv = Vector4::new(x[0], x[1], x[2], 1.0);
                let j: nalgebra::SVector<f64, 9> = nalgebra::SVector::from_fn(|k, _| {
                    let dg = dm[k] * xv;
                    grad[0] * dg[0] + grad[1] * dg[1] + grad[2] * dg[2]
                });
                jtj += j * j.transpose();
                jtr += j * d;
            }
            let mut improved = false;
            for _ in 0..8 {
                let mut a = jtj;
                for k in 0..9 {
                    a[(k, k)] += lambda * jtj[(k, k)].max(1e-9);
                }
                let Some(step) = a.cholesky().map(|c| c.solve(&jtr)) else {
                    lambda *= 10.0;
                    continue;
                };
                let q: [f64; 9] = std::array::from_fn(|k| p[k] - step[k]);
                let c = cost(&q);
                if c < current {
                    improved = current - c > LM_TOLERANCE * (1.0 + c);
                    p = q;
                    current = c;
                    lambda = (lambda / 3.0).max(1e-7);
                    break;
                }
                lambda *= 4.0;
            }
            if !improved {
                break;
            }
        }
    }
    p
}

/// A Nelder–Mead simplex that can be run in instalments: running it to `n` evaluations and
/// then on to `m` walks exactly the same path as running it to `m` at once.
struct Simplex {
    vertices: Vec<([f64; 9], f64)>,
    evals: usize,
}

impl Simplex {
    /// The simplex at `x0` with initial steps `step`.
    fn new(f: &dyn Fn(&[f64; 9]) -> f64, x0: [f64; 9], step: [f64; 9]) -> Self {
        let mut vertices: Vec<([f64; 9], f64)> = Vec::with_capacity(10);
        vertices.push((x0, f(&x0)));
        for i in 0..9 {
            let mut x = x0;
            x[i] += step[i];
            vertices.push((x, f(&x)));
        }
        Simplex {
            vertices,
            evals: 10,
        }
    }

    /// Minimises until `max_evals` evaluations in all, or convergence.
    fn run(&mut self, f: &dyn Fn(&[f64; 9]) -> f64, max_evals: usize) {
        let simplex = &mut self.vertices;
        let lerp = |a: &[f64; 9], b: &[f64; 9], t: f64| -> [f64; 9] {
            std::array::from_fn(|i| a[i] + t * (b[i] - a[i]))
        };
        while self.evals < max_evals {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            if (simplex[9].1 - simplex[0].1).abs() < 1e-6 * (1.0 + simplex[0].1.abs()) {
                break;
            }
            let centroid: [f64; 9] =
                std::array::from_fn(|i| simplex[..9].iter().map(|s| s.0[i]).sum::<f64>() / 9.0);
            let worst = simplex[9];
            let refl = lerp(&centroid, &worst.0, -1.0);
            let fr = f(&refl);
            self.evals += 1;
            if fr < simplex[0].1 {
                let exp = lerp(&centroid, &worst.0, -2.0);
                let fe = f(&exp);
                self.evals += 1;
                simplex[9] = if fe < fr { (exp, fe) } else { (refl, fr) };
            } else if fr < simplex[8].1 {
                simplex[9] = (refl, fr);
            } else {
                let (c, fc) = if fr < worst.1 {
                    let c = lerp(&centroid, &refl, 0.5);
                    (c, f(&c))
                } else {
                    let c = lerp(&centroid, &worst.0, 0.5);
                    (c, f(&c))
                };
                self.evals += 1;
                if fc < worst.1.min(fr) {
                    simplex[9] = (c, fc);
                } else {
                    let best = simplex[0].0;
                    for s in simplex.iter_mut().skip(1) {
                        s.0 = lerp(&best, &s.0, 0.5);
                        s.1 = f(&s.0);
                    }
                    self.evals += 9;
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    }

    /// The best vertex and its cost.
    fn best(&self) -> ([f64; 9], f64) {
        self.vertices[0]
    }
}

/// Nelder–Mead minimisation from `x0` with initial steps `step`.
fn nelder_mead(
    f: &dyn Fn(&[f64; 9]) -> f64,
    x0: [f64; 9],
    step: [f64; 9],
    max_evals: usize,
) -> ([f64; 9], f64) {
    let mut simplex = Simplex::new(f, x0, step);
    simplex.run(f, max_evals);
    simplex.best()
}

/// A point at the top of the head, horizontally at the centre of its upper part: necks and
/// shoulders vary too much for the whole-head centroid to be a reliable anchor. `points` is
/// walked twice (the top, then the part below it) rather than collected: a head has a
/// million cells.
fn anchor<I: Iterator<Item = [f64; 3]>>(points: impl Fn() -> I) -> Option<[f64; 3]> {
    let top = points().map(|p| p[2]).fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let (mut sum, mut n) = ([0.0f64; 2], 0usize);
    for p in points().filter(|p| p[2] > top - 60.0) {
        sum[0] += p[0];
        sum[1] += p[1];
        n += 1;
    }
    let n = n as f64;
    Some([sum[0] / n, sum[1] / n, top])
}

/// [`anchor`] of a head on the working grid, reading only the slices it needs: a cell's height
/// is its slice's, so the top is the highest slice holding head, and the part below the top is
/// whole slices, walked in cell order as `anchor` walks every cell (the same sums).
fn head_anchor(mask: &Field<bool>, g: &WorkingGrid) -> Option<[f64; 3]> {
    let [nx, ny, nz] = mask.dims;
    let plane = nx * ny;
    let top_k = (0..nz)
        .rev()
        .find(|&k| mask.data[k * plane..(k + 1) * plane].contains(&true))?;
    let top = g.world(0, 0, top_k)[2];
    let first_k = (0..=top_k)
        .find(|&k| g.world(0, 0, k)[2] > top - 60.0)
        .unwrap_or(top_k);
    anchor(|| {
        (first_k * plane..(top_k + 1) * plane)
            .filter(|&c| mask.data[c])
            .map(|c| {
                let [i, j, k] = mask.coords(c);
                g.world(i, j, k)
            })
    })
}

/// Fits the template to the subject's head. `None` when there is no head surface.
///
/// A fit held at the smallest adult scale on two or more axes is a head smaller than the
/// template allows (a child's), or a bare brain: it is fitted again with the wider
/// `SMALL_HEAD_SCALE_LIMIT` (0.35) and says so ([`HeadFit::small_head`]); telling a child's
/// head from a bare brain is the caller's (a head has a skull). Adult heads never take this
/// path, so their fits are unchanged by it.
pub fn fit(template: &Template, head: &HeadMask, surface: &SubjectSurface) -> Option<HeadFit> {
    let adult = fit_within(template, head, surface, SCALE_LIMIT)?;
    if adult.axes_at_smallest_scale() < 2 {
        return Some(adult);
    }
    fit_within(template, head, surface, SMALL_HEAD_SCALE_LIMIT)
}

/// What every search of the template over the subject starts from: the template's fit
/// points (all, and the head's without the neck), their centre, the subject's skin distance,
/// and the translation that brings the template's anchor onto the subject's.
struct Start<'t> {
    all: &'t [[f64; 3]],
    head_points: Vec<[f64; 3]>,
    centre: [f64; 3],
    viewed: ViewedDistance,
    /// The template's anchor (see [`anchor`]).
    template_anchor: [f64; 3],
    t0: [f64; 3],
}

impl<'t> Start<'t> {
    fn new(template: &'t Template, head: &HeadMask, surface: &SubjectSurface) -> Option<Self> {
        let all = template
            .fit_points
            .get_or_init(|| template.points(label::FIT_SURFACE));
        if all.is_empty() {
            return None;
        }
        let head_points: Vec<[f64; 3]> = all.iter().copied().filter(|p| !in_neck(p)).collect();
        let n = all.len() as f64;
        let centre = [0, 1, 2].map(|a| all.iter().map(|p| p[a]).sum::<f64>() / n);
        let g = surface.grid;
        let viewed = ViewedDistance::new(surface);
        let subject_anchor = head_anchor(&head.mask, &g)?;
        let template_anchor = template
            .head_anchor
            .get_or_init(|| {
                anchor(|| {
                    template
                        .labels
                        .iter()
                        .enumerate()
                        .filter(|(_, &l)| l & label::HEAD != 0)
                        .map(|(c, _)| template.voxel_world(c))
                })
            })
            .as_ref()
            .copied()?;
        let t0 = [0, 1, 2].map(|a| subject_anchor[a] - template_anchor[a]);
        Some(Start {
            all,
            head_points,
            centre,
            viewed,
            template_anchor,
            t0,
        })
    }

    /// The upright start's translation for the head turned by `turn` (a map of the subject's
    /// world), from the world positions of (a sample of) the head's cells: the template's
    /// anchor onto the turned head's.
    fn turned_t0(&self, cells: &[[f64; 3]], turn: &Matrix4<f64>) -> Option<[f64; 3]> {
        let subject_anchor = anchor(|| {
            cells.iter().map(|&[x, y, z]| {
                let w = turn * Vector4::new(x, y, z, 1.0);
                [w[0], w[1], w[2]]
            })
        })?;
        Some([0, 1, 2].map(|a| subject_anchor[a] - self.template_anchor[a]))
    }

    /// The coarse search's problem: a sparse subsample of the head without the neck (prime
    /// strides spread it over the whole surface: the points are in grid order).
    fn coarse(&self, scale_limit: f64) -> Problem<'_> {
        Problem {
            surface: &self.viewed,
            to_grid: self.viewed.grid_from_world(),
            points: self.head_points.iter().step_by(37).copied().collect(),
            centre: self.centre,
            cap_mm: 15.0,
            scale_limit,
        }
    }
}

/// How well the template lies on the head turned by each of `turns` (rigid maps of the
/// subject's world, e.g. quarter turns about the centre of the field of view), from the
/// upright start alone: the coarse search's cost after one short simplex (mm²). A cheap
/// ranking of the orientations a head may be turned to, not a fit. The head is looked at
/// through each turn rather than resampled and found again in every orientation: one skin
/// surface serves them all. `None` where there is nothing to fit.
pub fn rough_costs(
    template: &Template,
    head: &HeadMask,
    surface: &SubjectSurface,
    turns: &[Matrix4<f64>],
) -> Vec<Option<f64>> {
    let Some(start) = Start::new(template, head, surface) else {
        return vec![None; turns.len()];
    };
    // every 5th of the head's cells: an anchor 60 mm deep has thousands of them, and the
    // search starts from it with steps of 8 mm
    let g = surface.grid;
    let cells: Vec<[f64; 3]> = (0..head.mask.data.len())
        .step_by(5)
        .filter(|&c| head.mask.data[c])
        .map(|c| {
            let [i, j, k] = head.mask.coords(c);
            g.world(i, j, k)
        })
        .collect();
    let step = [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 0.05, 0.05, 0.05];
    turns
        .par_iter()
        .map(|turn| {
            let back = turn.try_inverse()?;
            let t0 = start.turned_t0(&cells, turn)?;
            let coarse = Problem {
                to_grid: start.viewed.grid_from_world() * back,
                ..start.coarse(SCALE_LIMIT)
            };
            let (_, cost) = nelder_mead(
                &|p| coarse.cost(p),
                [t0[0], t0[1], t0[2], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                step,
                300,
            );
            Some(cost)
        })
        .collect()
}

fn fit_within(
    template: &Template,
    head: &HeadMask,
    surface: &SubjectSurface,
    scale_limit: f64,
) -> Option<HeadFit> {
    let start = Start::new(template, head, surface)?;
    let Start {
        all,
        ref head_points,
        centre,
        ref viewed,
        t0,
        ..
    } = start;

    // The search (coarse and fine) leaves the neck out: it picks the basin by the head alone.
    let coarse = start.coarse(scale_limit);
    let mut starts = Vec::new();
    for &rx in &[-20.0, 0.0, 20.0] {
        for &ry in &[-15.0, 0.0, 15.0] {
            for &rz in &[-20.0, 0.0, 20.0] {
                starts.push([t0[0], t0[1], t0[2], rx, ry, rz, 0.0, 0.0, 0.0]);
            }
        }
    }
    let step = [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 0.05, 0.05, 0.05];
    let mut results: Vec<(usize, [f64; 9], f64)> = starts
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let (x, c) = nelder_mead(&|p| coarse.cost(p), *s, step, 300);
            (i, x, c)
        })
        .collect();
    results.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));

    // The two best basins are refined by a simplex on a denser subsample (a restart lets a
    // collapsed simplex open up again), then by Levenberg–Marquardt on every other point (13k:
    // as precise as all of them, at half the cost) with a tighter cap, which reaches the
    // bottom of the cost where the simplex stalls. The simplex is not shortened: with 300
    // evaluations instead of 800 the template's landmarks moved by at most 1 mm, but the
    // removals of ch2 and its 20° oblique copies agreed less (Dice 0.971 → 0.968); with
    // 400 + 150, ch2 padded by a voxel agreed 0.964 with the original. Nor is it replaced by
    // Levenberg–Marquardt on the same points (ch2's 20° and 30° copies then agreed
    // 0.967–0.969). What it does not need is every 7th point of the head: on every 14th
    // (1.6k) the refinement takes a third less time, and the 20 obliquely resliced and padded
    // copies of ch2 and Philips agree with their originals as well (Dice 0.972–0.988, mean
    // 0.979; on every 7th, 0.968–0.992, mean 0.980).
    // Levenberg–Marquardt takes the neck as well: it stays in the basin the head chose, and the
    // neck steadies the pitch there (the neck left out here too, ch2's 20° copies agreed
    // 0.964–0.977 with the original; with it, 0.971–0.975).
    let fine = Problem {
        surface: viewed,
        to_grid: viewed.grid_from_world(),
        points: head_points.iter().step_by(14).copied().collect(),
        centre,
        cap_mm: 8.0,
        scale_limit,
    };
    let small = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.02, 0.02, 0.02];
    let precise = Problem {
        surface: viewed,
        to_grid: viewed.grid_from_world(),
        points: all.iter().step_by(2).copied().collect(),
        centre,
        cap_mm: 6.0,
        scale_limit,
    };
    let refined: Vec<(usize, [f64; 9], f64)> = results
        .iter()
        .take(2)
        .collect::<Vec<_>>()
        .par_iter()
        .map(|(i, x, _)| {
            let (x1, _) = nelder_mead(&|p| fine.cost(p), *x, small, 500);
            let (x2, _) = nelder_mead(&|p| fine.cost(p), x1, small, 300);
            let x3 = refine(&precise, x2, 3);
            (*i, x3, precise.cost(&x3))
        })
        .collect();
    let best = refined
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)))?
        .1;
    // judged on the head: a neck bent otherwise than the template's is no misfit
    let head = Problem {
        points: head_points.iter().step_by(2).copied().collect(),
        ..precise
    };
    let (mean, inl, fov) = head.quality(&best);
    Some(HeadFit {
        matrix: matrix(&best, centre),
        params: best,
        mean_distance_mm: mean,
        inlier_fraction: inl,
        in_fov_fraction: fov,
        scale_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A surface whose skin is a few scattered cells, seen everywhere but in one corner block.
    fn surface(dims: [usize; 3], spacing: f64, skin_cells: &[[usize; 3]]) -> SubjectSurface {
        let grid = WorkingGrid {
            dims,
            origin: [-10.0, 20.0, 5.0],
            spacing,
        };
        let mut skin = Field::filled(dims, false);
        for &[i, j, k] in skin_cells {
            let c = skin.idx(i, j, k);
            skin.data[c] = true;
        }
        let reach_mm = QUALITY_CAP_MM + spacing * 3f64.sqrt();
        let in_fov = Field::from_cells(dims, |c| {
            let [i, j, k] = skin.coords(c);
            !(i < 4 && j < 4 && k < 4)
        });
        SubjectSurface {
            grid,
            distance_sq: distance_sq_within(&skin, spacing, reach_mm),
            reach_mm,
            in_fov,
            cuts: Vec::new(),
        }
    }

    /// The coded field reads what the plain field of distances reads, to the bit, wherever
    /// the fit can tell the values apart (below its largest cap), and past every cap elsewhere.
    #[test]
    fn coded_distance_reads_as_the_plain_field() {
        for (spacing, coded) in [(2.0, true), (1.5, true), (2.0833333, false), (1.7, false)] {
            reads_as_the_plain_field(spacing, coded);
        }
    }

    fn reads_as_the_plain_field(spacing: f64, coded: bool) {
        let s = surface(
            [23, 19, 17],
            spacing,
            &[[5, 5, 5], [17, 12, 3], [11, 2, 14], [20, 18, 16]],
        );
        let plain: Vec<f32> = s.distance_sq.data.iter().map(|d| d.sqrt()).collect();
        let field = ViewedDistance::new(&s);
        assert_eq!(
            matches!(field.cells, Cells::Coded { .. }),
            coded,
            "{spacing}"
        );
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut exact, mut capped) = (0, 0);
        for _ in 0..20_000 {
            let at = [
                next() * 24.0 - 0.5,
                next() * 20.0 - 0.5,
                next() * 18.0 - 0.5,
            ];
            let reference = trilinear_with(s.grid.dims, at, |k| plain[k] as f64).map(|d| d as f32);
            match (reference, field.distance(at)) {
                (None, None) => {}
                (Some(r), Some(c)) if (r as f64) < QUALITY_CAP_MM => {
                    assert_eq!(r.to_bits(), c.to_bits(), "{at:?}");
                    exact += 1;
                }
                (Some(r), Some(c)) => {
                    assert!(c as f64 >= QUALITY_CAP_MM, "{at:?}: {r} read as {c}");
                    capped += 1;
                }
                (r, c) => panic!("{at:?}: {r:?} read as {c:?}"),
            }
            let seen = s.grid.nearest_to_grid(at).is_some_and(|c| s.in_fov.data[c]);
            assert_eq!(field.seen(at), seen, "{at:?}");
        }
        assert!(
            exact > 5000 && capped > 100,
            "{exact} exact, {capped} capped"
        );
    }

    /// On the finest working grid the distinct distances within reach still fit the codes.
    #[test]
    fn the_finest_grid_has_room_for_every_distance() {
        let s = surface([60, 60, 60], crate::MIN_WORKING_MM, &[[0, 0, 0]]);
        let Cells::Coded { levels, .. } = ViewedDistance::new(&s).cells else {
            panic!("a 0.5 mm grid's distances are exact");
        };
        // every sum of three squares up to (reach / spacing)² is on this grid
        assert!(levels.len() > 1400, "{} levels", levels.len());
        assert!(levels.len() < UNSEEN as usize);
    }
}
