//! The region that must never change: the brain, as the fitted template places it (and, where
//! bone is visible, everything the skull encloses), grown by a safety margin in millimetres.

use crate::distance::{distance_sq, distance_sq_within};
use crate::grid::{Corners, Field, WorkingGrid};

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
        let reach = margin_mm + spacing * 3f64.sqrt() / 2.0;
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
        self.spacing * 3f64.sqrt() / 2.0
    }

    /// Whether a native voxel whose nearest cell is `near` may lie within the margin of a point
    /// of the brain although `near` is outside the protected region: the cell is within two
    /// half diagonals of it. Only those voxels need [`Self::voxel_distance`].
    pub fn near_margin(&self, near: usize) -> bool {
        self.distance_mm.data[near] as f64 <= self.margin_mm + 2.0 * self.half_diagonal()
    }

    /// A lower bound (mm) on the distance from the world point `w` (a native voxel centre) to
    /// any point of the brain's cells. The distance from `w` to the cells' centres is at least
    /// that of each of the eight cells around it less the way to that cell (a distance changes
    /// no faster than the step), so the best of the eight holds; `near`, the nearest cell, where
    /// they are not all on the grid. Then less half a diagonal for the point within its cell.
    ///
    /// The protected cells alone (the margin plus half a diagonal from the cells' centres) keep
    /// the margin from the centres; this keeps it from every point of the brain as the grid
    /// resolves it (a temporal pole's tip at the skull) without widening the region by a whole
    /// diagonal everywhere.
    pub fn voxel_distance(&self, grid: &WorkingGrid, w: [f64; 3], near: usize) -> f64 {
        // beyond the exact band the field only says "farther": its values are not bounds
        let at = |c: usize| (self.distance_mm.data[c] as f64).min(self.exact_within_mm);
        let way = |c: usize| {
            let [i, j, k] = self.distance_mm.coords(c);
            let q = grid.world(i, j, k);
            ((w[0] - q[0]).powi(2) + (w[1] - q[1]).powi(2) + (w[2] - q[2]).powi(2)).sqrt()
        };
        let g = [0, 1, 2].map(|a| (w[a] - grid.origin[a]) / grid.spacing);
        let centres = match Corners::around(grid.dims, g) {
            Some(corners) => {
                let o = corners.base;
                let [sx, sy, sz] = corners.step;
                [0, sx, sy, sx + sy, sz, sz + sx, sz + sy, sz + sy + sx]
                    .into_iter()
                    .map(|d| at(o + d) - way(o + d))
                    .fold(f64::NEG_INFINITY, f64::max)
            }
            None => at(near) - way(near),
        };
        centres - self.half_diagonal()
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

    /// What becomes of a native voxel at `w` whose nearest cell is outside the protected
    /// region: whether it lies within the margin of a point of the brain, and whether
    /// `voxel_distance` lets it go although its cell is near the margin. An error where a voxel
    /// let go is within the margin, or the bound exceeds the true distance.
    fn outcome(
        grid: &WorkingGrid,
        brain: &ProtectedBrain,
        cells: &[[f64; 3]],
        w: [f64; 3],
    ) -> Result<Option<(bool, bool)>, String> {
        let Some(near) = grid.nearest(w).filter(|&c| !brain.protected.data[c]) else {
            return Ok(None);
        };
        let truth = cells
            .iter()
            .map(|&c| to_cube(w, c, grid.spacing))
            .fold(f64::INFINITY, f64::min);
        let within = truth <= brain.margin_mm;
        if !brain.near_margin(near) {
            return if within {
                Err(format!("{w:?}: {truth} mm, its cell outside the band"))
            } else {
                Ok(Some((false, false)))
            };
        }
        let bound = brain.voxel_distance(grid, w, near);
        if bound > truth + 1e-9 {
            return Err(format!("{w:?}: bound {bound} > {truth} mm"));
        }
        Ok(Some((within, bound > brain.margin_mm)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// `voxel_distance` is a lower bound of the distance to every brain cell's cube, so a
        /// voxel it lets go keeps the margin from every point of the brain; and a voxel whose
        /// cell is beyond the band keeps it without looking.
        #[test]
        fn voxels_let_go_keep_the_margin_from_every_point_of_the_brain(
            spheres in prop::collection::vec(([4usize..16, 4usize..16, 4usize..16], 1usize..4), 1..4),
            offset in [0.0f64..2.0, 0.0f64..2.0, 0.0f64..2.0],
            points in prop::collection::vec([0.0f64..38.0, 0.0f64..38.0, 0.0f64..38.0], 3000),
        ) {
            let (grid, brain, cells) = balls(&spheres, offset);
            for p in points {
                let w = [0, 1, 2].map(|a| grid.origin[a] + p[a]);
                if let Err(e) = outcome(&grid, &brain, &cells, w) {
                    prop_assert!(false, "{}", e);
                }
            }
        }
    }

    /// The cell rule alone is not enough (voxels behind cells outside the protected region lie
    /// within the margin of the brain's cubes), and the bound does not keep every voxel near
    /// the margin: on a lattice of points 0.5 mm apart around one ball.
    #[test]
    fn the_bound_is_needed_and_lets_voxels_near_the_margin_go() {
        let (grid, brain, cells) = balls(&[([10, 10, 10], 3)], [0.3, 0.7, 1.1]);
        let (mut within, mut let_go) = (0, 0);
        for n in 0..76usize.pow(3) {
            let p = [n % 76, (n / 76) % 76, n / (76 * 76)].map(|x| 0.5 * x as f64);
            let w = [0, 1, 2].map(|a| grid.origin[a] + p[a]);
            match outcome(&grid, &brain, &cells, w) {
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
