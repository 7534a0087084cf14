//! A synthetic head whose every voxel's tissue is known: skin, fat, skull, CSF, brain, eyes,
//! nose, lips, ears, soft tissue of the face and neck, and for CT a head holder behind the head.
//! Proportions follow the embedded template's head (MNI-like world, RAS mm); contrasts mimic
//! T1, T2, FLAIR, PD MRI and CT; any orientation comes from a rotation, axis permutation and
//! flips of the voxel grid, and any voxel size (including thick slices).

use defacer_volume::{Affine, Modality, Scaling, Volume, Voxels};
use nalgebra::{Matrix3, Matrix4, Rotation3, Vector3};
use ndarray::{Array3, Array4, ShapeBuilder};
use rayon::prelude::*;

/// Tissue classes of the phantom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tissue {
    Air = 0,
    Skin,
    Fat,
    Soft,
    Bone,
    Csf,
    Brain,
    Eye,
    Nose,
    Lips,
    Ear,
    Holder,
    Foam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    T1,
    T2,
    Flair,
    Pd,
    Ct,
}

impl Contrast {
    /// Physical value of a tissue (MRI arbitrary units, CT in HU).
    pub fn value(self, t: Tissue) -> f64 {
        use Tissue::*;
        let row: [f64; 13] = match self {
            //                Air    Skin  Fat   Soft  Bone  Csf   Brain Eye   Nose  Lips  Ear   Holder Foam
            Contrast::T1 => [
                0.0, 70.0, 110.0, 60.0, 15.0, 15.0, 85.0, 20.0, 70.0, 70.0, 70.0, 0.0, 0.0,
            ],
            Contrast::T2 => [
                0.0, 50.0, 70.0, 45.0, 8.0, 180.0, 90.0, 190.0, 50.0, 55.0, 50.0, 0.0, 0.0,
            ],
            Contrast::Flair => [
                0.0, 60.0, 80.0, 50.0, 8.0, 8.0, 90.0, 10.0, 60.0, 60.0, 60.0, 0.0, 0.0,
            ],
            Contrast::Pd => [
                0.0, 80.0, 90.0, 75.0, 15.0, 110.0, 95.0, 110.0, 80.0, 80.0, 80.0, 0.0, 0.0,
            ],
            Contrast::Ct => [
                -1000.0, 40.0, -90.0, 45.0, 1200.0, 5.0, 35.0, 15.0, 60.0, 45.0, 40.0, 100.0,
                -700.0,
            ],
        };
        let _ = (
            Air, Skin, Fat, Soft, Bone, Csf, Brain, Eye, Nose, Lips, Ear, Holder, Foam,
        );
        row[t as usize]
    }
}

/// Builder for a phantom head volume.
#[derive(Debug, Clone)]
pub struct Phantom {
    contrast: Contrast,
    voxel_mm: [f64; 3],
    rotation_deg: [f64; 3],
    /// Voxel axis a → world axis `axes[a].0`, negated when `axes[a].1`.
    axes: [(usize, bool); 3],
    noise: f64,
}

/// A built phantom: the volume and the truth on its grid.
#[derive(Debug, Clone)]
pub struct PhantomHead {
    pub volume: Volume,
    pub tissue: Array3<u8>,
    pub brain: Array3<bool>,
}

impl PhantomHead {
    pub fn voxels_of(&self, t: Tissue) -> Array3<bool> {
        self.tissue.mapv(|v| v == t as u8)
    }
}

/// Field of view: a cube of this half-size (mm) around the head centre.
const HALF_FOV: f64 = 135.0;
const CENTRE: [f64; 3] = [0.0, -10.0, -15.0];

