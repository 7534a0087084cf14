//! The region that must never change: the brain, as the fitted template places it (and, where
//! bone is visible, everything the skull encloses), grown by a safety margin in millimetres.

use crate::distance::{distance_sq, distance_sq_within};
use crate::grid::{Field, WorkingGrid};
use rayon::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct ProtectedBrain {
    /// The brain itself (template brain ∪ intracranial space when known).
    pub brain: Field<bool>,
    /// Distance (mm) from each working cell to the brain, exact up to [`Self::exact_within_mm`]
    /// and larger than that beyond it (see [`Self::distance_to`]).
    pub distance_mm: Field<f32>,
    /// How far [`Self::distance_mm`] is exact.
    pub exact_within_mm: f64,
    /// Cells within the margin of the brain: nothing here may change.
    pub protected: Field<bool>,
    pub margin_mm: f64,
    spacing: f64,
}

/// Half the diagonal of a working cell `spacing` mm wide.
fn half_cell_diagonal(spacing: f64) -> f64 {
    spacing * 3f64.sqrt() / 2.0
}

impl ProtectedBrain {
    pub fn new(
        template_brain: &Field<bool>,
        intracranial: Option<&Field<bool>>,
        margin_mm: f64,
        spacing: f64,
    ) -> Self {
        let brain = match intracranial {
            Some(ic) => template_brain.zip(ic, |a, b| a || b),
            None => template_brain.clone(),
        };
        // The native grid looks up the nearest working cell, up to half a cell diagonal away
        // from the voxel: widen by that so the margin holds at native resolution.
        let reach = margin_mm + half_cell_diagonal(spacing);
        // Beyond the protected region the distance is only reported (the removal's closest
        // approach, usually a cell or two past the margin): the exact transform of the whole
        // grid is not needed, only a band; a farther removal is measured exactly on demand.
        let exact_within_mm = reach + EXACT_BAND_MM;
        let distance_mm = distance_sq_within(&brain, spacing, exact_within_mm).map(|d| d.sqrt());
        let protected = distance_mm.map(|d| d <= reach as f32);
        ProtectedBrain {
            brain,
            distance_mm,
            exact_within_mm,
            protected,
            margin_mm,
            spacing,
        }
    }

    /// Half a working cell's diagonal: how far a point of the brain may lie from the centre of
    /// its cell, and a native voxel from the centre of its nearest cell.
    pub fn half_diagonal(&self) -> f64 {
        half_cell_diagonal(self.spacing)
    }

    /// Whether a native voxel whose nearest cell is `near` may lie within the margin of a point
    /// of the brain although `near` is outside the protected region: the cell is within two
    /// half diagonals of it. Only those voxels need [`Self::distance_among`].
    ///
    /// The protected cells alone (the margin plus half a diagonal from the cells' centres) keep
    /// the margin from the centres. A point of the brain as the grid resolves it (a temporal
    /// pole's tip at the skull) lies up to half a diagonal from its cell's centre, so these
    /// voxels are measured to the brain's cubes themselves.
    pub fn near_margin(&self, near: usize) -> bool {
        self.distance_mm.data[near] as f64 <= self.margin_mm + 2.0 * self.half_diagonal()
    }

    /// Whether a native voxel whose nearest cell is the protected cell `c` may lie beyond the
    /// margin from every cube of the brain. A voxel lies in its nearest cell's cube, at `v`
    /// from the centre; its distance to a cube of the brain whose centre is `d` from the cell's
    /// is that of the cell's centre to the same cube moved by `-v`, which still holds the brain
    /// cube's centre: at most `d`.
    pub fn may_clear_margin(&self, c: usize) -> bool {
        self.distance_mm.data[c] as f64 > self.margin_mm
    }

