//! DICOM series reading, checked against dcm2niix (read with nibabel) on the real series.

mod dicom_support;

use defacer_testkit::{real, scratch};
use defacer_volume::dicom;
use dicom_support::*;

/// Loads a real series with us and with dcm2niix and requires the same world geometry and the
/// same stored value at every world position.
fn matches_dcm2niix(rel: &str) {
    let dir = real(rel);
    let vols = dicom::load(&[dir.clone()]).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(vols.len(), 1, "{rel}: one series expected");
    let vol = &vols[0];
    let tmp = scratch(&format!("d2n-{}", rel.replace('/', "_")));
    let (niftis, log) = dcm2niix(&dir, &tmp);
    assert_eq!(niftis.len(), 1, "{rel}: dcm2niix wrote {niftis:?}\n{log}");
    let refer = read_nifti_with_nibabel(&niftis[0], &tmp);
    let [nx, ny, nz, _] = vol.dims();
    assert_eq!(
        nx * ny * nz,
        refer.shape.iter().product::<usize>(),
        "{rel}: voxel count"
    );
    let c = compare_in_world(vol, &refer, |v| v);
    println!("{rel}: {c:?}");
    assert!(
        c.max_position_error_mm < 0.01,
        "{rel}: world positions differ by {} mm",
        c.max_position_error_mm
    );
    assert_eq!(c.outside, 0, "{rel}: voxels outside dcm2niix's grid");
    assert_eq!(c.different, 0, "{rel}: stored values differ");
    assert_eq!(c.compared, nx * ny * nz);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn philips_mprage_matches_dcm2niix() {
    matches_dcm2niix("mri/philips_mprage_t1");
}

#[test]
fn siemens_hfs_matches_dcm2niix() {
    matches_dcm2niix("mri/siemens_t1_2d_hfs");
}

#[test]
fn siemens_hfp_matches_dcm2niix() {
    matches_dcm2niix("mri/siemens_t1_2d_hfp");
}

#[test]
fn invesalius_ct_matches_dcm2niix() {
    matches_dcm2niix("ct/invesalius_ct_dicom");
}