impl Phantom {
    pub fn new(contrast: Contrast) -> Self {
        Phantom {
            contrast,
            voxel_mm: [2.0; 3],
            rotation_deg: [0.0; 3],
            axes: [(0, false), (1, false), (2, false)],
            noise: 2.0,
        }
    }
    pub fn with_voxel_mm(mut self, mm: f64) -> Self {
        self.voxel_mm = [mm; 3];
        self
    }
    /// Voxel size per voxel axis (e.g. thick slices along the third).
    pub fn with_voxel_size(mut self, mm: [f64; 3]) -> Self {
        self.voxel_mm = mm;
        self
    }
    /// Rotation of the voxel grid about world x, y, z (degrees): an oblique acquisition.
    pub fn with_rotation(mut self, deg: [f64; 3]) -> Self {
        self.rotation_deg = deg;
        self
    }
    /// Which world axis each voxel axis runs along, and whether it runs backwards.
    pub fn with_axes(mut self, axes: [(usize, bool); 3]) -> Self {
        self.axes = axes;
        self
    }

    pub fn affine(&self) -> Affine {
        let mut perm = Matrix3::zeros();
        for (a, &(w, flip)) in self.axes.iter().enumerate() {
            perm[(w, a)] = if flip { -1.0 } else { 1.0 };
        }
        let [rx, ry, rz] = self.rotation_deg.map(f64::to_radians);
        let rot = Rotation3::from_euler_angles(rx, ry, rz);
        let lin = rot.matrix() * perm * Matrix3::from_diagonal(&Vector3::from(self.voxel_mm));
        let dims = self.dims();
        // voxel grid centre maps to the head centre
        let mid = Vector3::new(
            (dims[0] - 1) as f64 / 2.0,
            (dims[1] - 1) as f64 / 2.0,
            (dims[2] - 1) as f64 / 2.0,
        );
        let t = Vector3::from(CENTRE) - lin * mid;
        let mut m = Matrix4::identity();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(&lin);
        m.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
        Affine(m)
    }

    fn dims(&self) -> [usize; 3] {
        self.voxel_mm
            .map(|s| (2.0 * HALF_FOV / s).round() as usize + 1)
    }

    pub fn build(&self) -> PhantomHead {
        let affine = self.affine();
        let [nx, ny, nz] = self.dims();
        let mut tissue = vec![0u8; nx * ny * nz];
        tissue
            .par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slab)| {
                for j in 0..ny {
                    for i in 0..nx {
                        let w = affine.voxel_to_world([i as f64, j as f64, k as f64]);
                        slab[i + nx * j] = classify(w, self.contrast == Contrast::Ct) as u8;
                    }
                }
            });
        let contrast = self.contrast;
        let noise = self.noise;
        let values: Vec<f64> = tissue
            .par_iter()
            .enumerate()
            .map(|(n, &t)| {
                let v = contrast.value(tissue_from(t));
                let e = noise * (hash01(n as u64) + hash01(n as u64 ^ 0x9e37_79b9) - 1.0) * 1.7;
                match contrast {
                    // MRI magnitude images have no negative values
                    Contrast::Ct => v + 4.0 * e,
                    _ => (v + e).abs(),
                }
            })
            .collect();
        let shape = (nx, ny, nz, 1).f();
        let (voxels, scaling, modality) = if contrast == Contrast::Ct {
            // CT stored as unsigned with a −1024 intercept, as many scanners write it
            let s: Vec<u16> = values
                .iter()
                .map(|&v| (v + 1024.0).round().clamp(0.0, 65535.0) as u16)
                .collect();
            (
                Voxels::U16(Array4::from_shape_vec(shape, s).unwrap_or_default()),
                Scaling {
                    slope: 1.0,
                    intercept: -1024.0,
                },
                Modality::Ct,
            )
        } else {
            let s: Vec<i16> = values.iter().map(|&v| (v * 10.0).round() as i16).collect();
            (
                Voxels::I16(Array4::from_shape_vec(shape, s).unwrap_or_default()),
                Scaling::IDENTITY,
                Modality::Mr,
            )
        };
        let tissue = Array3::from_shape_vec((nx, ny, nz).f(), tissue).unwrap_or_default();
        let brain = tissue.mapv(|t| t == Tissue::Brain as u8);
        PhantomHead {
            volume: Volume::synthetic(voxels, affine, scaling, modality),
            tissue,
            brain,
        }
    }
}

fn tissue_from(t: u8) -> Tissue {
    use Tissue::*;
    [
        Air, Skin, Fat, Soft, Bone, Csf, Brain, Eye, Nose, Lips, Ear, Holder, Foam,
    ]
    .get(t as usize)
    .copied()
    .unwrap_or(Air)
}