    /// For each cell accepted by `open` that is [`Self::near_margin`], the cells of the brain's
    /// surface (brain cells with a face on a non-brain cell or the grid's edge) that a voxel of
    /// it could lie within the margin (and a half diagonal) of: centres within the margin and
    /// three half diagonals.
    /// The cube of the brain nearest to a point outside it is one of these: the nearest point
    /// lies on the surface, and of the cubes holding it one faces a non-brain cube.
    pub fn surface_near(
        &self,
        grid: &WorkingGrid,
        open: impl Fn(usize) -> bool + Sync,
    ) -> HashMap<usize, Vec<([f64; 3], f64)>> {
        let b = &self.brain;
        let [nx, ny, nz] = b.dims;
        let surface = |c: usize| {
            if !b.data[c] {
                return false;
            }
            let [i, j, k] = b.coords(c);
            i == 0
                || j == 0
                || k == 0
                || i + 1 == nx
                || j + 1 == ny
                || k + 1 == nz
                || !b.data[c - 1]
                || !b.data[c + 1]
                || !b.data[c - nx]
                || !b.data[c + nx]
                || !b.data[c - nx * ny]
                || !b.data[c + nx * ny]
        };
        // a voxel is within half a diagonal of its cell's centre, and a cube within the
        // margin and a half diagonal of the voxel has its centre within another
        let reach = self.margin_mm + 3.0 * self.half_diagonal();
        let r = (reach / self.spacing).ceil() as usize;
        // the surface's centres in blocks of BLOCK³ cells, so each open cell looks at the few
        // blocks around it
        const BLOCK: usize = 4;
        let blocks_along = [nx, ny, nz].map(|n| n.div_ceil(BLOCK));
        let block_of = |[i, j, k]: [usize; 3]| {
            i / BLOCK + blocks_along[0] * (j / BLOCK + blocks_along[1] * (k / BLOCK))
        };
        let mut blocks: Vec<Vec<[f64; 3]>> =
            vec![Vec::new(); blocks_along.iter().product::<usize>()];
        let on_surface: Vec<usize> = (0..b.data.len())
            .into_par_iter()
            .filter(|&c| surface(c))
            .collect();
        for c in on_surface {
            let [i, j, k] = b.coords(c);
            blocks[block_of([i, j, k])].push(grid.world(i, j, k));
        }
        (0..b.data.len())
            .into_par_iter()
            .filter(|&c| open(c) && self.near_margin(c))
            .map(|c| {
                let ijk = b.coords(c);
                let at = grid.world(ijk[0], ijk[1], ijk[2]);
                let lo = [0, 1, 2].map(|a| ijk[a].saturating_sub(r) / BLOCK);
                let hi = [0, 1, 2].map(|a| (ijk[a] + r).min(b.dims[a] - 1) / BLOCK);
                let mut near: Vec<[f64; 3]> = Vec::new();
                for z in lo[2]..=hi[2] {
                    for y in lo[1]..=hi[1] {
                        for x in lo[0]..=hi[0] {
                            let block = &blocks[block_of([x, y, z].map(|v| v * BLOCK))];
                            near.extend(block.iter().filter(|q| {
                                (0..3).map(|a| (q[a] - at[a]).powi(2)).sum::<f64>() <= reach * reach
                            }));
                        }
                    }
                }
                // nearest first: [`Self::distance_among`] stops where no farther one can be nearer
                let mut near: Vec<([f64; 3], f64)> = near
                    .into_iter()
                    .map(|q| {
                        (
                            q,
                            (0..3).map(|a| (q[a] - at[a]).powi(2)).sum::<f64>().sqrt(),
                        )
                    })
                    .collect();
                near.sort_by(|p, q| p.1.total_cmp(&q.1));
                (c, near)
            })
            .collect()
    }

    /// The distance (mm) from the world point `w` (a native voxel centre) to the nearest cube of
    /// the brain, given `surface` from [`Self::surface_near`] for the cell nearest to `w`:
    /// exact from the margin up to the margin and a half diagonal (every cube that near is
    /// among them), and that much beyond it. Within the margin it is the distance to the first
    /// cube found that near: the voxel keeps its cell's brain either way, and the search stops.
    pub fn distance_among(&self, w: [f64; 3], surface: &[([f64; 3], f64)]) -> f64 {
        let half = self.spacing / 2.0;
        // `w` lies within half a diagonal of the cell the list is for, and a cube within half a
        // diagonal of its centre: past two half diagonals beyond the best, nothing is nearer
        let slack = 2.0 * self.half_diagonal();
        let mut best = self.margin_mm + self.half_diagonal();
        let mut best_sq = best * best;
        let margin_sq = self.margin_mm * self.margin_mm;
        for (c, from_cell) in surface {
            if from_cell - slack >= best {
                break;
            }
            let d_sq = (0..3)
                .map(|a| ((w[a] - c[a]).abs() - half).max(0.0).powi(2))
                .sum::<f64>();
            if d_sq < best_sq {
                best_sq = d_sq;
                best = d_sq.sqrt();
                if d_sq <= margin_sq {
                    break;
                }
            }
        }
        best
    }

