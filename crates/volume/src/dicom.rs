//! DICOM series: find the files, group them by series, stack their frames into one volume with an
//! exact voxel→RAS+ affine, and write a modified volume back as the same instances.
//!
//! - [`scan`] lists the series found under some paths ([`SeriesSummary`]), so a caller can let
//!   the user pick one; [`load_series`] loads that one; [`load`] loads them all.
//! - Classic single-frame series and enhanced multi-frame images (per-frame and shared functional
//!   groups) are read; native, RLE, JPEG and JPEG 2000 transfer syntaxes are decoded.
//! - Voxels keep the stored integers; RescaleSlope/Intercept become [`crate::Scaling`].
//! - Several images at each position (echoes, phases, time points) make a 4-D volume, `t` in
//!   the order of echo number, temporal position, acquisition number and instance number.
//! - Gantry tilt with even spacing gives an exact sheared affine. Uneven slice spacing on one
//!   line (slabs of different thickness, with or without tilt) keeps its slices, with the affine
//!   at the average pitch and [`crate::SlicePositions`] saying where each slice really is.
//!   Nothing is resampled. A different number of images at different positions, or origins
//!   off one line, are refused.
//! - [`save`] writes one file per input instance with new pixel data (see [`save`] for exactly
//!   what changes).
//!
//! ```no_run
//! use defacer_volume::dicom;
//! let inputs = vec!["study/".into()];
//! for s in dicom::scan(&inputs)? {
//!     println!("{} {} {} ({} files)", s.uid, s.modality, s.description, s.files);
//! }
//! let uid = dicom::scan(&inputs)?[0].uid.clone();
//! let vol = dicom::load_series(&inputs, &uid)?;
//! dicom::save(&vol, "defaced/".as_ref(), &Default::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod instance;
mod pixels;
mod stack;
mod write;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_object::DefaultDicomObject;

use ndarray::Array4;
use rayon::prelude::*;

use crate::{DataType, Error, Modality, Result, Source, Volume, Voxels};
use instance::{probe, Instance, Probe};
use stack::Placed;

pub use write::{derive_uid, save};

/// A series found by [`scan`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    /// SeriesInstanceUID: what [`load_series`] takes.
    pub uid: String,
    pub series_number: Option<i64>,
    pub description: String,
    /// Modality as written in the files (`MR`, `CT`, ...).
    pub modality: String,
    /// Number of files (instances) in the series.
    pub files: usize,
    /// Number of 2-D frames over all its files.
    pub frames: usize,
    /// The first file of the series, in path order.
    pub first_file: PathBuf,
}

/// One file of a loaded series and where its frames went in the volume.
#[derive(Debug, Clone)]
pub struct SeriesInstance {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    /// For each frame of the file, in file order: its slice index `k` in the volume.
    pub slices: Vec<usize>,
    /// For each frame of the file, in file order: its volume index `t` (always 0 for a 3-D
    /// series; echoes, phases or time points of a 4-D series are ordered by echo number,
    /// temporal position, acquisition number, then instance number).
    pub volumes: Vec<usize>,
    /// The file's attributes without its pixel data, and what the loader read from them.
    header: Header,
}

/// A parsed file without PixelData, kept so that saving writes back exactly what was read even
/// if the input files change or disappear in between, without parsing them again.
#[derive(Clone)]
struct Header {
    object: Arc<DefaultDicomObject>,
    info: Arc<Instance>,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Header({} elements)", self.object.iter().count())
    }
}

/// Pixels of one file, decoded, and its header.
struct Decoded {
    pixels: Vec<u8>,
    header: Header,
}

/// A DICOM series as read: its files, where each frame went, and their attributes (without the
/// pixel data, which lives only in the volume's voxels): what is needed to write it back.
#[derive(Debug, Clone)]
pub struct DicomSeries {
    pub series_uid: String,
    /// Files in path order.
    pub instances: Vec<SeriesInstance>,
    /// Angle in degrees between the slice normal and the slice-to-slice direction (gantry tilt);
    /// non-zero means the affine is sheared.
    pub tilt_degrees: f64,
    /// Geometry and scaling as read: the files keep them on save, so a volume whose affine or
    /// scaling was changed cannot be written back as this series.
    affine: crate::Affine,
    slice_positions: Option<crate::SlicePositions>,
    scaling: crate::Scaling,
}

