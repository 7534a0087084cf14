//! DICOM series reading, checked against dcm2niix (read with nibabel) on the real series.

mod dicom_support;

use defacer_testkit::{real, scratch};
use defacer_volume::dicom;
use dicom_support::*;

/// Loads a real series with us and with dcm2niix and requires the same world geometry and the
/// same stored value at every world position.
fn matches_dcm2niix(rel: &str) {
    let dir = real(rel);
    let vols = dicom::load(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{rel}: {e}"));
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
    let slice_err = compare_with_pydicom(vol, &tmp);
    println!("{rel}: largest slice corner difference from pydicom {slice_err:.2e} mm");
    assert!(
        slice_err < 0.01,
        "{rel}: slice corners differ from pydicom by {slice_err} mm"
    );
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

/// The tilted CT has two slabs (4.22 mm, then 7.38 mm apart along the table, one 1.14 mm step
/// between them): no affine places its slices. It loads with its slices as stored; every slice's
/// corners, mapped through the slice positions, are where pydicom's reading of that file puts
/// them, and every voxel is the file's.
#[test]
fn tilted_ct_with_uneven_spacing_keeps_each_slice_where_it_is() {
    let dir = real("ct/ge_tilted_ct");
    let vols = dicom::load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(vols.len(), 1);
    let vol = &vols[0];
    assert_eq!(vol.dims(), [512, 512, 28, 1]);
    let slices = vol
        .slice_positions
        .as_ref()
        .expect("uneven spacing is recorded");
    let pitch = vol.affine.voxel_size()[2];
    let (lo, hi) = slices.gap_range();
    println!(
        "gaps {:.2} to {:.2} mm, average {pitch:.3} mm",
        lo * pitch,
        hi * pitch
    );
    assert!((lo * pitch - 1.14).abs() < 0.01 && (hi * pitch - 7.38).abs() < 0.01);
    let tmp = scratch("tilted-uneven");
    let err = compare_with_pydicom(vol, &tmp);
    println!("tilted uneven: largest slice corner difference from pydicom {err:.2e} mm");
    assert!(err < 0.01, "slice corners differ from pydicom by {err} mm");
    // The affine alone would misplace the slices by millimetres: the table is needed.
    let even = defacer_volume::VoxelMap::new(&vol.affine, None).unwrap();
    let map = vol.voxel_map().unwrap();
    let off = (0..28)
        .map(|k| {
            let (a, b) = (
                even.to_world([0.0, 0.0, k as f64]),
                map.to_world([0.0, 0.0, k as f64]),
            );
            (0..3).map(|x| (a[x] - b[x]).powi(2)).sum::<f64>().sqrt()
        })
        .fold(0.0, f64::max);
    assert!(off > 5.0, "the even affine is only {off} mm off");
    // The independent reference sees the same problem.
    let (_, log) = dcm2niix(&dir, &tmp);
    assert!(
        log.contains("Interslice distance varies"),
        "dcm2niix did not flag it:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Origins that do not lie on one line are not one stack: refused with the file named.
#[test]
fn slices_off_one_line_are_refused() {
    let dir = real("ct/ge_tilted_ct");
    let tmp = scratch("off-line");
    let files: Vec<_> = (1..=6).map(|n| dir.join(format!("{n:02}.dcm"))).collect();
    let mut copies = Vec::new();
    for (n, f) in files.iter().enumerate() {
        let out = tmp.join(format!("{n:02}.dcm"));
        std::fs::copy(f, &out).unwrap();
        copies.push(out);
    }
    // Shift one slice 3 mm sideways (patient x).
    python(
        "import sys, pydicom\nds = pydicom.dcmread(sys.argv[1])\np = [float(x) for x in ds.ImagePositionPatient]\nds.ImagePositionPatient = [p[0] + 3.0, p[1], p[2]]\nds.save_as(sys.argv[1])\n",
        &[copies[3].to_str().unwrap()],
    );
    let err = dicom::load(&copies).expect_err("origins off one line must be refused");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("do not lie on one line"), "{msg}");
    assert!(err.path().starts_with(&tmp), "{msg}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The first 14 slices of the tilted CT are evenly spaced (4.22 mm along the table, 18.5° off the
/// slice normal): one sheared affine places every slice exactly.
#[test]
fn tilted_ct_with_even_spacing_gets_exact_sheared_affine() {
    let dir = real("ct/ge_tilted_ct");
    let files: Vec<_> = (1..=14).map(|n| dir.join(format!("{n:02}.dcm"))).collect();
    let vols = dicom::load(&files).unwrap();
    assert_eq!(vols.len(), 1);
    let vol = &vols[0];
    assert_eq!(vol.dims(), [512, 512, 14, 1]);
    let defacer_volume::Source::Dicom(series) = &vol.source else {
        panic!()
    };
    assert!(
        (series.tilt_degrees - 18.5).abs() < 0.05,
        "tilt {}",
        series.tilt_degrees
    );
    let tmp = scratch("tilted-even");
    let err = compare_with_pydicom(vol, &tmp);
    println!("tilted even subset: largest slice corner difference from pydicom {err:.2e} mm");
    assert!(err < 0.01, "slice corners differ from pydicom by {err} mm");
    // Sheared: the slice axis is not perpendicular to the slice plane.
    let m = vol.affine.0;
    let kcol = nalgebra::Vector3::new(m[(0, 2)], m[(1, 2)], m[(2, 2)]);
    let normal = nalgebra::Vector3::new(m[(0, 0)], m[(1, 0)], m[(2, 0)])
        .cross(&nalgebra::Vector3::new(m[(0, 1)], m[(1, 1)], m[(2, 1)]))
        .normalize();
    let angle = normal.dot(&kcol.normalize()).abs().acos().to_degrees();
    assert!((angle - 18.5).abs() < 0.05, "shear angle {angle}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The CT series and the NIfTI file hold the same scan: same Hounsfield units at the same world
/// positions (the NIfTI read by nibabel).
#[test]
fn invesalius_dicom_matches_its_nifti_in_world_space() {
    let vols = dicom::load(&[real("ct/invesalius_ct_dicom")]).unwrap();
    let vol = &vols[0];
    assert_eq!(vol.modality, defacer_volume::Modality::Ct);
    let tmp = scratch("invesalius-nifti");
    let refer = read_nifti_with_nibabel(&real("ct/invesalius_ct.nii.gz"), &tmp);
    let s = vol.scaling;
    let (rs, ri) = (refer.scl_slope, refer.scl_inter);
    // Compare physical values: ours through RescaleSlope/Intercept, theirs through scl_*.
    let refer_hu = NiftiRef {
        data: refer
            .data
            .iter()
            .map(|&v| (v as f64 * rs + ri).round() as i64)
            .collect(),
        ..refer
    };
    let c = compare_in_world(vol, &refer_hu, |v| s.to_physical(v as f64).round() as i64);
    println!("invesalius DICOM vs NIfTI: {c:?}");
    assert!(c.max_position_error_mm < 0.01, "{c:?}");
    assert_eq!(c.outside, 0);
    assert_eq!(c.different, 0);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn scan_lists_series_and_load_series_picks_one() {
    let a = real("mri/siemens_t1_2d_hfs");
    let b = real("mri/siemens_t1_2d_hfp");
    let list = dicom::scan(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for s in &list {
        assert_eq!(s.files, 35);
        assert_eq!(s.frames, 35);
        assert_eq!(s.modality, "MR");
        assert!(!s.description.is_empty());
    }
    assert_ne!(list[0].uid, list[1].uid);
    let prone = list.iter().find(|s| s.first_file.starts_with(&b)).unwrap();
    let vol = dicom::load_series(&[a.clone(), b.clone()], &prone.uid).unwrap();
    assert_eq!(vol.dims(), [256, 256, 35, 1]);
    assert!(vol.path().starts_with(&b));
    let both = dicom::load(&[a.clone(), b]).unwrap();
    assert_eq!(both.len(), 2);
    let err = dicom::load_series(&[a], "1.2.3.4").unwrap_err().to_string();
    assert!(err.contains("1.2.3.4"), "{err}");
}
