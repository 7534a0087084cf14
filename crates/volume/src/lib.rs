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
pub use voxels::{DataType, FrameSamples, Sample, Voxels};

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
    /// The physical values of frame `t` read where they are stored, one voxel at a time:
    /// [`Volume::frame_physical`] voxel for voxel, to the bit, without a converted copy of the
    /// frame. `None` unless the voxels are stored x fastest (see [`Voxels::frame_samples`]).
    pub fn physical_frame(&self, t: usize) -> Option<PhysicalFrame<'_>> {
        Some(PhysicalFrame {
            samples: self.voxels.frame_samples(t)?,
            scaling: self.scaling,
        })
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

/// One frame's physical values, read in place (see [`Volume::physical_frame`]).
#[derive(Debug, Clone, Copy)]
pub struct PhysicalFrame<'a> {
    samples: FrameSamples<'a>,
    scaling: Scaling,
}

/// `$body` with `$d` bound to the samples of `$samples` (a [`FrameSamples`]), whatever their
/// type: one arm per sample type, each compiled for its own.
macro_rules! each_sample_type {
    ($samples:expr, $d:ident => $body:expr) => {
        match $samples {
            FrameSamples::U8($d) => $body,
            FrameSamples::I8($d) => $body,
            FrameSamples::U16($d) => $body,
            FrameSamples::I16($d) => $body,
            FrameSamples::U32($d) => $body,
            FrameSamples::I32($d) => $body,
            FrameSamples::F32($d) => $body,
            FrameSamples::F64($d) => $body,
        }
    };
}

impl PhysicalFrame<'_> {
    /// `visitor` run with a reader of the frame's values for its sample type: the value of
    /// voxel `i` (x fastest) as [`Volume::frame_physical`] gives it (the sample through `f32`,
    /// then scaled in `f64` and rounded to `f32`). The match over sample types and scalings is
    /// taken once here instead of at every value read.
    pub fn visit<V: FrameVisitor>(&self, visitor: V) -> V::Output {
        let s = self.scaling;
        macro_rules! go {
            ($d:expr) => {{
                let d = $d;
                if s == Scaling::IDENTITY {
                    visitor.visit(|i: usize| d[i].to_f64() as f32)
                } else {
                    visitor.visit(|i: usize| s.to_physical(d[i].to_f64() as f32 as f64) as f32)
                }
            }};
        }
        each_sample_type!(self.samples, d => go!(d))
    }
}

impl PhysicalFrame<'_> {
    /// The values of voxels `start..start + out.len()` (x fastest) into `out`, as
    /// [`Self::visit`]'s reader gives them, in one loop over the run's samples. For short runs
    /// read often (a row at a time): through a visitor, whether the reader was inlined into the
    /// caller's loop varied from build to build with unrelated code, and a row then cost a call
    /// per value (the mask's native stage took three times as long).
    pub fn read_run(&self, start: usize, out: &mut [f32]) {
        let s = self.scaling;
        macro_rules! go {
            ($d:expr) => {{
                let d = &$d[start..start + out.len()];
                if s == Scaling::IDENTITY {
                    for (o, x) in out.iter_mut().zip(d) {
                        *o = x.to_f64() as f32;
                    }
                } else {
                    for (o, x) in out.iter_mut().zip(d) {
                        *o = s.to_physical(x.to_f64() as f32 as f64) as f32;
                    }
                }
            }};
        }
        each_sample_type!(self.samples, d => go!(d))
    }
}

/// Work on a frame's values read through one concrete reader: see [`PhysicalFrame::visit`].
pub trait FrameVisitor {
    type Output;
    /// Runs with `read(i)`, the physical value of voxel `i` (x fastest).
    fn visit(self, read: impl Fn(usize) -> f32 + Sync) -> Self::Output;
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array4, ShapeBuilder};

    /// Every value through a visitor's reader.
    struct All(usize);

    impl FrameVisitor for All {
        type Output = Vec<f32>;
        fn visit(self, read: impl Fn(usize) -> f32 + Sync) -> Vec<f32> {
            (0..self.0).map(read).collect()
        }
    }

    /// Reading in place (through a visitor) gives `frame_physical`'s values to the bit, for
    /// every sample type, with and without scaling, in every frame; and only where the voxels
    /// are stored x fastest.
    #[test]
    fn a_physical_frame_reads_what_frame_physical_converts() {
        fn check<T: Sample>(make: impl Fn(usize) -> T)
        where
            Voxels: From<Array4<T>>,
        {
            let dims = (5, 4, 3, 2);
            let fortran =
                Array4::from_shape_fn(dims.f(), |(i, j, k, t)| make(i + 5 * j + 20 * k + 60 * t));
            for scaling in [
                Scaling::IDENTITY,
                Scaling {
                    slope: 0.37,
                    intercept: -1024.5,
                },
            ] {
                let vol = Volume::synthetic(
                    Voxels::from(fortran.clone()),
                    Affine::identity(),
                    scaling,
                    Modality::Unknown,
                );
                for t in 0..2 {
                    let frame = vol.physical_frame(t).expect("stored x fastest");
                    let whole = vol.frame_physical(t);
                    // (a read past the frame would panic)
                    let visited = frame.visit(All(whole.len()));
                    // and in runs, a row and a half at a time from every start
                    let mut runs = vec![f32::NAN; whole.len()];
                    for start in (0..whole.len()).step_by(7) {
                        let end = (start + 7).min(whole.len());
                        frame.read_run(start, &mut runs[start..end]);
                    }
                    for ((i, j, k), v) in whole.indexed_iter() {
                        let at = i + 5 * (j + 4 * k);
                        assert_eq!(visited[at].to_bits(), v.to_bits());
                        assert_eq!(runs[at].to_bits(), v.to_bits());
                    }
                }
                assert!(vol.physical_frame(2).is_none());
            }
            let c_order = Array4::from_shape_fn(dims, |(i, j, k, t)| make(i + j + k + t));
            let vol = Volume::synthetic(
                Voxels::from(c_order),
                Affine::identity(),
                Scaling::IDENTITY,
                Modality::Unknown,
            );
            assert!(vol.physical_frame(0).is_none());
        }
        check(|n| n as u8);
        check(|n| n as i8 - 60);
        check(|n| (n * 1000) as u16);
        check(|n| n as i16 * -300);
        check(|n| (n as u32) << 20);
        check(|n| n as i32 * -70_000);
        check(|n| n as f32 * 0.1 - 3.0);
        check(|n| n as f64 * 1e-3 + 1e10);
    }
}
