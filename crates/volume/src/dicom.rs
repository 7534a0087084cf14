//! DICOM series. TO BE IMPLEMENTED.

use std::path::{Path, PathBuf};

use crate::{Result, SaveOptions, Volume};

/// A DICOM series as read: the instances in slice order, and what is needed to write them back.
#[derive(Debug, Clone)]
pub struct DicomSeries {
    pub files: Vec<PathBuf>,
}

impl DicomSeries {
    pub fn path(&self) -> &Path {
        &self.files[0]
    }
}

pub fn load(paths: &[PathBuf]) -> Result<Vec<Volume>> {
    Err(crate::Error::unsupported(
        &paths[0],
        "DICOM reading is not implemented yet",
    ))
}

pub fn save(vol: &Volume, out: &Path, _opts: &SaveOptions) -> Result<()> {
    let _ = vol;
    Err(crate::Error::unsupported(
        out,
        "DICOM writing is not implemented yet",
    ))
}