impl DicomSeries {
    /// The first file of the series.
    pub fn path(&self) -> &Path {
        self.instances
            .first()
            .map_or(Path::new(""), |i| i.path.as_path())
    }

    /// What [`save`] changes to de-identify the series with `opts`: every attribute removed,
    /// emptied or replaced in any of its files, each once, by name (never with its old value).
    /// Computed on copies of the headers read, exactly as the writer does it.
    pub fn identifying_fields(&self, opts: &defacer_deid::Options) -> Vec<defacer_deid::Change> {
        // every header is de-identified on a copy, as `save` does it (in parallel: a series
        // has hundreds); the union of sets does not depend on the order
        self.instances
            .par_iter()
            .map(|inst| defacer_deid::deidentify(&mut (*inst.header.object).clone(), opts))
            .reduce(std::collections::BTreeSet::new, |mut a, b| {
                a.extend(b);
                a
            })
            .into_iter()
            .collect()
    }
}

/// Lists every series under `paths` (files, or directories searched recursively) without
/// decoding pixels.
pub fn scan(paths: &[PathBuf]) -> Result<Vec<SeriesSummary>> {
    let found = read_instances(paths, true, |_| false)?;
    Ok(group(&found)
        .into_iter()
        .map(|members| {
            let first = &found[members[0]].0;
            SeriesSummary {
                uid: first.series_uid.clone(),
                series_number: first.series_number,
                description: first.series_description.clone(),
                modality: first.modality.clone(),
                files: members.len(),
                frames: members.iter().map(|&m| found[m].0.frames.len()).sum(),
                first_file: first.path.clone(),
            }
        })
        .collect())
}

/// Loads every series under `paths`, one volume per SeriesInstanceUID.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Volume>> {
    let found = read_instances(paths, false, |_| true)?;
    group(&found)
        .into_iter()
        .map(|members| assemble(&found, &members))
        .collect()
}

/// Loads the series with SeriesInstanceUID `uid` from `paths`.
pub fn load_series(paths: &[PathBuf], uid: &str) -> Result<Volume> {
    let found = read_instances(paths, false, |i| i.series_uid == uid)?;
    let groups = group(&found);
    let members = groups
        .into_iter()
        .find(|m| found[m[0]].0.series_uid == uid)
        .ok_or_else(|| {
            Error::invalid(
                first_path(paths),
                format!("no series with SeriesInstanceUID {uid}"),
            )
        })?;
    assemble(&found, &members)
}

fn first_path(paths: &[PathBuf]) -> &Path {
    paths.first().map(|p| p.as_path()).unwrap_or(Path::new(""))
}

/// A file to look at, and whether the user named it (then it must be a DICOM image).
struct Candidate {
    path: PathBuf,
    named: bool,
}

fn walk(dir: &Path, out: &mut Vec<Candidate>, seen: &mut HashSet<PathBuf>) -> Result<()> {
    // A symbolic link back to a parent would otherwise recurse forever.
    let real = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::new();
    for e in entries {
        paths.push(e.map_err(|e| Error::io(dir, e))?.path());
    }
    // Sorted so that everything downstream (ties, error messages, output names) is deterministic.
    paths.sort();
    for p in paths {
        let meta = fs::metadata(&p).map_err(|e| Error::io(&p, e))?;
        if meta.is_dir() {
            walk(&p, out, seen)?;
        } else if meta.is_file() {
            out.push(Candidate {
                path: p,
                named: false,
            });
        }
    }
    Ok(())
}

fn candidates(paths: &[PathBuf]) -> Result<Vec<Candidate>> {
    if paths.is_empty() {
        return Err(Error::invalid(Path::new(""), "no input paths given"));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            walk(p, &mut out, &mut seen)?;
        } else {
            out.push(Candidate {
                path: p.clone(),
                named: true,
            });
        }
    }
    Ok(out)
}

/// What one candidate file turned out to hold.
enum Found {
    NotDicom,
    NotImage,
    Image(Box<Instance>, Option<Decoded>),
}

