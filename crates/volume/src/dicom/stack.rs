//! Stacking 2-D frames into a 3-D (or 4-D) grid with one voxel→world affine.
//!
//! Voxel `i` runs along a frame's rows (the ImageOrientationPatient row direction), `j` down its
//! columns, `k` through the frames sorted along the slice normal (row × column direction), as in
//! dcm2niix and nibabel. The affine is built in DICOM's LPS and flipped to RAS+. Frames that
//! share a position (echoes, phases, time points) become volumes `t` of a 4-D grid.
//!
//! An affine is exact only when the slice positions are evenly spaced on one line. That line
//! need not follow the slice normal: a CT acquired with a tilted gantry gives a sheared affine
//! (the third column is the real step between slice origins), which is exact. Uneven spacing on
//! one line (with or without tilt: slabs of different thickness, a missing slice) cannot be
//! represented by any affine, and resampling would change every voxel, which defacing must not
//! do. Such a stack keeps its slices: the affine places them at the average pitch, and
//! [`SlicePositions`] records where each one really is along that line. Origins off one line
//! are refused.

use std::path::Path;

use nalgebra::{Matrix4, Vector3};

use super::instance::FrameInfo;
use crate::{Affine, Error, Result, SlicePositions};

/// A frame to place: the file it is in and its geometry.
pub(crate) struct Placed<'a> {
    pub path: &'a Path,
    pub frame: &'a FrameInfo,
}

