//! Ray casting the skin surface of a world grid from viewpoints around the face.

use defacer_volume::Volume;
use image::GrayImage;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::skin_level::skin_level;
use crate::world_grid::WorldGrid;

/// A viewpoint on a sphere around the head, in degrees.
///
/// Yaw 0, pitch 0 looks at the face from the front: the viewer stands at +y (anterior) and looks
/// towards −y, superior up, the subject's right on the image's left (as in a photograph).
/// Positive yaw moves the viewer towards the subject's left (−x); positive pitch moves the viewer
/// up (+z), looking down on the face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct View {
    pub yaw_deg: f64,
    pub pitch_deg: f64,
}

impl View {
    pub const FRONT: View = View {
        yaw_deg: 0.0,
        pitch_deg: 0.0,
    };

    /// Every combination of the given yaws and pitches (yaw fastest).
    pub fn grid(yaws: &[f64], pitches: &[f64]) -> Vec<View> {
        pitches
            .iter()
            .flat_map(|&p| {
                yaws.iter().map(move |&y| View {
                    yaw_deg: y,
                    pitch_deg: p,
                })
            })
            .collect()
    }

    /// Yaw −60…60° in 20° steps × pitch −20, 0, 20°: 21 views around the front.
    pub fn around_face() -> Vec<View> {
        View::grid(
            &[-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0],
            &[-20.0, 0.0, 20.0],
        )
    }

    /// Unit vectors (towards the viewer, image right, image up) in world RAS.
    pub fn basis(&self) -> ([f64; 3], [f64; 3], [f64; 3]) {
        let (sy, cy) = self.yaw_deg.to_radians().sin_cos();
        let (sp, cp) = self.pitch_deg.to_radians().sin_cos();
        let eye = [-sy * cp, cy * cp, sp];
        let up = [sy * sp, -cy * sp, cp];
        let right = cross(up, eye);
        (eye, right, up)
    }

    /// A short name usable in file names, e.g. `yaw-40_pitch+20`.
    pub fn name(&self) -> String {
        format!("yaw{:+04.0}_pitch{:+03.0}", self.yaw_deg, self.pitch_deg)
    }
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    if n > 0.0 {
        a.map(|x| x / n)
    } else {
        a
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn add_scaled(p: [f64; 3], d: [f64; 3], t: f64) -> [f64; 3] {
    [p[0] + d[0] * t, p[1] + d[1] * t, p[2] + d[2] * t]
}

/// How a volume becomes a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Image width and height in pixels.
    pub size: u32,
    /// Working-grid voxel size in mm.
    pub grid_mm: f64,
    /// Largest working-grid dimension; the voxel size grows beyond `grid_mm` to respect it.
    pub max_grid_dim: usize,
    /// Skin level in physical units; `None` chooses it per volume and modality.
    pub skin_level: Option<f32>,
    /// Where the light comes from, relative to the viewer (0, 0 = a headlight). The default,
    /// 30° above the viewer, shades brows, nose and lips as photographs do.
    pub light: View,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            size: 320,
            grid_mm: 1.0,
            max_grid_dim: 320,
            skin_level: None,
            light: View {
                yaw_deg: 0.0,
                pitch_deg: 30.0,
            },
        }
    }
}

/// Where the camera points and how much it sees: a sphere around the head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Framing {
    pub centre: [f64; 3],
    pub radius: f64,
}

/// Where a ray met the skin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurfaceHit {
    pub point: [f64; 3],
    /// Outward unit normal (pointing from tissue to air).
    pub normal: [f64; 3],
    /// Distance along the ray from its origin, mm.
    pub distance: f64,
}

const BLOCK: usize = 4;

/// A volume made ready for rendering: the smoothed world grid, its skin level, and the framing.
#[derive(Debug, Clone)]
pub struct SkinScene {
    grid: WorldGrid,
    level: f32,
    framing: Framing,
    size: u32,
    light: View,
    /// Maximum over each BLOCK³ cell (plus the next layer, which trilinear reads): rays cross
    /// empty cells in big steps.
    block_max: Vec<f32>,
    block_dims: [usize; 3],
}