/// Reads every DICOM image under `paths`; pixels are decoded for those `decode` selects (never
/// with `header_only`, which skips reading pixel data).
fn read_instances(
    paths: &[PathBuf],
    header_only: bool,
    decode: impl Fn(&Instance) -> bool + Sync,
) -> Result<Vec<(Instance, Option<Decoded>)>> {
    let cands = candidates(paths)?;
    let read: Vec<Result<Found>> = cands
        .par_iter()
        .map(|c| match probe(&c.path, header_only)? {
            Probe::NotDicom if c.named => Err(Error::invalid(
                &c.path,
                "not a DICOM file (no DICM marker after the preamble)",
            )),
            Probe::NotImage if c.named => Err(Error::invalid(
                &c.path,
                "DICOM file without an image (no PixelData)",
            )),
            Probe::NotDicom => Ok(Found::NotDicom),
            Probe::NotImage => Ok(Found::NotImage),
            Probe::Image(inst, mut obj) => {
                let data = if !header_only && decode(&inst) {
                    inst.check_supported()?;
                    let pixels = pixels::decode_le(&inst, &obj)?;
                    obj.remove_element(dicom_dictionary_std::tags::PIXEL_DATA);
                    let header = Header {
                        object: Arc::new(*obj),
                        info: Arc::new((*inst).clone()),
                    };
                    Some(Decoded { pixels, header })
                } else {
                    None
                };
                Ok(Found::Image(inst, data))
            }
        })
        .collect();
    // The first error in path order, whichever thread met it first.
    let read = read.into_iter().collect::<Result<Vec<Found>>>()?;
    let non_images = read.iter().filter(|f| matches!(f, Found::NotImage)).count();
    let found: Vec<(Instance, Option<Decoded>)> = read
        .into_iter()
        .filter_map(|f| match f {
            Found::Image(inst, data) => Some((*inst, data)),
            Found::NotDicom | Found::NotImage => None,
        })
        .collect();
    if found.is_empty() {
        let problem = if non_images > 0 {
            format!("no DICOM images found ({non_images} DICOM files without pixel data)")
        } else {
            "no DICOM files found".to_string()
        };
        return Err(Error::invalid(first_path(paths), problem));
    }
    Ok(found)
}

/// Indices of the instances of each series, series ordered by SeriesNumber then UID, instances
/// in path order.
fn group(found: &[(Instance, Option<Decoded>)]) -> Vec<Vec<usize>> {
    let mut by_uid: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (inst, _)) in found.iter().enumerate() {
        by_uid.entry(inst.series_uid.as_str()).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_uid.into_values().collect();
    groups.sort_by_key(|m| {
        (
            found[m[0]].0.series_number,
            found[m[0]].0.series_uid.clone(),
        )
    });
    groups
}

fn modality_of(s: &str) -> Modality {
    match s {
        "CT" => Modality::Ct,
        "MR" => Modality::Mr,
        _ => Modality::Unknown,
    }
}

