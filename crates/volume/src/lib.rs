//! # defacer-volume
//!
//! Loads and saves head volumes with their exact geometry, so that a defacing tool can change a
//! few voxels and write back a file that is otherwise the one it read.
//!
//! - [`Volume`]: voxels in their stored type ([`Voxels`]), the voxel→RAS+ mm [`Affine`], the
//!   intensity [`Scaling`], the [`Modality`], and the [`Source`] needed to write the file back.
//! - [`load`] reads a NIfTI-1/2 file (`.nii`, `.nii.gz`, `.hdr`/`.img`) or DICOM series from a
//!   file, a directory (searched recursively) or a list of files; [`save`] writes a volume back
//!   in the format it came in, atomically (temporary file, then rename).
//!
//! ```no_run
//! use defacer_volume::{load, save, SaveOptions};
//! let vols = load(&["head.nii.gz".into()])?;
//! let v = &vols[0];
//! println!("{:?} {} {}", v.dims(), v.datatype(), v.affine.orientation_codes());
//! save(v, "copy.nii.gz".as_ref(), &SaveOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dicom;
mod error;
mod geometry;
pub mod nifti;
pub mod output;
mod voxels;

use std::path::{Path, PathBuf};

pub use defacer_deid as deid;
pub use error::{Error, Result};
pub use geometry::{Affine, Modality, Scaling, SlicePositions, VoxelMap};
pub use voxels::{DataType, Sample, Voxels};

/// One loaded volume.
#[derive(Debug, Clone)]
pub struct Volume {
    pub voxels: Voxels,
    /// Voxel index → RAS+ world mm.
    pub affine: Affine,
    /// For a DICOM stack whose slices are not evenly spaced: where each slice lies along the
    /// affine's `k` axis (which then places slices at their average pitch). Use
    /// [`Volume::voxel_map`] to go between voxels and world.
    pub slice_positions: Option<SlicePositions>,
    pub scaling: Scaling,
    pub modality: Modality,
    /// Where it came from and what is needed to write it back unchanged.
    pub source: Source,
}

impl Volume {
    /// A volume made in memory (phantoms, derived masks): it has no source file, and [`save`]
    /// writes it as a new NIfTI-1 file.
    pub fn synthetic(voxels: Voxels, affine: Affine, scaling: Scaling, modality: Modality) -> Self {
        Volume {
            voxels,
            affine,
            slice_positions: None,
            scaling,
            modality,
            source: Source::Synthetic,
        }
    }
    /// A volume made in memory on this volume's grid (a mask of it): same affine and slice
    /// positions. Saved as a new NIfTI-1 file; when this volume was read from NIfTI, that file
    /// keeps its qform and sform codes, quaternion and pixdim.
    pub fn on_same_grid(&self, voxels: Voxels, scaling: Scaling) -> Self {
        Volume {
            voxels,
            affine: self.affine,
            slice_positions: self.slice_positions.clone(),
            scaling,
            modality: self.modality,
            source: match &self.source {
                Source::Nifti(n) => Source::OnGridOf(n.geometry()),
                Source::OnGridOf(g) => Source::OnGridOf(*g),
                Source::Dicom(_) | Source::Synthetic => Source::Synthetic,
            },
        }
    }
    pub fn dims(&self) -> [usize; 4] {
        self.voxels.dims()
    }
    /// Voxel ↔ world map, exact for unevenly spaced stacks too. `None` if the affine is
    /// singular.
    pub fn voxel_map(&self) -> Option<VoxelMap<'_>> {
        VoxelMap::new(&self.affine, self.slice_positions.as_ref())
    }
    pub fn datatype(&self) -> DataType {
        self.voxels.datatype()
    }
    /// Physical values (scaled) of frame `t` as `f32`, for analysis.
    pub fn frame_physical(&self, t: usize) -> ndarray::Array3<f32> {
        let s = self.scaling;
        if s == Scaling::IDENTITY {
            self.voxels.frame_f32(t)
        } else {
            self.voxels
                .frame_f32_with(t, |v| s.to_physical(v as f64) as f32)
        }
    }
    /// Human-readable format name: `nifti1`, `nifti2` or `dicom`.
    pub fn format(&self) -> &'static str {
        match &self.source {
            Source::Nifti(n) => n.format_name(),
            Source::Dicom(_) => "dicom",
            Source::Synthetic | Source::OnGridOf(_) => "synthetic",
        }
    }
    /// The file (NIfTI) or first file of the series (DICOM) this came from.
    pub fn path(&self) -> &Path {
        match &self.source {
            Source::Nifti(n) => &n.path,
            Source::Dicom(d) => d.path(),
            Source::Synthetic | Source::OnGridOf(_) => Path::new("<memory>"),
        }
    }
}

/// What a volume was read from, with what is needed to write it back.
#[derive(Debug, Clone)]
pub enum Source {
    Nifti(nifti::NiftiSource),
    Dicom(dicom::DicomSeries),
    /// Made in memory, not read from a file.
    Synthetic,
    /// Made in memory on the grid of a NIfTI file, whose placement it is saved with.
    OnGridOf(nifti::Geometry),
}

/// Options for [`save`].
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Written to NIfTI `descrip` (truncated to fit) and recorded as DICOM DerivationDescription;
    /// e.g. `"defaced by defacer 0.1.0"`.
    pub description: String,
    /// How DICOM attributes that can identify a person are de-identified (PS3.15 Basic
    /// Profile and options; the default is the Basic Profile alone). NIfTI ignores it: its
    /// identifying fields are always cleared.
    pub deidentification: defacer_deid::Options,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            description: format!("defacer {}", env!("CARGO_PKG_VERSION")),
            deidentification: defacer_deid::Options::default(),
        }
    }
}

/// Loads every volume found in `paths`: NIfTI files give one volume each; DICOM files and
/// directories are grouped into series (one volume per SeriesInstanceUID).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Volume>> {
    let mut out = Vec::new();
    let mut dicom_paths = Vec::new();
    for p in paths {
        if nifti::is_nifti_path(p) {
            out.push(nifti::load(p)?);
        } else {
            dicom_paths.push(p.clone());
        }
    }
    if !dicom_paths.is_empty() {
        out.extend(dicom::load(&dicom_paths)?);
    }
    Ok(out)
}

/// Writes `vol` in the format it was read from. For NIfTI, `out` is the output file (`.nii` or
/// `.nii.gz`; for `.hdr` input, `.hdr` and the `.img` beside it); for DICOM, `out` is a directory
/// that receives one file per input instance. Nothing is left at `out` if this fails.
pub fn save(vol: &Volume, out: &Path, opts: &SaveOptions) -> Result<()> {
    match &vol.source {
        Source::Nifti(_) => nifti::save(vol, out, opts),
        Source::Dicom(_) => dicom::save(vol, out, opts),
        Source::Synthetic | Source::OnGridOf(_) => nifti::save(vol, out, opts),
    }
}
