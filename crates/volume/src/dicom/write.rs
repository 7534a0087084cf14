//! Writing a volume back as the DICOM instances it was read from.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use rayon::prelude::*;

use super::{pixels, DicomSeries, SeriesInstance};
use crate::output::write_dir_atomically;
use crate::{with_voxels, Error, Result, Sample, SaveOptions, Source, Volume};

const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Replacement UIDs come from the de-identification, so that the writer and the profile map an
/// old UID to the same new one.
pub use defacer_deid::derive_uid;

/// Writes `vol` into the new directory `out`, one file per instance of the series it was read
/// from, named like the input file (inputs from several directories are flattened; a clash gets a
/// `_2`, `_3`... suffix before the extension). Each file is the input file with:
/// - PixelData replaced by the volume's voxels, same BitsAllocated/PixelRepresentation;
/// - native transfer syntaxes kept (explicit big endian becomes explicit little endian), and
///   compressed ones written as Explicit VR Little Endian: nothing is re-encoded lossily, and
///   LossyImageCompression is left as it was;
/// - the attributes that can identify a person de-identified by `opts.deidentification`
///   (PS3.15 Basic Profile, see [`defacer_deid`]): private attributes removed, names, dates,
///   institution and device identifiers removed or emptied, every UID (SOP instance, series,
///   study, frame of reference, references inside sequences) replaced by [`derive_uid`] of the
///   old one, so the files of a series, and the series of a study, stay together; the
///   geometry and pixel-describing attributes are not in the profile and are kept;
/// - ImageType value 1 set to DERIVED, DerivationDescription set to `opts.description`.
///
/// The directory appears complete or not at all.
pub fn save(vol: &Volume, out: &Path, opts: &SaveOptions) -> Result<()> {
    let Source::Dicom(series) = &vol.source else {
        return Err(Error::invalid(
            out,
            "volume was not read from DICOM; cannot write it as a DICOM series",
        ));
    };
    let moved = (vol.affine.0 - series.affine.0).amax();
    if moved > 1e-9 {
        return Err(Error::invalid(
            series.path(),
            format!(
                "the volume's affine differs from the series' geometry (by up to {moved:.3}); \
                 DICOM files keep their positions, so voxels cannot be moved or resampled"
            ),
        ));
    }
    if vol.slice_positions != series.slice_positions {
        return Err(Error::invalid(
            series.path(),
            "the volume's slice positions differ from the series' geometry; DICOM files keep \
             their positions, so slices cannot be moved or resampled",
        ));
    }
    if vol.scaling != series.scaling {
        return Err(Error::invalid(
            series.path(),
            format!(
                "the volume's scaling {}/{} differs from the series' RescaleSlope/Intercept {}/{}",
                vol.scaling.slope,
                vol.scaling.intercept,
                series.scaling.slope,
                series.scaling.intercept
            ),
        ));
    }
    let [nx, ny, nz, nt] = vol.dims();
    let total: usize = series.instances.iter().map(|i| i.slices.len()).sum();
    if nz * nt != total {
        return Err(Error::invalid(
            out,
            format!("volume is {nx}x{ny}x{nz}x{nt} but its DICOM series has {total} frames"),
        ));
    }
    for inst in &series.instances {
        let fits = inst.slices.len() == inst.volumes.len()
            && inst.slices.iter().all(|&k| k < nz)
            && inst.volumes.iter().all(|&t| t < nt);
        if !fits {
            return Err(Error::invalid(
                &inst.path,
                format!("series record does not fit the {nx}x{ny}x{nz}x{nt} volume"),
            ));
        }
    }
    let names = output_names(series);
    write_dir_atomically(out, |tmp| {
        // Files are independent; each one's bytes do not depend on the order they are written.
        series
            .instances
            .par_iter()
            .zip(names.par_iter())
            .try_for_each(|(inst, name)| write_instance(vol, inst, &tmp.join(name), opts))
    })
}

fn output_names(series: &DicomSeries) -> Vec<PathBuf> {
    let mut used = BTreeSet::new();
    let mut names = Vec::with_capacity(series.instances.len());
    for (n, inst) in series.instances.iter().enumerate() {
        let base = inst
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{:05}.dcm", n + 1));
        let mut name = base.clone();
        let mut suffix = 2;
        while !used.insert(name.clone()) {
            name = match base.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => format!("{stem}_{suffix}.{ext}"),
                _ => format!("{base}_{suffix}"),
            };
            suffix += 1;
        }
        names.push(PathBuf::from(name));
    }
    names
}

