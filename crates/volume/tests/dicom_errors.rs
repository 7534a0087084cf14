//! Bad DICOM input: each case must fail with one line that names the offending file or folder.

mod dicom_support;

use std::path::{Path, PathBuf};

use defacer_testkit::{real, scratch};
use defacer_volume::{dicom, Error};
use dicom_support::*;

fn siemens_copy(name: &str) -> (PathBuf, PathBuf) {
    let tmp = scratch(name);
    let dir = tmp.join("series");
    copy_dir(&real("mri/siemens_t1_2d_hfs"), &dir);
    (tmp, dir)
}

fn first_file(dir: &Path) -> PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.remove(0)
}

fn assert_one_line_naming(err: &Error, path: &Path, words: &str) {
    let msg = err.to_string();
    println!("{msg}");
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert_eq!(err.path(), path, "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(words), "expected '{words}' in: {msg}");
}

#[test]
fn a_named_file_that_is_not_dicom_is_an_error_but_is_skipped_inside_a_folder() {
    let (tmp, dir) = siemens_copy("err-not-dicom");
    let readme = dir.join("README");
    std::fs::write(&readme, "these are DICOM files\n").unwrap();
    let vols = dicom::load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        vols[0].dims(),
        [256, 256, 35, 1],
        "README inside the folder is skipped"
    );
    let err = dicom::load(std::slice::from_ref(&readme)).unwrap_err();
    assert_one_line_naming(&err, &readme, "not a DICOM file");
    // A DICOM object that is no image (like a DICOMDIR or a report) is skipped in a folder too.
    let report = dir.join("report.dcm");
    pydicom_edit(
        &first_file(&dir),
        &report,
        "for kw in ['PixelData', 'Rows', 'Columns']:\n    delattr(ds, kw)\nds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.88.11'",
    );
    assert_eq!(
        dicom::load(std::slice::from_ref(&dir)).unwrap()[0].dims(),
        [256, 256, 35, 1]
    );
    let err = dicom::load(std::slice::from_ref(&report)).unwrap_err();
    assert_one_line_naming(&err, &report, "without an image");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_dicom_image_without_pixel_data_is_an_error() {
    let (tmp, dir) = siemens_copy("err-no-pixels");
    let f = first_file(&dir);
    pydicom_edit(&f.clone(), &f, "del ds.PixelData");
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    assert_one_line_naming(&err, &f, "no pixel data");
    let err = dicom::load(std::slice::from_ref(&f)).unwrap_err();
    assert_one_line_naming(&err, &f, "no pixel data");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn mixed_orientation_in_one_series_is_an_error() {
    let (tmp, dir) = siemens_copy("err-mixed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let f = files[10].clone();
    pydicom_edit(
        &f.clone(),
        &f,
        "ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]",
    );
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("mixed geometry"), "{msg}");
    assert!(files.iter().any(|p| p == err.path()), "{msg}");
    assert!(
        msg.contains(&f.display().to_string()),
        "names the odd file: {msg}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn mixed_image_size_in_one_series_is_an_error() {
    let (tmp, dir) = siemens_copy("err-mixed-size");
    let f = first_file(&dir);
    pydicom_edit(
        &f.clone(),
        &f,
        "a = ds.pixel_array[:128, :]\nds.Rows = 128\nds.PixelData = a.tobytes()",
    );
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("mixed geometry"), "{msg}");
    assert!(msg.contains(&f.display().to_string()), "{msg}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// One extra image at one position is not a second volume: refused, not silently made 4-D.
#[test]
fn a_duplicate_image_at_one_position_is_refused() {
    let (tmp, dir) = siemens_copy("err-duplicate");
    let f = first_file(&dir);
    let dup = dir.join("duplicate.dcm");
    pydicom_edit(
        &f,
        &dup,
        "ds.SOPInstanceUID = ds.SOPInstanceUID + '.9'\nds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID",
    );
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, Error::Unsupported { .. }), "{msg}");
    assert!(
        msg.contains("mixed geometry") && msg.contains("2 images at this position but 1"),
        "{msg}"
    );
    assert!(err.path() == dup || err.path() == f, "{msg}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn an_undecodable_transfer_syntax_is_unsupported_and_named() {
    let tmp = scratch("err-jpegls");
    let f = tmp.join("jpegls.dcm");
    run(
        "dcmcjpls",
        &[
            real("mri/siemens_t1_2d_hfs")
                .join("0001_1.3.12.2.1107.5.2.43.67060.2022040715053454597060816.dcm")
                .to_str()
                .unwrap(),
            f.to_str().unwrap(),
        ],
    );
    let err = dicom::load(std::slice::from_ref(&f)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_one_line_naming(&err, &f, "1.2.840.10008.1.2.4.80");
    assert!(err.to_string().contains("JPEG-LS"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn an_empty_folder_has_no_dicom_files() {
    let tmp = scratch("err-empty");
    let empty = tmp.join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    let err = dicom::load(std::slice::from_ref(&empty)).unwrap_err();
    assert_one_line_naming(&err, &empty, "no DICOM files found");
    std::fs::write(empty.join("sub/notes.txt"), "nothing").unwrap();
    let err = dicom::scan(std::slice::from_ref(&empty)).unwrap_err();
    assert_one_line_naming(&err, &empty, "no DICOM files found");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_missing_path_is_an_io_error_naming_it() {
    let tmp = scratch("err-missing");
    let gone = tmp.join("not-there");
    let err = dicom::load(std::slice::from_ref(&gone)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.path(), gone);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_single_image_without_orientation_is_refused() {
    let tmp = scratch("err-no-iop");
    let f = tmp.join("slice.dcm");
    pydicom_edit(
        &real("ct/invesalius_ct_dicom/CT0050.dcm"),
        &f,
        "del ds.ImageOrientationPatient",
    );
    let err = dicom::load(std::slice::from_ref(&f)).unwrap_err();
    assert_one_line_naming(&err, &f, "missing ImageOrientationPatient");
    let g = tmp.join("slice2.dcm");
    pydicom_edit(
        &real("ct/invesalius_ct_dicom/CT0050.dcm"),
        &g,
        "del ds.ImagePositionPatient",
    );
    let err = dicom::load(std::slice::from_ref(&g)).unwrap_err();
    assert_one_line_naming(&err, &g, "missing ImagePositionPatient");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_truncated_file_in_a_series_is_an_error_not_a_missing_slice() {
    let (tmp, dir) = siemens_copy("err-truncated");
    let f = first_file(&dir);
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert_eq!(err.path(), f, "{msg}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_multiframe_file_without_frame_positions_is_refused() {
    let tmp = scratch("err-multiframe");
    let f = tmp.join("multi.dcm");
    let src = real("ct/invesalius_ct_dicom/CT0050.dcm");
    pydicom_edit(
        &src,
        &f,
        "ds.NumberOfFrames = 2\nds.PixelData = ds.PixelData * 2",
    );
    let err = dicom::load(std::slice::from_ref(&f)).unwrap_err();
    assert_one_line_naming(&err, &f, "frame positions are unknown");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A missing file leaves a gap. The affine alone would put every slice after it in the wrong
/// place, so the stack keeps where each slice is: the gap is recorded, not papered over.
#[test]
fn a_missing_slice_is_kept_as_a_gap_in_the_slice_positions() {
    let (tmp, dir) = siemens_copy("err-gap");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let whole = dicom::load(std::slice::from_ref(&dir)).unwrap().remove(0);
    // Files are named by instance number, in slice order.
    std::fs::remove_file(&files[17]).unwrap();
    let vol = dicom::load(std::slice::from_ref(&dir)).unwrap().remove(0);
    assert_eq!(vol.dims()[2], whole.dims()[2] - 1);
    let slices = vol.slice_positions.as_ref().expect("the gap is recorded");
    let pitch = vol.affine.voxel_size()[2];
    let (lo, hi) = slices.gap_range();
    println!("gaps {:.2} to {:.2} mm", lo * pitch, hi * pitch);
    assert!(
        (hi * pitch - 9.60).abs() < 0.01,
        "largest gap {}",
        hi * pitch
    );
    assert!(
        (lo * pitch - 4.80).abs() < 0.01,
        "smallest gap {}",
        lo * pitch
    );
    // Every remaining slice is where it was in the whole series.
    let (m, w) = (vol.voxel_map().unwrap(), whole.voxel_map().unwrap());
    for k in 0..vol.dims()[2] {
        let kw = if k < 17 { k } else { k + 1 };
        let (a, b) = (
            m.to_world([3.0, 5.0, k as f64]),
            w.to_world([3.0, 5.0, kw as f64]),
        );
        let d = (0..3).map(|x| (a[x] - b[x]).powi(2)).sum::<f64>().sqrt();
        assert!(d < 0.01, "slice {k} moved by {d} mm");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn twelve_bit_lossy_jpeg_is_unsupported_and_named() {
    let tmp = scratch("err-jpeg12");
    let f = tmp.join("jpeg12.dcm");
    let src = real("mri/philips_mprage_t1/1301_0080.dcm");
    run(
        "dcmcjpeg",
        &[
            "--encode-extended",
            src.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
    );
    let err = dicom::load(std::slice::from_ref(&f)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_one_line_naming(&err, &f, "12-bit lossy JPEG");
    assert!(err.to_string().contains("1.2.840.10008.1.2.4.51"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_siemens_mosaic_is_refused_not_misplaced() {
    let (tmp, dir) = siemens_copy("err-mosaic");
    let f = first_file(&dir);
    pydicom_edit(
        &f.clone(),
        &f,
        "ds.ImageType = list(ds.ImageType) + ['MOSAIC']",
    );
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_one_line_naming(&err, &f, "mosaic");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// An unsupported series next to a good one neither hides the good one from `scan` nor stops it
/// from loading; loading everything reports the unsupported file.
#[test]
fn an_unsupported_series_does_not_block_another_one() {
    let (tmp, dir) = siemens_copy("err-other-series");
    let good_uid = dicom::scan(std::slice::from_ref(&dir)).unwrap()[0]
        .uid
        .clone();
    let src = first_file(&dir);
    let mosaic = dir.join("mosaic.dcm");
    pydicom_edit(
        &src,
        &mosaic,
        "ds.ImageType = list(ds.ImageType) + ['MOSAIC']\nds.SeriesInstanceUID = ds.SeriesInstanceUID + '.7'\n\
         ds.SOPInstanceUID = ds.SOPInstanceUID + '.7'\nds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID",
    );
    let jpegls = dir.join("jpegls.dcm");
    let other = tmp.join("other.dcm");
    pydicom_edit(
        &src,
        &other,
        "ds.SeriesInstanceUID = ds.SeriesInstanceUID + '.8'\n\
         ds.SOPInstanceUID = ds.SOPInstanceUID + '.8'\nds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID",
    );
    run(
        "dcmcjpls",
        &[other.to_str().unwrap(), jpegls.to_str().unwrap()],
    );

    let list = dicom::scan(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let vol = dicom::load_series(std::slice::from_ref(&dir), &good_uid).unwrap();
    assert_eq!(vol.dims(), [256, 256, 35, 1]);
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.path() == mosaic || err.path() == jpegls, "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_symbolic_link_loop_in_a_folder_is_followed_once() {
    let (tmp, dir) = siemens_copy("err-symlink-loop");
    std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
    let vols = dicom::load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(vols[0].dims(), [256, 256, 35, 1]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_folder_with_only_non_image_dicom_says_so() {
    let tmp = scratch("err-only-report");
    let dir = tmp.join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    pydicom_edit(
        &real("ct/invesalius_ct_dicom/CT0001.dcm"),
        &dir.join("report.dcm"),
        "for kw in ['PixelData', 'Rows', 'Columns']:\n    delattr(ds, kw)",
    );
    let err = dicom::load(std::slice::from_ref(&dir)).unwrap_err();
    assert_one_line_naming(
        &err,
        &dir,
        "no DICOM images found (1 DICOM files without pixel data)",
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
