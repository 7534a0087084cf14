//! Compressed transfer syntaxes and enhanced multi-frame files, made from the real classic series
//! with independent tools (dcmtk, gdcm, pydicom) and compared with the uncompressed originals.

mod dicom_support;

use std::path::{Path, PathBuf};

use defacer_testkit::{real, scratch};
use defacer_volume::{dicom, SaveOptions, Source, Volume};
use dicom_support::*;

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

fn some_files(rel: &str, first: usize, count: usize) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(real(rel))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v[first..first + count].to_vec()
}

/// Compresses each file with `tool args in out` into `dir`.
fn compress(files: &[PathBuf], dir: &Path, tool: &str, args: &[&str]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .map(|f| {
            let out = dir.join(f.file_name().unwrap());
            let mut a: Vec<&str> = args.to_vec();
            a.push(f.to_str().unwrap());
            a.push(out.to_str().unwrap());
            run(tool, &a);
            out
        })
        .collect()
}

fn load_one(files: &[PathBuf]) -> Volume {
    let mut v = dicom::load(files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn check_codec(rel: &str, name: &str, tool: &str, args: &[&str], expected_ts: &str) {
    let files = some_files(rel, 40, 6);
    let original = load_one(&files);
    let tmp = scratch(&format!("codec-{name}-{}", rel.replace('/', "_")));
    let compressed = compress(&files, &tmp.join("in"), tool, args);
    assert_eq!(
        transfer_syntax_of(&compressed[0]),
        expected_ts,
        "{tool} did not write {expected_ts}"
    );
    let vol = load_one(&compressed);
    assert_eq!(
        vol.voxels, original.voxels,
        "{name} {rel}: decoded voxels differ from uncompressed"
    );
    assert_eq!(vol.affine, original.affine);
    assert_eq!(vol.scaling, original.scaling);

    let out = tmp.join("out");
    dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
    let written: Vec<PathBuf> = compressed
        .iter()
        .map(|p| out.join(p.file_name().unwrap()))
        .collect();
    for w in &written {
        assert_eq!(
            transfer_syntax_of(w),
            EXPLICIT_VR_LE,
            "{}: written transfer syntax",
            w.display()
        );
    }
    let back = load_one(std::slice::from_ref(&out));
    assert_eq!(back.voxels, original.voxels);
    let pairs: Vec<_> = compressed
        .iter()
        .cloned()
        .zip(written.iter().cloned())
        .collect();
    let problems = pydicom_write_problems(&pairs);
    assert!(problems.is_empty(), "{name}: {}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn rle_lossless_decodes_to_the_same_voxels() {
    check_codec(
        "mri/philips_mprage_t1",
        "rle",
        "dcmcrle",
        &[],
        "1.2.840.10008.1.2.5",
    );
    check_codec(
        "ct/invesalius_ct_dicom",
        "rle",
        "dcmcrle",
        &[],
        "1.2.840.10008.1.2.5",
    );
}

#[test]
fn jpeg_lossless_decodes_to_the_same_voxels() {
    check_codec(
        "mri/philips_mprage_t1",
        "jpegll",
        "dcmcjpeg",
        &["--encode-lossless-sv1"],
        "1.2.840.10008.1.2.4.70",
    );
    check_codec(
        "ct/invesalius_ct_dicom",
        "jpegll",
        "dcmcjpeg",
        &["--encode-lossless-sv1"],
        "1.2.840.10008.1.2.4.70",
    );
}

#[test]
fn jpeg2000_lossless_decodes_to_the_same_voxels() {
    check_codec(
        "mri/philips_mprage_t1",
        "j2k",
        "gdcmconv",
        &["--j2k"],
        "1.2.840.10008.1.2.4.90",
    );
    check_codec(
        "ct/invesalius_ct_dicom",
        "j2k",
        "gdcmconv",
        &["--j2k"],
        "1.2.840.10008.1.2.4.90",
    );
}

/// Builds an Enhanced MR Image Storage file from classic slices with pydicom: orientation and
/// pixel measures in the shared functional groups, position and rescale per frame, frames stored
/// in reverse order so that sorting is exercised, and no classic geometry attributes left.
const MAKE_ENHANCED: &str = r#"
import sys, copy, numpy as np, pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
out = sys.argv[1]
dss = [pydicom.dcmread(f) for f in sys.argv[2:]]
dss = dss[::-1]
base = copy.deepcopy(dss[0])
base.SOPClassUID = '1.2.840.10008.5.1.4.1.1.4.1'
base.file_meta.MediaStorageSOPClassUID = base.SOPClassUID
base.SOPInstanceUID = base.SOPInstanceUID + '.1'
base.file_meta.MediaStorageSOPInstanceUID = base.SOPInstanceUID
base.NumberOfFrames = len(dss)
shared = Dataset()
pm = Dataset(); pm.PixelSpacing = dss[0].PixelSpacing; pm.SliceThickness = dss[0].SliceThickness
shared.PixelMeasuresSequence = Sequence([pm])
po = Dataset(); po.ImageOrientationPatient = dss[0].ImageOrientationPatient
shared.PlaneOrientationSequence = Sequence([po])
base.SharedFunctionalGroupsSequence = Sequence([shared])
per = []
for ds in dss:
    item = Dataset()
    pp = Dataset(); pp.ImagePositionPatient = ds.ImagePositionPatient
    item.PlanePositionSequence = Sequence([pp])
    pv = Dataset(); pv.RescaleSlope = ds.RescaleSlope; pv.RescaleIntercept = ds.RescaleIntercept; pv.RescaleType = 'US'
    item.PixelValueTransformationSequence = Sequence([pv])
    ft = Dataset(); ft.FrameType = ['ORIGINAL', 'PRIMARY', 'M', 'NONE']
    item.MRImageFrameTypeSequence = Sequence([ft])
    per.append(item)
base.PerFrameFunctionalGroupsSequence = Sequence(per)
for kw in ['ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing', 'RescaleSlope', 'RescaleIntercept', 'SliceLocation']:
    if kw in base:
        delattr(base, kw)
# Philips' private count of slice locations would describe the whole 170-slice series.
if (0x2001, 0x1018) in base:
    del base[0x2001, 0x1018]
base.PixelData = b''.join(ds.PixelData for ds in dss)
base.save_as(out, enforce_file_format=True)
"#;

#[test]
fn enhanced_multiframe_loads_like_the_classic_series_and_round_trips() {
    let files = some_files("mri/philips_mprage_t1", 30, 40);
    let classic = load_one(&files);
    let tmp = scratch("enhanced");
    let enhanced = tmp.join("enhanced.dcm");
    let mut args = vec![enhanced.to_str().unwrap().to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    python(MAKE_ENHANCED, &argv);

    let vol = load_one(std::slice::from_ref(&enhanced));
    assert_eq!(vol.dims(), classic.dims());
    let diff = (vol.affine.0 - classic.affine.0).amax();
    assert!(
        diff < 1e-9,
        "affine differs from the classic series by {diff}"
    );
    assert_eq!(vol.voxels, classic.voxels);
    assert_eq!(vol.scaling, classic.scaling);
    let Source::Dicom(series) = &vol.source else {
        panic!()
    };
    assert_eq!(series.instances.len(), 1);
    let k: Vec<usize> = (0..40).rev().collect();
    assert_eq!(
        series.instances[0].slices, k,
        "frames were stored in reverse slice order"
    );
    let err = compare_with_pydicom(&vol, &tmp);
    assert!(err < 0.01, "frame corners differ from pydicom by {err} mm");
    // dcm2niix reads the enhanced file on its own: same voxels at the same world positions.
    let (niftis, log) = dcm2niix(&tmp, &tmp.join("d2n"));
    assert_eq!(niftis.len(), 1, "dcm2niix wrote {niftis:?}\n{log}");
    let refer = read_nifti_with_nibabel(&niftis[0], &tmp);
    let c = compare_in_world(&vol, &refer, |v| v);
    println!("enhanced vs dcm2niix: {c:?}");
    assert!(c.max_position_error_mm < 0.01, "{c:?}");
    assert_eq!((c.outside, c.different), (0, 0), "{c:?}");

    let out = tmp.join("out");
    dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
    let written = out.join("enhanced.dcm");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "one file with all frames"
    );
    let back = load_one(std::slice::from_ref(&written));
    assert_eq!(back.voxels, vol.voxels);
    assert_eq!(back.affine, vol.affine);
    let frame_types = python(
        "import sys, pydicom\nds = pydicom.dcmread(sys.argv[1])\n\
         print(set(f.MRImageFrameTypeSequence[0].FrameType[0] for f in ds.PerFrameFunctionalGroupsSequence))",
        &[written.to_str().unwrap()],
    );
    assert_eq!(
        frame_types.trim(),
        "{'DERIVED'}",
        "FrameType value 1 follows ImageType"
    );
    let problems = pydicom_write_problems(&[(enhanced, written)]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn native_big_endian_and_implicit_little_endian_read_the_same_voxels() {
    for (name, flag, ts, written_ts) in [
        ("explicit-be", "+tb", "1.2.840.10008.1.2.2", EXPLICIT_VR_LE),
        (
            "implicit-le",
            "+ti",
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2",
        ),
    ] {
        for rel in ["mri/siemens_t1_2d_hfs", "ct/invesalius_ct_dicom"] {
            let files = some_files(rel, 10, 5);
            let original = load_one(&files);
            let tmp = scratch(&format!("native-{name}-{}", rel.replace('/', "_")));
            let converted = compress(&files, &tmp.join("in"), "dcmconv", &[flag]);
            assert_eq!(transfer_syntax_of(&converted[0]), ts);
            let vol = load_one(&converted);
            assert_eq!(vol.voxels, original.voxels, "{name} {rel}");
            assert_eq!(vol.affine, original.affine);
            let out = tmp.join("out");
            dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
            let written: Vec<PathBuf> = converted
                .iter()
                .map(|p| out.join(p.file_name().unwrap()))
                .collect();
            assert_eq!(
                transfer_syntax_of(&written[0]),
                written_ts,
                "{name}: written transfer syntax"
            );
            assert_eq!(load_one(std::slice::from_ref(&out)).voxels, original.voxels);
            let pairs: Vec<_> = converted
                .iter()
                .cloned()
                .zip(written.iter().cloned())
                .collect();
            let problems = pydicom_write_problems(&pairs);
            assert!(problems.is_empty(), "{name} {rel}: {}", problems.join("\n"));
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
}

/// Lossy JPEG input is decoded once and written uncompressed: never re-encoded, and still marked
/// as lossy (LossyImageCompression kept).
#[test]
fn lossy_jpeg_is_decoded_and_written_uncompressed_still_marked_lossy() {
    let tmp = scratch("codec-lossy");
    let src = some_files("mri/siemens_t1_2d_hfs", 12, 1).remove(0);
    let u8_file = tmp.join("u8.dcm");
    // Baseline JPEG takes 8-bit samples: rescale the real slice to 8 bits first.
    pydicom_edit(
        &src,
        &u8_file,
        "import numpy as np\na = ds.pixel_array.astype(np.float64)\na = (a * 255 / a.max()).astype(np.uint8)\n\
         ds.BitsAllocated = 8\nds.BitsStored = 8\nds.HighBit = 7\nds.PixelData = a.tobytes()",
    );
    let lossy = tmp.join("lossy.dcm");
    run(
        "dcmcjpeg",
        &[
            "--encode-baseline",
            u8_file.to_str().unwrap(),
            lossy.to_str().unwrap(),
        ],
    );
    assert_eq!(transfer_syntax_of(&lossy), "1.2.840.10008.1.2.4.50");
    let dcmtk_decoded = tmp.join("dcmtk.dcm");
    run(
        "dcmdjpeg",
        &[lossy.to_str().unwrap(), dcmtk_decoded.to_str().unwrap()],
    );

    let vol = load_one(std::slice::from_ref(&lossy));
    let reference = load_one(&[dcmtk_decoded]);
    assert_eq!(vol.datatype(), defacer_volume::DataType::U8);
    // Lossy JPEG decoders may round the inverse DCT differently (ISO 10918-2 allows it): at most
    // one grey level apart from dcmtk.
    let (a, b) = (vol.voxels.frame_f32(0), reference.voxels.frame_f32(0));
    let worst = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1.0,
        "decoded values differ from dcmtk by up to {worst}"
    );
    assert_eq!(vol.affine, reference.affine);

    let out = tmp.join("out");
    dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
    let written = out.join("lossy.dcm");
    assert_eq!(transfer_syntax_of(&written), EXPLICIT_VR_LE);
    let back = load_one(std::slice::from_ref(&written));
    assert_eq!(
        back.voxels, vol.voxels,
        "written pixels are exactly the decoded ones"
    );
    let flag = python(
        "import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).LossyImageCompression)",
        &[written.to_str().unwrap()],
    );
    assert_eq!(flag.trim(), "01");
    let problems = pydicom_write_problems(&[(lossy, written)]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// 32-bit signed and 8-bit unsigned samples (converted from real slices with pydicom) keep their
/// type and values through load and save.
#[test]
fn thirty_two_and_eight_bit_samples_keep_type_and_values() {
    for (name, code, datatype) in [
        (
            "i32",
            "import numpy as np\na = ds.pixel_array.astype(np.int32) * 1000\nds.BitsAllocated = 32\n\
             ds.BitsStored = 32\nds.HighBit = 31\nds.PixelRepresentation = 1\nds.PixelData = a.tobytes()",
            defacer_volume::DataType::I32,
        ),
        (
            "u8",
            "import numpy as np\na = (ds.pixel_array.astype(np.int64) // 16 + 100).clip(0, 255).astype(np.uint8)\n\
             ds.BitsAllocated = 8\nds.BitsStored = 8\nds.HighBit = 7\nds.PixelRepresentation = 0\nds.PixelData = a.tobytes()",
            defacer_volume::DataType::U8,
        ),
    ] {
        let files = some_files("ct/invesalius_ct_dicom", 50, 4);
        let original = load_one(&files);
        let tmp = scratch(&format!("samples-{name}"));
        std::fs::create_dir_all(tmp.join("in")).unwrap();
        let converted: Vec<PathBuf> = files
            .iter()
            .map(|f| {
                let out = tmp.join("in").join(f.file_name().unwrap());
                pydicom_edit(f, &out, code);
                out
            })
            .collect();
        let vol = load_one(&converted);
        assert_eq!(vol.datatype(), datatype, "{name}");
        assert_eq!(vol.affine, original.affine);
        let expected = original.voxels.frame_f32(0).mapv(|v| match name {
            "i32" => v * 1000.0,
            _ => ((v as i64).div_euclid(16) + 100).clamp(0, 255) as f32,
        });
        assert_eq!(vol.voxels.frame_f32(0), expected, "{name}: values");
        let out = tmp.join("out");
        dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
        assert_eq!(load_one(std::slice::from_ref(&out)).voxels, vol.voxels);
        let written: Vec<PathBuf> = converted.iter().map(|p| out.join(p.file_name().unwrap())).collect();
        let pairs: Vec<_> = converted.iter().cloned().zip(written.iter().cloned()).collect();
        let problems = pydicom_write_problems(&pairs);
        assert!(problems.is_empty(), "{name}: {}", problems.join("\n"));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