/// Sets value 1 of a CS attribute such as ImageType to DERIVED, keeping the other values.
fn mark_derived(obj: &mut InMemDicomObject, tag: Tag) {
    let mut values: Vec<String> = obj
        .get(tag)
        .and_then(|e| e.to_multi_str().ok().map(|v| v.to_vec()))
        .unwrap_or_default();
    if values.is_empty() {
        values.push("DERIVED".into());
    } else {
        values[0] = "DERIVED".into();
    }
    obj.put(DataElement::new(
        tag,
        VR::CS,
        PrimitiveValue::Strs(values.into()),
    ));
}

/// Functional-group sequences whose items carry a FrameType.
const FRAME_TYPE_SEQUENCES: [Tag; 4] = [
    tags::MR_IMAGE_FRAME_TYPE_SEQUENCE,
    tags::CT_IMAGE_FRAME_TYPE_SEQUENCE,
    tags::PET_FRAME_TYPE_SEQUENCE,
    tags::X_RAY3_D_FRAME_TYPE_SEQUENCE,
];

/// Enhanced multi-frame files repeat ImageType per frame as FrameType in the functional groups;
/// its value 1 must agree with ImageType's, so it becomes DERIVED too.
fn mark_frame_types_derived(obj: &mut InMemDicomObject) {
    for groups in [
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
    ] {
        let has_frame_type = obj
            .get(groups)
            .and_then(|e| e.items())
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|i| FRAME_TYPE_SEQUENCES.iter().any(|&t| i.get(t).is_some()))
            });
        if !has_frame_type {
            continue;
        }
        obj.update_value(groups, |v| {
            for item in v.items_mut().into_iter().flatten() {
                for seq in FRAME_TYPE_SEQUENCES {
                    item.update_value(seq, |inner| {
                        for frame_type in inner.items_mut().into_iter().flatten() {
                            if frame_type.get(tags::FRAME_TYPE).is_some() {
                                mark_derived(frame_type, tags::FRAME_TYPE);
                            }
                        }
                    });
                }
            }
        });
    }
}

/// The voxels of slice `k` of volume `t` as little-endian samples, rows one after the other.
fn slice_le(vol: &Volume, k: usize, t: usize) -> Vec<u8> {
    with_voxels!(&vol.voxels, a => {
        let slice = a.slice(ndarray::s![.., .., k, t]);
        let mut out = Vec::with_capacity(slice.len() * vol.datatype().size_bytes());
        // Reversed axes iterate with i fastest, the order of a DICOM frame.
        for v in slice.t().iter() {
            v.put_le(&mut out);
        }
        out
    })
}

fn write_instance(
    vol: &Volume,
    rec: &SeriesInstance,
    dest: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    let path = &rec.path;
    let inst = &rec.header.info;
    if inst.frames.len() != rec.slices.len() {
        return Err(Error::invalid(
            path,
            "frame count does not match the series record",
        ));
    }
    let [nx, ny, ..] = vol.dims();
    if (inst.columns as usize, inst.rows as usize) != (nx, ny)
        || pixels::datatype_of(inst)? != vol.datatype()
    {
        return Err(Error::invalid(
            path,
            format!(
                "volume ({nx}x{ny} {}) does not match the file's {}x{} images",
                vol.datatype(),
                inst.columns,
                inst.rows
            ),
        ));
    }
    let mut obj = (*rec.header.object).clone();

    let mut bytes = Vec::new();
    for (&k, &t) in rec.slices.iter().zip(&rec.volumes) {
        bytes.extend(slice_le(vol, k, t));
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let pixel_data = if inst.bits_allocated == 8 {
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(bytes))
    } else {
        // Words in host order; the writer encodes them little endian. 32-bit samples are two
        // little-endian words each, so the bytes come out in order.
        let words: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
    };
    obj.put(pixel_data);

    // Derived images form a new series (the profile replaces the SeriesInstanceUID): with the
    // original one, a PACS would file the defaced instances beside the originals, in the series
    // that still shows the face.
    defacer_deid::deidentify(&mut obj, &opts.deidentification);

    mark_derived(&mut obj, tags::IMAGE_TYPE);
    mark_frame_types_derived(&mut obj);
    let description: String = opts.description.chars().take(1024).collect();
    obj.put(DataElement::new(
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        PrimitiveValue::from(description),
    ));

    let ts = if inst.transfer_syntax == IMPLICIT_VR_LE {
        IMPLICIT_VR_LE
    } else {
        EXPLICIT_VR_LE
    };
    obj.update_meta(|m| {
        m.transfer_syntax = ts.to_string();
    });

    // Encoded in memory first: a buffered file writer would report a failed final flush only by
    // dropping it silently.
    let mut encoded = Vec::new();
    obj.write_all(&mut encoded)
        .map_err(|e| Error::invalid(dest, format!("cannot encode DICOM file: {e}")))?;
    fs::write(dest, &encoded).map_err(|e| Error::io(dest, e))
}