impl SkinScene {
    /// Prepares `vol` for rendering, choosing its skin level and framing its head.
    pub fn new(vol: &Volume, opts: &RenderOptions) -> Result<Self> {
        let (origin, dims, spacing) =
            WorldGrid::geometry_for(vol, opts.grid_mm, opts.max_grid_dim)?;
        let mut grid = WorldGrid::resample(vol, origin, dims, spacing)?;
        grid.smooth();
        let level = match opts.skin_level {
            Some(l) => l,
            None => skin_level(&grid.data, vol.modality)
                .ok_or_else(|| Error::no_skin(vol.path(), "intensities are constant"))?,
        };
        let framing = frame_head(&grid, level).ok_or_else(|| {
            Error::no_skin(
                vol.path(),
                format!("nothing exceeds the skin level {level}"),
            )
        })?;
        Ok(Self::assemble(grid, level, framing, opts.size, opts.light))
    }

    /// Prepares `vol` with the grid, skin level and framing of `reference`, so that both render
    /// to pictures taken with the same camera (before/after comparisons).
    pub fn like(vol: &Volume, reference: &SkinScene) -> Result<Self> {
        let r = &reference.grid;
        let mut grid = WorldGrid::resample(vol, r.origin, r.dims, r.spacing)?;
        grid.smooth();
        Ok(Self::assemble(
            grid,
            reference.level,
            reference.framing,
            reference.size,
            reference.light,
        ))
    }

    fn assemble(grid: WorldGrid, level: f32, framing: Framing, size: u32, light: View) -> Self {
        let block_dims = grid.dims.map(|d| d.div_ceil(BLOCK));
        let mut block_max = vec![f32::NEG_INFINITY; block_dims.iter().product()];
        for k in 0..grid.dims[2] {
            for j in 0..grid.dims[1] {
                for i in 0..grid.dims[0] {
                    let v = grid.data[grid.index(i, j, k)];
                    // A voxel feeds trilinear samples in its own cell and the cell before it.
                    for bk in [k / BLOCK, k.saturating_sub(1) / BLOCK] {
                        for bj in [j / BLOCK, j.saturating_sub(1) / BLOCK] {
                            for bi in [i / BLOCK, i.saturating_sub(1) / BLOCK] {
                                let b = (bk * block_dims[1] + bj) * block_dims[0] + bi;
                                if v > block_max[b] {
                                    block_max[b] = v;
                                }
                            }
                        }
                    }
                }
            }
        }
        SkinScene {
            grid,
            level,
            framing,
            size,
            light,
            block_max,
            block_dims,
        }
    }

    pub fn skin_level(&self) -> f32 {
        self.level
    }
    pub fn framing(&self) -> Framing {
        self.framing
    }
    pub fn grid(&self) -> &WorldGrid {
        &self.grid
    }
    pub fn size(&self) -> u32 {
        self.size
    }

    fn block_empty(&self, p: [f64; 3]) -> bool {
        let g = self.grid.to_grid(p);
        let mut b = [0usize; 3];
        for a in 0..3 {
            if g[a].is_nan() || g[a] < 0.0 {
                return true;
            }
            b[a] = g[a] as usize / BLOCK;
            if b[a] >= self.block_dims[a] {
                return true;
            }
        }
        self.block_max[(b[2] * self.block_dims[1] + b[1]) * self.block_dims[0] + b[0]] < self.level
    }

