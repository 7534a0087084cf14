//! Pixel data of one file: decoded to stored sample values, never rescaled or converted, so that
//! writing back gives the same integers.

use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::Endianness;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::instance::Instance;
use crate::{DataType, Error, Result};

const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// The voxel type that holds the file's samples unchanged.
pub(crate) fn datatype_of(inst: &Instance) -> Result<DataType> {
    if inst.has_float_pixel_data {
        return Err(Error::unsupported(
            &inst.path,
            "float pixel data (FloatPixelData) is not supported",
        ));
    }
    if inst.samples_per_pixel != 1 {
        return Err(Error::unsupported(
            &inst.path,
            format!(
                "{} samples per pixel (colour images are not head volumes)",
                inst.samples_per_pixel
            ),
        ));
    }
    let signed = inst.pixel_representation == 1;
    Ok(match (inst.bits_allocated, signed) {
        (8, false) => DataType::U8,
        (8, true) => DataType::I8,
        (16, false) => DataType::U16,
        (16, true) => DataType::I16,
        (32, false) => DataType::U32,
        (32, true) => DataType::I32,
        (b, _) => {
            return Err(Error::unsupported(
                &inst.path,
                format!("BitsAllocated {b} is not supported"),
            ))
        }
    })
}

/// A readable name for a transfer syntax UID, for error messages.
pub(crate) fn transfer_syntax_name(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax {uid}"),
    }
}

/// All frames of the file as little-endian sample bytes, frame after frame, each frame row after
/// row (column index fastest).
pub(crate) fn decode_le(inst: &Instance, obj: &DefaultDicomObject) -> Result<Vec<u8>> {
    let path = &inst.path;
    let bytes_per_sample = (inst.bits_allocated / 8) as usize;
    let expected =
        inst.rows as usize * inst.columns as usize * inst.frames.len() * bytes_per_sample;
    let elem = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| Error::invalid(path, "no pixel data (PixelData element missing)"))?;
    let ts = TransferSyntaxRegistry
        .get(&inst.transfer_syntax)
        .ok_or_else(|| {
            Error::unsupported(
                path,
                format!("unknown transfer syntax {}", inst.transfer_syntax),
            )
        })?;

    let mut data: Vec<u8> = match elem.value() {
        Value::Primitive(p) if !ts.is_encapsulated_pixel_data() => {
            native_le(p, ts.endianness(), bytes_per_sample)
        }
        _ => {
            // The JPEG decoder handles 8-bit lossy JPEG only; 12-bit extended JPEG would fail
            // with a less helpful message.
            if ts.uid() == JPEG_EXTENDED && inst.bits_stored > 8 {
                return Err(Error::unsupported(
                    path,
                    format!(
                        "{}-bit lossy JPEG ({}) cannot be decoded",
                        inst.bits_stored,
                        transfer_syntax_name(&inst.transfer_syntax)
                    ),
                ));
            }
            if !ts.can_decode_all() {
                return Err(Error::unsupported(
                    path,
                    format!(
                        "cannot decode transfer syntax {}",
                        transfer_syntax_name(&inst.transfer_syntax)
                    ),
                ));
            }
            let decoded = obj.decode_pixel_data().map_err(|e| {
                Error::invalid(
                    path,
                    format!(
                        "cannot decode pixel data ({}): {e}",
                        transfer_syntax_name(&inst.transfer_syntax)
                    ),
                )
            })?;
            let mut d = decoded.into_data();
            // A decoder that returns another sample size than the header says (e.g. 8-bit JPEG
            // in a 16-bit header) would otherwise be read as garbage.
            if d.len() != expected {
                return Err(Error::invalid(
                    path,
                    format!(
                        "decoded pixel data has {} bytes, {expected} expected for {} frame(s) of \
                         {}x{}x{} bits ({})",
                        d.len(),
                        inst.frames.len(),
                        inst.columns,
                        inst.rows,
                        inst.bits_allocated,
                        transfer_syntax_name(&inst.transfer_syntax)
                    ),
                ));
            }
            // Decoders produce native-endian samples.
            if cfg!(target_endian = "big") && bytes_per_sample > 1 {
                for c in d.chunks_exact_mut(bytes_per_sample) {
                    c.reverse();
                }
            }
            d
        }
    };
    if data.len() < expected {
        return Err(Error::invalid(
            path,
            format!(
                "pixel data has {} bytes, {} expected for {} frame(s) of {}x{}x{} bits",
                data.len(),
                expected,
                inst.frames.len(),
                inst.columns,
                inst.rows,
                inst.bits_allocated
            ),
        ));
    }
    // Native pixel data is padded to even length; anything beyond the frames is not voxels.
    data.truncate(expected);
    Ok(data)
}

/// Native (uncompressed) samples as little-endian bytes. In memory, dicom-rs keeps OW values as
/// 16-bit integers in host order and OB values as the file's bytes.
fn native_le(p: &PrimitiveValue, file_endian: Endianness, bytes_per_sample: usize) -> Vec<u8> {
    macro_rules! le {
        ($v:expr) => {{
            let mut out = Vec::with_capacity($v.len() * std::mem::size_of_val(&$v[0]));
            for x in $v.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
            out
        }};
    }
    match p {
        PrimitiveValue::U16(v) if !v.is_empty() => le!(v),
        PrimitiveValue::I16(v) if !v.is_empty() => le!(v),
        PrimitiveValue::U32(v) if !v.is_empty() => le!(v),
        PrimitiveValue::I32(v) if !v.is_empty() => le!(v),
        other => {
            let mut b = other.to_bytes().into_owned();
            if file_endian == Endianness::Big && bytes_per_sample > 1 {
                for c in b.chunks_exact_mut(bytes_per_sample) {
                    c.reverse();
                }
            }
            b
        }
    }
}