/// Groups frames (sorted along the normal) that share a position, and orders each group in time
/// (echo, temporal position, acquisition, instance number, then file order). Refuses positions
/// with different numbers of frames: that is not one 3-D or 4-D grid.
fn group_by_position(
    frames: &[Placed],
    sorted: &[usize],
    positions: &[Vector3<f64>],
) -> Result<Vec<Vec<usize>>> {
    let mut grid: Vec<Vec<usize>> = Vec::new();
    for &f in sorted {
        match grid.last_mut() {
            Some(at) if (positions[f] - positions[at[0]]).norm() < POSITION_TOLERANCE_MM => {
                at.push(f)
            }
            _ => grid.push(vec![f]),
        }
    }
    for at in grid.iter_mut() {
        at.sort_by(|&a, &b| {
            let (ka, kb) = (frames[a].frame.time_key, frames[b].frame.time_key);
            ka.iter()
                .zip(kb.iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    let nt = grid[0].len();
    if let Some(odd) = grid.iter().find(|at| at.len() != nt) {
        return Err(Error::unsupported(
            frames[odd[0]].path,
            format!(
                "mixed geometry in one series: {} images at this position but {nt} at the \
                 position of {} (duplicate or missing images?)",
                odd.len(),
                frames[grid[0][0]].path.display()
            ),
        ));
    }
    Ok(grid)
}

/// Where each frame goes and the resulting affine.
#[derive(Debug)]
pub(crate) struct Stack {
    /// `grid[k][t]`: the frame (index into the input) of slice `k` in volume `t`. Every slice has
    /// the same number of volumes (echoes, phases or time points).
    pub grid: Vec<Vec<usize>>,
    pub affine: Affine,
    /// Where each slice lies along the affine's `k` axis when the spacing is uneven.
    pub slice_positions: Option<SlicePositions>,
    /// Angle between the slice normal and the direction in which slices follow each other, in
    /// degrees: non-zero for gantry-tilted CT.
    pub tilt_degrees: f64,
}

/// Orientation cosines may differ by rounding in the file's decimal strings.
const ORIENTATION_TOLERANCE: f64 = 1e-4;
/// Relative tolerance on pixel spacing equality.
const SPACING_TOLERANCE: f64 = 1e-4;
/// How far (mm) a slice origin may lie from the affine's prediction. Positions are written with
/// limited decimals; this is far below any voxel size yet above that rounding.
const POSITION_TOLERANCE_MM: f64 = 0.01;

fn v3(a: &[f64]) -> Vector3<f64> {
    Vector3::new(a[0], a[1], a[2])
}

struct Geometry {
    row: Vector3<f64>,
    col: Vector3<f64>,
    spacing: [f64; 2],
}

fn geometry_of(p: &Placed) -> Result<(Geometry, Vector3<f64>)> {
    let f = p.frame;
    let ori = f.orientation.ok_or_else(|| {
        Error::invalid(
            p.path,
            "missing ImageOrientationPatient: cannot place the image in space",
        )
    })?;
    let pos = f.position.ok_or_else(|| {
        Error::invalid(
            p.path,
            "missing ImagePositionPatient: cannot place the image in space",
        )
    })?;
    let spacing = f
        .spacing
        .ok_or_else(|| Error::invalid(p.path, "missing PixelSpacing: voxel size unknown"))?;
    if spacing.iter().any(|s| s.is_nan() || *s <= 0.0) {
        return Err(Error::invalid(
            p.path,
            format!("invalid PixelSpacing {spacing:?}"),
        ));
    }
    let row = v3(&ori[0..3]);
    let col = v3(&ori[3..6]);
    if (row.norm() - 1.0).abs() > 1e-2
        || (col.norm() - 1.0).abs() > 1e-2
        || row.dot(&col).abs() > 1e-2
    {
        return Err(Error::invalid(
            p.path,
            format!("ImageOrientationPatient {ori:?} is not two orthogonal unit vectors"),
        ));
    }
    Ok((
        Geometry {
            row: row.normalize(),
            col: col.normalize(),
            spacing,
        },
        v3(&pos),
    ))
}

fn max_abs_diff(a: &Vector3<f64>, b: &Vector3<f64>) -> f64 {
    (a - b).amax()
}

/// Sorts the frames of one series along the slice normal and computes the affine, refusing what
/// one affine cannot describe exactly.
pub(crate) fn stack(frames: &[Placed]) -> Result<Stack> {
    let Some(first) = frames.first() else {
        return Err(Error::invalid(Path::new(""), "series without frames"));
    };
    let (g0, _) = geometry_of(first)?;
    let mut positions = Vec::with_capacity(frames.len());
    for p in frames {
        let (g, pos) = geometry_of(p)?;
        if max_abs_diff(&g.row, &g0.row) > ORIENTATION_TOLERANCE
            || max_abs_diff(&g.col, &g0.col) > ORIENTATION_TOLERANCE
        {
            return Err(Error::invalid(
                p.path,
                format!(
                    "mixed geometry in one series: ImageOrientationPatient differs from {}",
                    first.path.display()
                ),
            ));
        }
        let same_spacing = (0..2)
            .all(|a| (g.spacing[a] - g0.spacing[a]).abs() <= SPACING_TOLERANCE * g0.spacing[a]);
        if !same_spacing {
            return Err(Error::invalid(
                p.path,
                format!(
                    "mixed geometry in one series: PixelSpacing {:?} differs from {:?} in {}",
                    g.spacing,
                    g0.spacing,
                    first.path.display()
                ),
            ));
        }
        positions.push(pos);
    }
    let normal = g0.row.cross(&g0.col);
    let mut sorted: Vec<usize> = (0..frames.len()).collect();
    // Stable sort: frames at one position keep discovery order until sorted in time below.
    sorted.sort_by(|&a, &b| {
        normal
            .dot(&positions[a])
            .total_cmp(&normal.dot(&positions[b]))
    });
    let grid = group_by_position(frames, &sorted, &positions)?;
    let order: Vec<usize> = grid.iter().map(|at| at[0]).collect();

    let n = order.len();
    let p0 = positions[order[0]];
    let step = if n == 1 {
        let t = first.frame.thickness.filter(|t| *t > 0.0).unwrap_or(1.0);
        normal * t
    } else {
        (positions[order[n - 1]] - p0) / (n - 1) as f64
    };
    let tilt_degrees = if n == 1 {
        0.0
    } else {
        normal
            .dot(&step.normalize())
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    };
    let slice_positions = check_on_affine_line(frames, &order, &positions, step)?;

    let [row_spacing, col_spacing] = g0.spacing;
    let i_axis = g0.row * col_spacing;
    let j_axis = g0.col * row_spacing;
    let mut m = Matrix4::identity();
    for r in 0..3 {
        // LPS → RAS: x and y change sign.
        let s = if r < 2 { -1.0 } else { 1.0 };
        m[(r, 0)] = s * i_axis[r];
        m[(r, 1)] = s * j_axis[r];
        m[(r, 2)] = s * step[r];
        m[(r, 3)] = s * p0[r];
    }
    let affine = Affine(m);
    affine
        .validate()
        .map_err(|e| Error::invalid(first.path, e))?;
    Ok(Stack {
        grid,
        affine,
        slice_positions,
        tilt_degrees,
    })
}

/// Checks that the slice origins lie on the line `p0 + t·step`, refusing them otherwise, and
/// returns where each lies along it (in steps) when they are not at `p0 + k·step`.
fn check_on_affine_line(
    frames: &[Placed],
    order: &[usize],
    positions: &[Vector3<f64>],
    step: Vector3<f64>,
) -> Result<Option<SlicePositions>> {
    let p0 = positions[order[0]];
    let pitch = step.norm();
    if pitch == 0.0 {
        return Ok(None);
    }
    let dir = step / pitch;
    let mut off_grid = false;
    let mut off_line: Option<(usize, f64)> = None;
    for (k, &idx) in order.iter().enumerate() {
        off_grid |= (positions[idx] - (p0 + step * k as f64)).norm() > POSITION_TOLERANCE_MM;
        let rel = positions[idx] - p0;
        let perp = (rel - dir * rel.dot(&dir)).norm();
        if perp > POSITION_TOLERANCE_MM && off_line.is_none_or(|(_, e)| perp > e) {
            off_line = Some((idx, perp));
        }
    }
    if let Some((idx, perp)) = off_line {
        return Err(Error::invalid(
            frames[idx].path,
            format!(
                "mixed geometry in one series: slice origins do not lie on one line ({perp:.3} mm off)"
            ),
        ));
    }
    if !off_grid {
        return Ok(None);
    }
    let nominal: Vec<f64> = order
        .iter()
        .map(|&idx| (positions[idx] - p0).dot(&dir) / pitch)
        .collect();
    // Sorted along the normal and grouped by position, so this holds unless the line runs
    // within the slice plane; say so rather than build a folded volume.
    SlicePositions::new(nominal).map(Some).ok_or_else(|| {
        Error::invalid(
            frames[order[0]].path,
            "mixed geometry in one series: slices do not follow each other along one direction",
        )
    })
}