    /// The smallest distance (mm) from the brain to any of `cells`, exact (`None` without
    /// cells).
    pub fn distance_to(&self, cells: impl Iterator<Item = usize> + Clone) -> Option<f64> {
        let nearest = |d: &Field<f32>| {
            cells
                .clone()
                .map(|c| d.data[c] as f64)
                .min_by(|a, b| a.total_cmp(b))
        };
        let d = nearest(&self.distance_mm)?;
        if d <= self.exact_within_mm {
            return Some(d);
        }
        nearest(&distance_sq(&self.brain, self.spacing).map(|d| d.sqrt()))
    }
}

/// How far (mm) beyond the protected region [`ProtectedBrain::distance_mm`] is exact.
const EXACT_BAND_MM: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Distance from `w` to the cube of side `s` centred on `c`: the part of the brain a cell
    /// stands for.
    fn to_cube(w: [f64; 3], c: [f64; 3], s: f64) -> f64 {
        (0..3)
            .map(|a| ((w[a] - c[a]).abs() - s / 2.0).max(0.0).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// A brain of balls (grid cell, radius in cells) on a 20³ grid of 2 mm cells, its cells'
    /// centres, and its protected region with a 5 mm margin.
    fn balls(
        spheres: &[([usize; 3], usize)],
        origin: [f64; 3],
    ) -> (WorkingGrid, ProtectedBrain, Vec<[f64; 3]>) {
        let grid = WorkingGrid {
            dims: [20, 20, 20],
            origin,
            spacing: 2.0,
        };
        let brain = Field::from_cells(grid.dims, |c| {
            let p = [c % 20, (c / 20) % 20, c / 400];
            spheres.iter().any(|&(centre, r)| {
                let d2: f64 = centre
                    .into_iter()
                    .zip(p)
                    .map(|(a, b)| (a as f64 - b as f64).powi(2))
                    .sum();
                d2 <= (r * r) as f64
            })
        });
        let cells = (0..brain.data.len())
            .filter(|&c| brain.data[c])
            .map(|c| {
                let [i, j, k] = brain.coords(c);
                grid.world(i, j, k)
            })
            .collect();
        (
            grid,
            ProtectedBrain::new(&brain, None, 5.0, grid.spacing),
            cells,
        )
    }

    /// What becomes of a native voxel at `w`: whether it lies within the margin of a point of
    /// the brain, and whether it is let go although its cell is near the margin or protected.
    /// An error where a voxel let go is within the margin, a protected cell that is not
    /// measured ([`ProtectedBrain::may_clear_margin`]) holds a voxel beyond it, or the distance
    /// measured is not the true one (beyond the margin, up to the margin and a half diagonal).
    fn outcome(
        grid: &WorkingGrid,
        brain: &ProtectedBrain,
        surface: &HashMap<usize, Vec<([f64; 3], f64)>>,
        cells: &[[f64; 3]],
        w: [f64; 3],
    ) -> Result<Option<(bool, bool)>, String> {
        let Some(near) = grid.nearest(w) else {
            return Ok(None);
        };
        let truth = cells
            .iter()
            .map(|&c| to_cube(w, c, grid.spacing))
            .fold(f64::INFINITY, f64::min);
        let within = truth <= brain.margin_mm;
        if brain.protected.data[near] && !brain.may_clear_margin(near) {
            return if within {
                Ok(Some((true, false)))
            } else {
                Err(format!(
                    "{w:?}: {truth} mm, in a protected cell not measured"
                ))
            };
        }
        if !brain.near_margin(near) {
            return if within {
                Err(format!("{w:?}: {truth} mm, its cell outside the band"))
            } else {
                Ok(Some((false, false)))
            };
        }
        let Some(near_surface) = surface.get(&near) else {
            return Err(format!("{w:?}: no surface listed for its cell"));
        };
        let d = brain.distance_among(w, near_surface);
        let exact_to = brain.margin_mm + brain.half_diagonal();
        let measured_right = if within {
            // within the margin the first cube that near ends the search
            d <= brain.margin_mm && d >= truth - 1e-9
        } else {
            d <= truth + 1e-9 && (truth > exact_to || d >= truth - 1e-9)
        };
        if !measured_right {
            return Err(format!("{w:?}: measured {d} mm, {truth} mm"));
        }
        Ok(Some((within, d > brain.margin_mm)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The distance measured to the brain's cubes is the true one (brute force over every
        /// brain cell) from the margin up to the margin and a half diagonal, so a voxel let go
        /// keeps the margin from every point of the brain; a voxel whose cell is beyond the band
        /// keeps it without looking, and one of a protected cell not measured is within it.
        #[test]
        fn voxels_let_go_keep_the_margin_from_every_point_of_the_brain(
            spheres in prop::collection::vec(([4usize..16, 4usize..16, 4usize..16], 1usize..4), 1..4),
            offset in [0.0f64..2.0, 0.0f64..2.0, 0.0f64..2.0],
            points in prop::collection::vec([0.0f64..38.0, 0.0f64..38.0, 0.0f64..38.0], 3000),
        ) {
            let (grid, brain, cells) = balls(&spheres, offset);
            let surface = brain.surface_near(&grid, |_| true);
            for p in points {
                let w = [0, 1, 2].map(|a| grid.origin[a] + p[a]);
                if let Err(e) = outcome(&grid, &brain, &surface, &cells, w) {
                    prop_assert!(false, "{}", e);
                }
            }
        }
    }

    /// No point of a protected cell's cube that [`ProtectedBrain::may_clear_margin`] leaves
    /// unmeasured lies beyond the margin from the brain's cubes (a lattice of 5³ points over
    /// each cube, its faces and corners included), and some of those it measures do.
    #[test]
    fn protected_cells_left_unmeasured_hold_no_voxel_beyond_the_margin() {
        let (grid, brain, cells) = balls(&[([10, 10, 10], 3), ([5, 6, 12], 1)], [0.3, 0.7, 1.1]);
        let truth = |w: [f64; 3]| {
            cells
                .iter()
                .map(|&c| to_cube(w, c, grid.spacing))
                .fold(f64::INFINITY, f64::min)
        };
        let mut beyond_in_measured = 0;
        for c in (0..brain.protected.data.len()).filter(|&c| brain.protected.data[c]) {
            let [i, j, k] = brain.protected.coords(c);
            let centre = grid.world(i, j, k);
            let farthest = (0..125)
                .map(|n| {
                    let step = |m: usize| (m as f64 / 4.0 - 0.5) * grid.spacing;
                    let v = [step(n % 5), step((n / 5) % 5), step(n / 25)];
                    truth([0, 1, 2].map(|a| centre[a] + v[a]))
                })
                .fold(0.0, f64::max);
            if brain.may_clear_margin(c) {
                beyond_in_measured += (farthest > brain.margin_mm) as usize;
            } else {
                assert!(farthest <= brain.margin_mm + 1e-9, "{c}: {farthest} mm");
            }
        }
        assert!(beyond_in_measured > 0);
    }

    /// The cell rule alone is not enough (voxels behind cells outside the protected region lie
    /// within the margin of the brain's cubes), and measuring does not keep every voxel near
    /// the margin: on a lattice of points 0.5 mm apart around one ball.
    #[test]
    fn measuring_is_needed_and_lets_voxels_near_the_margin_go() {
        let (grid, brain, cells) = balls(&[([10, 10, 10], 3)], [0.3, 0.7, 1.1]);
        let surface = brain.surface_near(&grid, |_| true);
        let (mut within, mut let_go) = (0, 0);
        for n in 0..76usize.pow(3) {
            let p = [n % 76, (n / 76) % 76, n / (76 * 76)].map(|x| 0.5 * x as f64);
            let w = [0, 1, 2].map(|a| grid.origin[a] + p[a]);
            match outcome(&grid, &brain, &surface, &cells, w) {
                Err(e) => panic!("{e}"),
                Ok(Some((a, b))) => {
                    within += a as usize;
                    let_go += b as usize;
                }
                Ok(None) => {}
            }
        }
        eprintln!("{within} points within the margin behind open cells, {let_go} let go near it");
        assert!(within > 0 && let_go > 0, "{within} {let_go}");
    }
}