    /// First crossing of the skin level along the ray `origin + t·dir` (`dir` unit), for
    /// `t` in `[0, max_t]`.
    pub fn cast(&self, origin: [f64; 3], dir: [f64; 3], max_t: f64) -> Option<SurfaceHit> {
        let (t0, t1) = self.clip_to_grid(origin, dir, max_t)?;
        let fine = 0.5 * self.grid.spacing;
        let coarse = BLOCK as f64 * self.grid.spacing * 0.5;
        let mut t = t0;
        let mut prev: Option<(f64, f32)> = None;
        let mut last_was_coarse = false;
        while t <= t1 {
            let p = add_scaled(origin, dir, t);
            if self.block_empty(p) {
                prev = None;
                last_was_coarse = true;
                t += coarse;
                continue;
            }
            if last_was_coarse && t - coarse >= t0 {
                // Resume fine steps from the last point known to be in empty space, so a thin
                // surface just past a cell boundary is not stepped over.
                t -= coarse;
                last_was_coarse = false;
                prev = None;
                t += fine;
                continue;
            }
            last_was_coarse = false;
            let f = self.grid.sample(p);
            if f >= self.level {
                let (tp, fp) = prev.unwrap_or_else(|| {
                    let tp = (t - fine).max(t0);
                    (tp, self.grid.sample(add_scaled(origin, dir, tp)))
                });
                let th = self.refine(origin, dir, (tp, fp), (t, f));
                let point = add_scaled(origin, dir, th);
                let g = self.grid.gradient(point);
                let n = (dot(g, g)).sqrt();
                let normal = if n > 0.0 {
                    [-g[0] / n, -g[1] / n, -g[2] / n]
                } else {
                    dir.map(|x| -x)
                };
                return Some(SurfaceHit {
                    point,
                    normal,
                    distance: th,
                });
            }
            prev = Some((t, f));
            t += fine;
        }
        None
    }

    /// Bisection between a sample below and one at/above the level.
    fn refine(&self, o: [f64; 3], d: [f64; 3], mut lo: (f64, f32), mut hi: (f64, f32)) -> f64 {
        if lo.1 >= self.level {
            return lo.0;
        }
        for _ in 0..4 {
            let tm = 0.5 * (lo.0 + hi.0);
            let fm = self.grid.sample(add_scaled(o, d, tm));
            if fm >= self.level {
                hi = (tm, fm);
            } else {
                lo = (tm, fm);
            }
        }
        let span = hi.1 - lo.1;
        if span > 0.0 {
            lo.0 + (hi.0 - lo.0) * ((self.level - lo.1) / span) as f64
        } else {
            hi.0
        }
    }

    fn clip_to_grid(&self, o: [f64; 3], d: [f64; 3], max_t: f64) -> Option<(f64, f64)> {
        let g = &self.grid;
        let (mut t0, mut t1) = (0.0f64, max_t);
        for a in 0..3 {
            let lo = g.origin[a];
            let hi = g.origin[a] + (g.dims[a] - 1) as f64 * g.spacing;
            if d[a].abs() < 1e-12 {
                if o[a] < lo || o[a] > hi {
                    return None;
                }
                continue;
            }
            let (mut a0, mut a1) = ((lo - o[a]) / d[a], (hi - o[a]) / d[a]);
            if a0 > a1 {
                std::mem::swap(&mut a0, &mut a1);
            }
            t0 = t0.max(a0);
            t1 = t1.min(a1);
        }
        (t0 <= t1).then_some((t0, t1))
    }

    /// Orthographic ray for pixel centre (`col`, `row`) of a view: origin on the framing
    /// sphere's viewer-side tangent plane, direction towards the head.
    pub fn pixel_ray(&self, view: &View, col: f64, row: f64) -> ([f64; 3], [f64; 3]) {
        let (eye, right, up) = view.basis();
        let (c, r) = (self.framing.centre, self.framing.radius);
        let s = self.size as f64;
        let a = ((col + 0.5) / s * 2.0 - 1.0) * r;
        let b = (1.0 - (row + 0.5) / s * 2.0) * r;
        let mut o = add_scaled(c, eye, r);
        o = add_scaled(o, right, a);
        o = add_scaled(o, up, b);
        (o, eye.map(|x| -x))
    }

