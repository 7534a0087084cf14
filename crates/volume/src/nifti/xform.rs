//! The voxel→world affine of a NIfTI header, chosen and computed as nibabel does
//! (`Nifti1Header.get_best_affine` after its default header checks), so that a volume lands at
//! the same place in world space here as in the tools people check our output with.

use nalgebra::Matrix4;

use super::header::{NiftiHeader, Version};
use crate::Affine;

/// Which header transform an affine came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XformSource {
    Sform,
    Qform,
    /// Neither code set: pixdim scaling about the volume centre, x flipped (Analyze convention).
    Base,
}

impl XformSource {
    pub fn name(self) -> &'static str {
        match self {
            XformSource::Sform => "sform",
            XformSource::Qform => "qform",
            XformSource::Base => "pixdim",
        }
    }
}

/// sform when its code is set, else qform when its code is set, else the base affine. Codes
/// outside 0..=5 count as 0, as nibabel resets unknown codes when it reads a header.
pub fn best_affine(h: &NiftiHeader) -> Result<(Affine, XformSource), String> {
    let known = |c: i64| (1..=5).contains(&c);
    if known(h.sform_code()) {
        Ok((sform(h), XformSource::Sform))
    } else if known(h.qform_code()) {
        Ok((qform(h)?, XformSource::Qform))
    } else {
        Ok((base_affine(h), XformSource::Base))
    }
}

fn sform(h: &NiftiHeader) -> Affine {
    let s = h.srow();
    Affine::from_row_major([s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]])
}

/// pixdim[1..=3] as nibabel fixes them on load: zeros become 1, negatives their absolute value.
fn spatial_zooms(h: &NiftiHeader) -> [f64; 3] {
    let p = h.pixdim();
    std::array::from_fn(|i| if p[i + 1] == 0.0 { 1.0 } else { p[i + 1].abs() })
}

fn qform(h: &NiftiHeader) -> Result<Affine, String> {
    let [b, c, d] = h.quatern();
    // nibabel treats |w²| below a few float epsilons as 0 (a 180° rotation) and refuses clearly
    // negative w², which means b, c, d are not part of a unit quaternion.
    let eps = match h.version() {
        Version::One => f32::EPSILON as f64,
        Version::Two => f64::EPSILON,
    };
    let w2 = 1.0 - (b * b + c * c + d * d);
    let a = if w2.abs() < 3.0 * eps {
        0.0
    } else if w2 < 0.0 {
        return Err(format!(
            "qform quaternion ({b}, {c}, {d}) has a norm above 1"
        ));
    } else {
        w2.sqrt()
    };
    let r = quat_to_rotation(a, b, c, d);
    let mut zooms = spatial_zooms(h);
    // nibabel resets any qfac other than -1 to 1 (the standard says 0 means 1).
    if h.pixdim()[0] == -1.0 {
        zooms[2] = -zooms[2];
    }
    let q = h.qoffset();
    let mut m = Matrix4::identity();
    for row in 0..3 {
        for col in 0..3 {
            m[(row, col)] = r[row][col] * zooms[col];
        }
        m[(row, 3)] = q[row];
    }
    Ok(Affine(m))
}

/// nibabel's `quat2mat`: normalises the quaternion, identity when it is (near) zero.
fn quat_to_rotation(w: f64, x: f64, y: f64, z: f64) -> [[f64; 3]; 3] {
    let n = w * w + x * x + y * y + z * z;
    if n < f64::EPSILON {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let s = 2.0 / n;
    let (xs, ys, zs) = (x * s, y * s, z * s);
    let (wx, wy, wz) = (w * xs, w * ys, w * zs);
    let (xx, xy, xz) = (x * xs, x * ys, x * zs);
    let (yy, yz, zz) = (y * ys, y * zs, z * zs);
    [
        [1.0 - (yy + zz), xy - wz, xz + wy],
        [xy + wz, 1.0 - (xx + zz), yz - wx],
        [xz - wy, yz + wx, 1.0 - (xx + yy)],
    ]
}

/// nibabel's `get_base_affine`: diag(-zx, zy, zz) with the volume centre at world 0.
fn base_affine(h: &NiftiHeader) -> Affine {
    let dim = h.dim();
    let ndim = dim[0].clamp(0, 7) as usize;
    let zooms = spatial_zooms(h);
    let mut m = Matrix4::identity();
    for i in 0..3 {
        // Axes beyond dim[0] count as size 1 and zoom 1; pixdim beyond 3 is not spatial.
        let (n, z) = if i < ndim {
            (dim[i + 1] as f64, zooms[i])
        } else {
            (1.0, 1.0)
        };
        let z = if i == 0 { -z } else { z };
        m[(i, i)] = z;
        m[(i, 3)] = -(n - 1.0) / 2.0 * z;
    }
    Affine(m)
}
