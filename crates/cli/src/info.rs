//! `defacer info`.

use std::path::PathBuf;

use clap::Args;
use defacer_volume::{Source, Volume};
use serde::Serialize;

use crate::exit;

#[derive(Args)]
pub struct InfoArgs {
    /// NIfTI files, DICOM files or folders (searched recursively for DICOM series).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per volume instead of text.
    #[arg(long)]
    json: bool,
}

/// What `info --json` prints for one volume.
#[derive(Serialize)]
struct VolumeInfo {
    path: PathBuf,
    format: &'static str,
    dims: Vec<usize>,
    voxel_size_mm: [f64; 3],
    /// Voxel → RAS+ mm, row-major.
    affine: [[f64; 4]; 4],
    orientation: String,
    datatype: String,
    modality: String,
    scl_slope: f64,
    scl_inter: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_instance_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<usize>,
    /// For an unevenly spaced stack: each slice's world position along the stack, in mm from the
    /// first (the affine places them at the average pitch).
    #[serde(skip_serializing_if = "Option::is_none")]
    slice_offsets_mm: Option<Vec<f64>>,
}

impl VolumeInfo {
    fn of(v: &Volume) -> Self {
        let d = v.dims();
        let dims = if d[3] > 1 {
            d.to_vec()
        } else {
            d[..3].to_vec()
        };
        let (uid, files) = match &v.source {
            Source::Dicom(s) => (Some(s.series_uid.clone()), Some(s.instances.len())),
            _ => (None, None),
        };
        VolumeInfo {
            path: v.path().to_path_buf(),
            format: v.format(),
            dims,
            voxel_size_mm: v.affine.voxel_size(),
            affine: v.affine.to_row_major(),
            orientation: v.affine.orientation_codes(),
            datatype: v.datatype().name().to_string(),
            modality: v.modality.to_string(),
            scl_slope: v.scaling.slope,
            scl_inter: v.scaling.intercept,
            series_instance_uid: uid,
            files,
            slice_offsets_mm: v.slice_positions.as_ref().map(|s| {
                let pitch = v.affine.voxel_size()[2];
                s.as_slice().iter().map(|k| k * pitch).collect()
            }),
        }
    }

    fn line(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        let vs = self.voxel_size_mm;
        let mut s = format!(
            "{}: {}, {} voxels, {:.3}×{:.3}×{:.3} mm, {}, {}, modality {}",
            self.path.display(),
            self.format,
            dims.join("×"),
            vs[0],
            vs[1],
            vs[2],
            self.orientation,
            self.datatype,
            self.modality
        );
        if self.scl_slope != 1.0 || self.scl_inter != 0.0 {
            s += &format!(", scaling ×{} +{}", self.scl_slope, self.scl_inter);
        }
        if let (Some(uid), Some(n)) = (&self.series_instance_uid, self.files) {
            s += &format!(", series {uid} ({n} files)");
        }
        if let Some(off) = &self.slice_offsets_mm {
            let gaps = off.windows(2).map(|w| w[1] - w[0]);
            let (lo, hi) = gaps.fold((f64::INFINITY, 0.0f64), |(l, h), g| (l.min(g), h.max(g)));
            s += &format!(", uneven slice spacing {lo:.2} to {hi:.2} mm");
        }
        s
    }
}

pub fn run(args: &InfoArgs) -> u8 {
    let mut infos = Vec::new();
    let mut failed = false;
    // Each path on its own, so one bad file is named and does not hide the others.
    for p in &args.paths {
        match defacer_volume::load(std::slice::from_ref(p)) {
            Ok(vols) => infos.extend(vols.iter().map(VolumeInfo::of)),
            Err(e) => {
                crate::report_error(&e);
                failed = true;
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&infos) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                crate::report_error(&e);
                return exit::ERROR;
            }
        }
    } else {
        for i in &infos {
            println!("{}", i.line());
        }
    }
    if failed {
        exit::ERROR
    } else {
        exit::OK
    }
}