/// Builds the volume of one series from its decoded instances.
fn assemble(found: &[(Instance, Option<Decoded>)], members: &[usize]) -> Result<Volume> {
    let first = &found[members[0]].0;
    let datatype = pixels::datatype_of(first)?;
    for &m in members {
        let inst = &found[m].0;
        if (
            inst.rows,
            inst.columns,
            inst.bits_allocated,
            inst.pixel_representation,
        ) != (
            first.rows,
            first.columns,
            first.bits_allocated,
            first.pixel_representation,
        ) {
            return Err(Error::invalid(
                &inst.path,
                format!(
                    "mixed geometry in one series: this file has {}x{} images of {} bits (signed: {}), {} has {}x{} of {} bits (signed: {})",
                    inst.columns, inst.rows, inst.bits_allocated, inst.pixel_representation == 1,
                    first.path.display(),
                    first.columns, first.rows, first.bits_allocated, first.pixel_representation == 1,
                ),
            ));
        }
    }

    // Every frame of every file, in file order.
    let mut frames: Vec<(usize, usize)> = Vec::new();
    for &m in members {
        for f in 0..found[m].0.frames.len() {
            frames.push((m, f));
        }
    }
    let placed: Vec<Placed> = frames
        .iter()
        .map(|&(m, f)| Placed {
            path: &found[m].0.path,
            frame: &found[m].0.frames[f],
        })
        .collect();
    let stacked = stack::stack(&placed)?;

    let scaling = placed[0].frame.scaling;
    if let Some(p) = placed.iter().find(|p| p.frame.scaling != scaling) {
        return Err(Error::unsupported(
            p.path,
            format!(
                "RescaleSlope/Intercept {}/{} differ from {}/{} in {}: one scaling per volume is required",
                p.frame.scaling.slope, p.frame.scaling.intercept, scaling.slope, scaling.intercept,
                placed[0].path.display()
            ),
        ));
    }

    // (k, t) of each frame, then the frame bytes in file order of the volume: k fastest, then t.
    let nz = stacked.grid.len();
    let nt = stacked.grid[0].len();
    let mut kt_of = vec![(0usize, 0usize); frames.len()];
    for (k, at) in stacked.grid.iter().enumerate() {
        for (t, &idx) in at.iter().enumerate() {
            kt_of[idx] = (k, t);
        }
    }
    let frame_bytes =
        first.rows as usize * first.columns as usize * (first.bits_allocated / 8) as usize;
    let mut slices: Vec<&[u8]> = Vec::with_capacity(frames.len());
    for t in 0..nt {
        for at in &stacked.grid {
            let (m, f) = frames[at[t]];
            let data = decoded(found, m)?;
            slices.push(&data[f * frame_bytes..(f + 1) * frame_bytes]);
        }
    }
    let dims = [first.columns as usize, first.rows as usize, nz, nt];
    let voxels = build_voxels(datatype, dims, &slices)
        .ok_or_else(|| Error::invalid(&first.path, "pixel data does not fill the volume"))?;

    let mut instances = Vec::with_capacity(members.len());
    let mut next = 0;
    for &m in members {
        let inst = &found[m].0;
        let n = inst.frames.len();
        instances.push(SeriesInstance {
            path: inst.path.clone(),
            sop_instance_uid: inst.sop_instance_uid.clone(),
            slices: kt_of[next..next + n].iter().map(|&(k, _)| k).collect(),
            volumes: kt_of[next..next + n].iter().map(|&(_, t)| t).collect(),
            header: found[m]
                .1
                .as_ref()
                .map(|d| d.header.clone())
                .ok_or_else(|| Error::invalid(&inst.path, "pixel data not decoded"))?,
        });
        next += n;
    }
    Ok(Volume {
        voxels,
        affine: stacked.affine,
        slice_positions: stacked.slice_positions.clone(),
        scaling,
        modality: modality_of(&first.modality),
        source: Source::Dicom(DicomSeries {
            series_uid: first.series_uid.clone(),
            instances,
            tilt_degrees: stacked.tilt_degrees,
            affine: stacked.affine,
            slice_positions: stacked.slice_positions,
            scaling,
        }),
    })
}

fn decoded(found: &[(Instance, Option<Decoded>)], m: usize) -> Result<&[u8]> {
    found[m]
        .1
        .as_ref()
        .map(|d| d.pixels.as_slice())
        .ok_or_else(|| Error::invalid(&found[m].0.path, "pixel data not decoded"))
}

/// A stored sample read from little-endian bytes.
trait FromLe: Sized {
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
}
macro_rules! from_le {
    ($t:ty) => {
        impl FromLe for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
from_le!(u8);
from_le!(i8);
from_le!(u16);
from_le!(i16);
from_le!(u32);
from_le!(i32);

fn stack_samples<T: FromLe + crate::Sample>(
    dims: [usize; 4],
    slices: &[&[u8]],
) -> Option<Array4<T>> {
    let mut v = Vec::with_capacity(dims.iter().product());
    for s in slices {
        v.extend(s.chunks_exact(T::SIZE).map(T::from_le));
    }
    use ndarray::ShapeBuilder;
    Array4::from_shape_vec((dims[0], dims[1], dims[2], dims[3]).f(), v).ok()
}

fn build_voxels(datatype: DataType, dims: [usize; 4], slices: &[&[u8]]) -> Option<Voxels> {
    Some(match datatype {
        DataType::U8 => Voxels::U8(stack_samples(dims, slices)?),
        DataType::I8 => Voxels::I8(stack_samples(dims, slices)?),
        DataType::U16 => Voxels::U16(stack_samples(dims, slices)?),
        DataType::I16 => Voxels::I16(stack_samples(dims, slices)?),
        DataType::U32 => Voxels::U32(stack_samples(dims, slices)?),
        DataType::I32 => Voxels::I32(stack_samples(dims, slices)?),
        DataType::F32 | DataType::F64 => return None,
    })
}