fn hash01(mut x: u64) -> f64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Normalised radius of `p` in an ellipsoid (1 on its surface) and the depth (mm) below the
/// surface along the ray from the centre.
fn ellipsoid(p: [f64; 3], c: [f64; 3], r: [f64; 3]) -> (f64, f64) {
    let d = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
    let rho = ((d[0] / r[0]).powi(2) + (d[1] / r[1]).powi(2) + (d[2] / r[2]).powi(2)).sqrt();
    let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    let depth = if rho > 1e-9 {
        (1.0 - rho) * len / rho
    } else {
        100.0
    };
    (rho, depth)
}

const CRANIUM: ([f64; 3], [f64; 3]) = ([0.0, -15.0, 0.0], [84.0, 102.0, 100.0]);
const FACE: ([f64; 3], [f64; 3]) = ([0.0, 20.0, -75.0], [72.0, 72.0, 50.0]);
const NOSE: ([f64; 3], [f64; 3]) = ([0.0, 88.0, -78.0], [13.0, 16.0, 20.0]);
const LIPS: ([f64; 3], [f64; 3]) = ([0.0, 86.0, -100.0], [22.0, 7.0, 6.0]);
const EYE_R: f64 = 11.0;
const EYES: [[f64; 3]; 2] = [[-32.0, 58.0, -45.0], [32.0, 58.0, -45.0]];
const EARS: [([f64; 3], [f64; 3]); 2] = [
    ([-88.0, -20.0, -20.0], [6.0, 13.0, 24.0]),
    ([88.0, -20.0, -20.0], [6.0, 13.0, 24.0]),
];

fn classify(p: [f64; 3], ct: bool) -> Tissue {
    let (rc, dc) = ellipsoid(p, CRANIUM.0, CRANIUM.1);
    let (rf, df) = ellipsoid(p, FACE.0, FACE.1);
    let neck = p[2] < -60.0 && (p[0] * p[0] + (p[1] + 20.0).powi(2)).sqrt() < 55.0;
    let in_head = rc <= 1.0 || rf <= 1.0 || neck;
    for e in EYES {
        let d = ((p[0] - e[0]).powi(2) + (p[1] - e[1]).powi(2) + (p[2] - e[2]).powi(2)).sqrt();
        if d <= EYE_R {
            return Tissue::Eye;
        }
    }
    if ellipsoid(p, NOSE.0, NOSE.1).0 <= 1.0 {
        return Tissue::Nose;
    }
    if ellipsoid(p, LIPS.0, LIPS.1).0 <= 1.0 {
        return Tissue::Lips;
    }
    if EARS.iter().any(|(c, r)| ellipsoid(p, *c, *r).0 <= 1.0) {
        return Tissue::Ear;
    }
    if !in_head {
        if ct {
            // a head holder: a 4 mm plastic shell behind the head on a foam cushion
            let r_back = ((p[0] / 70.0).powi(2) + ((p[2] + 10.0) / 110.0).powi(2)).sqrt();
            if r_back < 1.0 && (-131.0..-127.0).contains(&p[1]) {
                return Tissue::Holder;
            }
            if r_back < 1.0 && (-127.0..-115.0).contains(&p[1]) {
                return Tissue::Foam;
            }
        }
        return Tissue::Air;
    }
    if rc <= 1.0 {
        let frontal = p[1] > 20.0;
        let floor = if frontal { -25.0 } else { -60.0 };
        if dc > 14.0 && p[2] > floor {
            return Tissue::Brain;
        }
        if dc > 11.0 && p[2] > floor - 3.0 {
            return Tissue::Csf;
        }
        if dc > 5.0 && p[2] > floor - 9.0 {
            return Tissue::Bone;
        }
        if dc > 5.0 {
            return Tissue::Soft;
        }
        return if dc > 2.0 { Tissue::Fat } else { Tissue::Skin };
    }
    let depth = if rf <= 1.0 { df } else { 10.0 };
    if depth > 6.0 {
        Tissue::Soft
    } else if depth > 2.0 {
        Tissue::Fat
    } else {
        Tissue::Skin
    }
}
