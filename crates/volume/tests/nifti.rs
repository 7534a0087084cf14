//! NIfTI reading and writing checked against nibabel on real volumes.

mod nifti_support;

use defacer_testkit::{real, scratch};
use defacer_volume::nifti;
use nifti_support::*;

/// Loads `path` with defacer and nibabel and checks they agree on geometry, type, scaling and
/// every voxel value.
fn assert_matches_nibabel(path: &std::path::Path, tmp: &std::path::Path) {
    let dump = tmp.join("nibabel-voxels.bin");
    let nib = nibabel(path, Some(&dump));
    let vol = nifti::load(path).unwrap_or_else(|e| panic!("{e}"));
    let diff = affine_diff(&vol.affine.to_row_major(), &nib.affine);
    assert!(
        diff <= 1e-4,
        "{}: affine differs from nibabel's by {diff}",
        path.display()
    );
    let dims = vol.dims();
    let ours: Vec<usize> = dims[..nib.shape.len()].to_vec();
    assert_eq!(ours, nib.shape, "{}: shape", path.display());
    assert!(dims[nib.shape.len()..].iter().all(|&d| d == 1));
    assert_eq!(
        vol.datatype().name(),
        nib.dtype,
        "{}: dtype",
        path.display()
    );
    let (slope, inter) = (nib.slope.unwrap_or(1.0), nib.inter.unwrap_or(0.0));
    assert_eq!(
        (vol.scaling.slope, vol.scaling.intercept),
        (slope, inter),
        "{}",
        path.display()
    );
    let theirs = std::fs::read(&dump).unwrap();
    let mine = vol.voxels.to_le_bytes();
    assert_eq!(mine.len(), theirs.len(), "{}: data size", path.display());
    assert!(
        mine == theirs,
        "{}: voxel values differ from nibabel's",
        path.display()
    );
}

#[test]
fn real_volumes_match_nibabel() {
    let tmp = scratch("nifti-real");
    for rel in REAL_NIFTI {
        assert_matches_nibabel(&real(rel), &tmp);
    }
}
