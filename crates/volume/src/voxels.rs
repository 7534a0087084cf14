//! Voxel storage in the file's own data type.
//!
//! Defacing must write back exactly the type and values that came in, so voxels are never
//! converted on load: [`Voxels`] keeps one typed 4-D array, indexed `[i, j, k, t]` in the file's
//! (Fortran, x-fastest) memory order, and converts to `f32` only for the analysis copy.

use ndarray::{Array3, Array4, ArrayView3, ShapeBuilder, Zip};
use rayon::prelude::*;
use serde::Serialize;

/// The on-disk sample type of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl DataType {
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::F64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DataType::U8 => "uint8",
            DataType::I8 => "int8",
            DataType::U16 => "uint16",
            DataType::I16 => "int16",
            DataType::U32 => "uint32",
            DataType::I32 => "int32",
            DataType::F32 => "float32",
            DataType::F64 => "float64",
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A sample type that voxels can be stored in.
pub trait Sample: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    const DATATYPE: DataType;
    fn to_f64(self) -> f64;
    /// Nearest representable value, saturating at the type's range (NaN becomes 0 for integers).
    fn from_f64(v: f64) -> Self;
    /// Appends the sample's little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! int_sample {
    ($t:ty, $dt:ident) => {
        impl Sample for $t {
            const DATATYPE: DataType = DataType::$dt;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // `as` saturates and maps NaN to 0, which is what we want.
                v.round() as $t
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes())
            }
        }
    };
}
int_sample!(u8, U8);
int_sample!(i8, I8);
int_sample!(u16, U16);
int_sample!(i16, I16);
int_sample!(u32, U32);
int_sample!(i32, I32);
impl Sample for f32 {
    const DATATYPE: DataType = DataType::F32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl Sample for f64 {
    const DATATYPE: DataType = DataType::F64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}

/// Voxels in their stored type, shape `[nx, ny, nz, nt]` (nt = 1 for a 3-D volume), Fortran
/// memory order (the order of NIfTI data and of DICOM frames stacked along k).
#[derive(Debug, Clone, PartialEq)]
pub enum Voxels {
    U8(Array4<u8>),
    I8(Array4<i8>),
    U16(Array4<u16>),
    I16(Array4<i16>),
    U32(Array4<u32>),
    I32(Array4<i32>),
    F32(Array4<f32>),
    F64(Array4<f64>),
}

/// Runs `$body` with `$a` bound to the typed array inside a [`Voxels`].
#[macro_export]
macro_rules! with_voxels {
    ($v:expr, $a:ident => $body:expr) => {
        match $v {
            $crate::Voxels::U8($a) => $body,
            $crate::Voxels::I8($a) => $body,
            $crate::Voxels::U16($a) => $body,
            $crate::Voxels::I16($a) => $body,
            $crate::Voxels::U32($a) => $body,
            $crate::Voxels::I32($a) => $body,
            $crate::Voxels::F32($a) => $body,
            $crate::Voxels::F64($a) => $body,
        }
    };
}

/// The stored samples of one frame, x fastest, borrowed from a [`Voxels`].
#[derive(Debug, Clone, Copy)]
pub enum FrameSamples<'a> {
    U8(&'a [u8]),
    I8(&'a [i8]),
    U16(&'a [u16]),
    I16(&'a [i16]),
    U32(&'a [u32]),
    I32(&'a [i32]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Voxels {
    /// The stored samples of frame `t` in place, x fastest: `None` unless the voxels are laid
    /// out x fastest and frame after frame (as read from files) and `t` is a frame.
    pub fn frame_samples(&self, t: usize) -> Option<FrameSamples<'_>> {
        let [nx, ny, nz, nt] = self.dims();
        let n = nx * ny * nz;
        if t >= nt {
            return None;
        }
        macro_rules! frame {
            ($a:expr, $v:ident) => {{
                let all = $a
                    .as_slice_memory_order()
                    .filter(|_| $a.t().is_standard_layout())?;
                Some(FrameSamples::$v(&all[n * t..n * (t + 1)]))
            }};
        }
        match self {
            Voxels::U8(a) => frame!(a, U8),
            Voxels::I8(a) => frame!(a, I8),
            Voxels::U16(a) => frame!(a, U16),
            Voxels::I16(a) => frame!(a, I16),
            Voxels::U32(a) => frame!(a, U32),
            Voxels::I32(a) => frame!(a, I32),
            Voxels::F32(a) => frame!(a, F32),
            Voxels::F64(a) => frame!(a, F64),
        }
    }

    /// Builds voxels from samples in file order (x fastest, then y, z, t).
    pub fn from_file_order<T: Sample>(dims: [usize; 4], samples: Vec<T>) -> Option<Self>
    where
        Self: From<Array4<T>>,
    {
        let a = Array4::from_shape_vec((dims[0], dims[1], dims[2], dims[3]).f(), samples).ok()?;
        Some(Self::from(a))
    }

    pub fn datatype(&self) -> DataType {
        match self {
            Voxels::U8(_) => DataType::U8,
            Voxels::I8(_) => DataType::I8,
            Voxels::U16(_) => DataType::U16,
            Voxels::I16(_) => DataType::I16,
            Voxels::U32(_) => DataType::U32,
            Voxels::I32(_) => DataType::I32,
            Voxels::F32(_) => DataType::F32,
            Voxels::F64(_) => DataType::F64,
        }
    }

    /// `[nx, ny, nz, nt]`.
    pub fn dims(&self) -> [usize; 4] {
        with_voxels!(self, a => { let s = a.shape(); [s[0], s[1], s[2], s[3]] })
    }

    /// Stored (unscaled) values of one frame as `f32`, for analysis.
    pub fn frame_f32(&self, t: usize) -> Array3<f32> {
        self.frame_f32_with(t, |v| v)
    }

    /// `f` of the stored values of one frame as `f32`, computed in parallel, in the frame's
    /// memory order (x fastest for volumes read from files).
    pub fn frame_f32_with(&self, t: usize, f: impl Fn(f32) -> f32 + Sync) -> Array3<f32> {
        fn go<T: Sample>(a: &Array4<T>, t: usize, f: impl Fn(f32) -> f32 + Sync) -> Array3<f32> {
            let frame = a.index_axis(ndarray::Axis(3), t);
            let convert = |v: &T| f(v.to_f64() as f32);
            let shape = frame.raw_dim();
            // a plain slice converts in parallel at memory speed (`Zip`'s parallel map is
            // slower than a serial one here); other layouts are converted serially
            let fortran = frame.t().is_standard_layout();
            match frame.to_slice_memory_order() {
                Some(src) if fortran || frame.is_standard_layout() => {
                    let data: Vec<f32> = src.par_iter().map(convert).collect();
                    let shaped = if fortran {
                        Array3::from_shape_vec(shape.f(), data)
                    } else {
                        Array3::from_shape_vec(shape, data)
                    };
                    shaped.unwrap_or_else(|_| frame.map(convert))
                }
                _ => frame.map(convert),
            }
        }
        with_voxels!(self, a => go(a, t, f))
    }

    /// Sets every voxel where `mask` is true, in every frame, to the stored value `stored`
    /// (rounded and saturated to the data type).
    pub fn fill(&mut self, mask: &ArrayView3<bool>, stored: f64) {
        fn go<T: Sample>(a: &mut Array4<T>, mask: &ArrayView3<bool>, stored: f64) {
            let v = T::from_f64(stored);
            for mut frame in a.axis_iter_mut(ndarray::Axis(3)) {
                Zip::from(&mut frame).and(mask).par_for_each(|x, &m| {
                    if m {
                        *x = v
                    }
                });
            }
        }
        with_voxels!(self, a => go(a, mask, stored))
    }

    /// Replaces voxels where `mask` is true with `f(t, i, j, k, old_stored) -> new_stored`.
    pub fn replace_where<F>(&mut self, mask: &ArrayView3<bool>, f: F)
    where
        F: Fn(usize, [usize; 3], f64) -> f64 + Sync,
    {
        fn go<T: Sample, F: Fn(usize, [usize; 3], f64) -> f64 + Sync>(
            a: &mut Array4<T>,
            mask: &ArrayView3<bool>,
            f: F,
        ) {
            for (t, mut frame) in a.axis_iter_mut(ndarray::Axis(3)).enumerate() {
                Zip::indexed(&mut frame)
                    .and(mask)
                    .par_for_each(|(i, j, k), x, &m| {
                        if m {
                            *x = T::from_f64(f(t, [i, j, k], x.to_f64()))
                        }
                    });
            }
        }
        with_voxels!(self, a => go(a, mask, f))
    }

    /// Number of voxels (over all frames) whose stored bits differ from `other`'s; `None` if the
    /// two differ in type or shape.
    pub fn count_differences(&self, other: &Voxels) -> Option<usize> {
        fn go<T: Sample>(a: &Array4<T>, b: &Array4<T>) -> Option<usize> {
            if a.shape() != b.shape() {
                return None;
            }
            // NaN == NaN must count as equal here: compare bit patterns through f64.
            Some(Zip::from(a).and(b).par_fold(
                || 0,
                |n, x, y| n + (x.to_f64().to_bits() != y.to_f64().to_bits()) as usize,
                |m, n| m + n,
            ))
        }
        macro_rules! pair {
            ($($v:ident),*) => {
                match (self, other) {
                    $((Voxels::$v(a), Voxels::$v(b)) => go(a, b),)*
                    _ => None,
                }
            };
        }
        pair!(U8, I8, U16, I16, U32, I32, F32, F64)
    }

    /// The samples in file order as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn go<T: Sample>(a: &Array4<T>) -> Vec<u8> {
            let mut out = Vec::with_capacity(a.len() * T::DATATYPE.size_bytes());
            // `t()` of an F-order array is C-order over reversed axes: iteration follows memory.
            for &v in a.t().iter() {
                v.put_le(&mut out);
            }
            out
        }
        with_voxels!(self, a => go(a))
    }
}

macro_rules! from_array {
    ($t:ty, $v:ident) => {
        impl From<Array4<$t>> for Voxels {
            fn from(a: Array4<$t>) -> Self {
                Voxels::$v(a)
            }
        }
    };
}
from_array!(u8, U8);
from_array!(i8, I8);
from_array!(u16, U16);
from_array!(i16, I16);
from_array!(u32, U32);
from_array!(i32, I32);
from_array!(f32, F32);
from_array!(f64, F64);