    /// World position of a point seen at pixel (`col`, `row`) at depth `distance`.
    pub fn pixel_to_world(&self, view: &View, col: f64, row: f64, distance: f64) -> [f64; 3] {
        let (o, d) = self.pixel_ray(view, col, row);
        add_scaled(o, d, distance)
    }

    /// Shaded picture of the skin seen from `view`: Lambert plus a little Phong highlight from
    /// the scene's light, black background.
    pub fn render(&self, view: &View) -> GrayImage {
        let size = self.size as usize;
        let (eye, _, _) = view.basis();
        let (light, _, _) = View {
            yaw_deg: view.yaw_deg + self.light.yaw_deg,
            pitch_deg: view.pitch_deg + self.light.pitch_deg,
        }
        .basis();
        let half = normalize([eye[0] + light[0], eye[1] + light[1], eye[2] + light[2]]);
        let max_t = 2.0 * self.framing.radius;
        let mut pixels = vec![0u8; size * size];
        pixels
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(row, line)| {
                for (col, px) in line.iter_mut().enumerate() {
                    let (o, d) = self.pixel_ray(view, col as f64, row as f64);
                    if let Some(hit) = self.cast(o, d, max_t) {
                        let lambert = dot(hit.normal, light).max(0.0);
                        let spec = dot(hit.normal, half).max(0.0).powi(24);
                        let shade = 0.12 + 0.78 * lambert + 0.10 * spec;
                        *px = (shade * 255.0).round().clamp(0.0, 255.0) as u8;
                    }
                }
            });
        GrayImage::from_raw(self.size, self.size, pixels).unwrap_or_default()
    }

    /// First skin hit for every pixel of `view` (row-major), for depth-based measurements.
    pub fn hits(&self, view: &View) -> Vec<Option<SurfaceHit>> {
        let size = self.size as usize;
        let max_t = 2.0 * self.framing.radius;
        (0..size * size)
            .into_par_iter()
            .map(|i| {
                let (o, d) = self.pixel_ray(view, (i % size) as f64, (i / size) as f64);
                self.cast(o, d, max_t)
            })
            .collect()
    }
}

/// The sphere around the part of the grid above `level`: centre of its bounding box (robust to a
/// few stray voxels: 0.1 % of them may lie outside on each side), radius to the box's corners.
fn frame_head(grid: &WorldGrid, level: f32) -> Option<Framing> {
    let mut proj = [
        vec![0u64; grid.dims[0]],
        vec![0u64; grid.dims[1]],
        vec![0u64; grid.dims[2]],
    ];
    let mut total = 0u64;
    for k in 0..grid.dims[2] {
        for j in 0..grid.dims[1] {
            for i in 0..grid.dims[0] {
                if grid.data[grid.index(i, j, k)] >= level {
                    proj[0][i] += 1;
                    proj[1][j] += 1;
                    proj[2][k] += 1;
                    total += 1;
                }
            }
        }
    }
    if total == 0 {
        return None;
    }
    let cut = total / 1000;
    let mut lo = [0f64; 3];
    let mut hi = [0f64; 3];
    for a in 0..3 {
        let (mut acc, mut first) = (0u64, 0usize);
        for (i, &c) in proj[a].iter().enumerate() {
            acc += c;
            if acc > cut {
                first = i;
                break;
            }
        }
        let (mut acc, mut last) = (0u64, proj[a].len() - 1);
        for (i, &c) in proj[a].iter().enumerate().rev() {
            acc += c;
            if acc > cut {
                last = i;
                break;
            }
        }
        lo[a] = grid.origin[a] + first as f64 * grid.spacing;
        hi[a] = grid.origin[a] + last as f64 * grid.spacing;
    }
    let centre = [0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a]));
    let radius =
        0.5 * (0..3).map(|a| (hi[a] - lo[a]).powi(2)).sum::<f64>().sqrt() + 2.0 * grid.spacing;
    Some(Framing { centre, radius })
}
