//! Voxel bytes ↔ typed [`Voxels`], in either byte order.

use super::header::ByteOrder;
use crate::{DataType, Voxels};

/// The voxel type for a NIfTI `datatype` code; the error names unsupported types.
pub fn datatype_from_code(code: i64) -> Result<DataType, String> {
    Ok(match code {
        2 => DataType::U8,
        4 => DataType::I16,
        8 => DataType::I32,
        16 => DataType::F32,
        64 => DataType::F64,
        256 => DataType::I8,
        512 => DataType::U16,
        768 => DataType::U32,
        other => {
            let name = match other {
                1 => "binary (1 bit)",
                32 => "complex64",
                128 => "RGB24",
                1024 => "int64",
                1280 => "uint64",
                1536 => "float128",
                1792 => "complex128",
                2048 => "complex256",
                2304 => "RGBA32",
                _ => "unknown",
            };
            return Err(format!(
                "datatype {other} ({name}); supported: uint8, int8, uint16, int16, uint32, int32, \
                 float32, float64"
            ));
        }
    })
}

/// The NIfTI `datatype` code and `bitpix` of a voxel type.
pub fn code_of(dt: DataType) -> (i64, i64) {
    let code = match dt {
        DataType::U8 => 2,
        DataType::I16 => 4,
        DataType::I32 => 8,
        DataType::F32 => 16,
        DataType::F64 => 64,
        DataType::I8 => 256,
        DataType::U16 => 512,
        DataType::U32 => 768,
    };
    (code, 8 * dt.size_bytes() as i64)
}

/// Reverses every `width`-byte sample in place: converts between byte orders.
fn swap_samples(bytes: &mut [u8], width: usize) {
    if width > 1 {
        for s in bytes.chunks_exact_mut(width) {
            s.reverse();
        }
    }
}

macro_rules! decode_as {
    ($t:ty, $bytes:expr, $dims:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        let samples: Vec<$t> = $bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                <$t>::from_le_bytes(a)
            })
            .collect();
        Voxels::from_file_order($dims, samples)
    }};
}

/// Decodes `bytes` (exactly the voxel data, file order) into voxels of shape `dims`. `None` when
/// the byte count does not match the shape.
pub fn decode(
    dt: DataType,
    order: ByteOrder,
    dims: [usize; 4],
    mut bytes: Vec<u8>,
) -> Option<Voxels> {
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if count.checked_mul(dt.size_bytes())? != bytes.len() {
        return None;
    }
    if order == ByteOrder::Big {
        swap_samples(&mut bytes, dt.size_bytes());
    }
    match dt {
        // Bytes are already u8 samples: no second copy of a possibly large volume.
        DataType::U8 => Voxels::from_file_order(dims, bytes),
        DataType::I8 => decode_as!(i8, bytes, dims),
        DataType::U16 => decode_as!(u16, bytes, dims),
        DataType::I16 => decode_as!(i16, bytes, dims),
        DataType::U32 => decode_as!(u32, bytes, dims),
        DataType::I32 => decode_as!(i32, bytes, dims),
        DataType::F32 => decode_as!(f32, bytes, dims),
        DataType::F64 => decode_as!(f64, bytes, dims),
    }
}

/// The voxel data in file order and byte order `order`.
pub fn encode(v: &Voxels, order: ByteOrder) -> Vec<u8> {
    let mut bytes = v.to_le_bytes();
    if order == ByteOrder::Big {
        swap_samples(&mut bytes, v.datatype().size_bytes());
    }
    bytes
}
