//! NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`, `.hdr`/`.img`). TO BE IMPLEMENTED.

use std::path::{Path, PathBuf};

use crate::{Result, SaveOptions, Volume};

/// What is needed to write a NIfTI file back exactly as it came.
#[derive(Debug, Clone)]
pub struct NiftiSource {
    pub path: PathBuf,
}

impl NiftiSource {
    pub fn format_name(&self) -> &'static str {
        "nifti1"
    }
}

/// True for names ending in `.nii`, `.nii.gz`, `.hdr`, `.img` (and `.hdr.gz`/`.img.gz`).
pub fn is_nifti_path(p: &Path) -> bool {
    let n = p.to_string_lossy().to_ascii_lowercase();
    [".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz"]
        .iter()
        .any(|e| n.ends_with(e))
}

pub fn load(path: &Path) -> Result<Volume> {
    Err(crate::Error::unsupported(
        path,
        "NIfTI reading is not implemented yet",
    ))
}

pub fn save(vol: &Volume, out: &Path, _opts: &SaveOptions) -> Result<()> {
    let _ = vol;
    Err(crate::Error::unsupported(
        out,
        "NIfTI writing is not implemented yet",
    ))
}
