//! Writing DICOM series back: new pixels, de-identified attributes, new deterministic UIDs, and
//! every attribute outside the de-identification profile unchanged.

mod dicom_support;

use std::path::PathBuf;

use defacer_testkit::{real, scratch};
use defacer_volume::{dicom, SaveOptions, Source, Volume};
use dicom_support::*;

fn files_of(vol: &Volume) -> Vec<PathBuf> {
    let Source::Dicom(s) = &vol.source else {
        panic!("not DICOM")
    };
    s.instances.iter().map(|i| i.path.clone()).collect()
}

/// Changes a block of voxels so that the test can see written pixels come from the volume.
fn mark(vol: &mut Volume) -> ndarray::Array3<bool> {
    let [nx, ny, nz, _] = vol.dims();
    let mask = ndarray::Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
        i < nx / 3 && j < ny / 4 && k % 2 == 0
    });
    vol.voxels.fill(&mask.view(), 7.0);
    mask
}

fn round_trip(files: &[PathBuf], name: &str) {
    let mut vols = dicom::load(files).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(vols.len(), 1);
    let mut vol = vols.remove(0);
    mark(&mut vol);
    let tmp = scratch(&format!("write-{name}"));
    let out = tmp.join("out");
    let opts = SaveOptions {
        description: "face removed by defacer test".into(),
        ..Default::default()
    };
    dicom::save(&vol, &out, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));

    let back = dicom::load(std::slice::from_ref(&out)).unwrap();
    assert_eq!(back.len(), 1, "{name}: written files form one series");
    let back = &back[0];
    assert_eq!(
        back.voxels, vol.voxels,
        "{name}: voxels after write and re-read"
    );
    let diff = (back.affine.0 - vol.affine.0).amax();
    assert!(diff < 1e-6, "{name}: affine changed by {diff}");
    assert_eq!(
        back.slice_positions, vol.slice_positions,
        "{name}: slice positions changed"
    );
    assert_eq!(back.scaling, vol.scaling);
    assert_eq!(back.modality, vol.modality);

    let inputs = files_of(&vol);
    let outputs: Vec<PathBuf> = inputs
        .iter()
        .map(|p| out.join(p.file_name().unwrap()))
        .collect();
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        inputs.len(),
        "{name}: one file per instance"
    );
    let pairs: Vec<_> = inputs
        .iter()
        .cloned()
        .zip(outputs.iter().cloned())
        .collect();
    let problems = pydicom_write_problems(&pairs);
    assert!(problems.is_empty(), "{name}: {}", problems.join("\n"));

    let again = tmp.join("again");
    dicom::save(&vol, &again, &opts).unwrap();
    for o in &outputs {
        let a = std::fs::read(o).unwrap();
        let b = std::fs::read(again.join(o.file_name().unwrap())).unwrap();
        assert!(a == b, "{name}: {} differs between two saves", o.display());
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

fn dir_files(rel: &str) -> Vec<PathBuf> {
    vec![real(rel)]
}

#[test]
fn philips_series_round_trips() {
    round_trip(&dir_files("mri/philips_mprage_t1"), "philips");
}

#[test]
fn siemens_series_round_trip() {
    round_trip(&dir_files("mri/siemens_t1_2d_hfs"), "siemens_hfs");
    round_trip(&dir_files("mri/siemens_t1_2d_hfp"), "siemens_hfp");
}

#[test]
fn ct_series_round_trips() {
    round_trip(&dir_files("ct/invesalius_ct_dicom"), "invesalius");
    let dir = real("ct/ge_tilted_ct");
    let even: Vec<_> = (1..=14).map(|n| dir.join(format!("{n:02}.dcm"))).collect();
    round_trip(&even, "ge_tilted_even");
    round_trip(&dir_files("ct/ge_tilted_ct"), "ge_tilted_uneven");
}

#[test]
fn saving_refuses_a_non_empty_destination_and_leaves_nothing_on_failure() {
    let vol = dicom::load(&[real("mri/siemens_t1_2d_hfs")])
        .unwrap()
        .remove(0);
    let tmp = scratch("write-refuse");
    let out = tmp.join("busy");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"x").unwrap();
    assert!(dicom::save(&vol, &out, &SaveOptions::default()).is_err());
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "existing content untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "busy")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary output left behind: {leftovers:?}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn derived_uids_are_valid_and_stable() {
    let vol = dicom::load(&[real("mri/siemens_t1_2d_hfs")])
        .unwrap()
        .remove(0);
    let Source::Dicom(s) = &vol.source else {
        panic!()
    };
    let old = &s.instances[0].sop_instance_uid;
    let new = dicom::derive_uid(old);
    assert_ne!(&new, old);
    assert_eq!(new, dicom::derive_uid(old));
    assert!(new.starts_with("2.25.") && new.len() <= 64, "{new}");
    assert!(
        new[5..].chars().all(|c| c.is_ascii_digit()) && !new[5..].starts_with('0'),
        "{new}"
    );
    assert_ne!(dicom::derive_uid(&s.instances[1].sop_instance_uid), new);
}

/// The crate-level entry points dispatch DICOM folders to this module in both directions.
#[test]
fn crate_level_load_and_save_handle_dicom() {
    let dir = real("mri/siemens_t1_2d_hfp");
    let vols = defacer_volume::load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].format(), "dicom");
    assert!(vols[0].path().starts_with(&dir));
    let tmp = scratch("write-crate-level");
    let out = tmp.join("out");
    defacer_volume::save(&vols[0], &out, &SaveOptions::default()).unwrap();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 35);
    let back = defacer_volume::load(&[out]).unwrap();
    assert_eq!(back[0].voxels, vols[0].voxels);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Saving uses what was read: it neither touches the input files nor needs them any more.
#[test]
fn saving_neither_modifies_nor_needs_the_input_files() {
    let tmp = scratch("write-inputs");
    let input = tmp.join("in");
    copy_dir(&real("mri/siemens_t1_2d_hfs"), &input);
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let mut vol = dicom::load(std::slice::from_ref(&input)).unwrap().remove(0);
    mark(&mut vol);
    dicom::save(&vol, &tmp.join("out1"), &SaveOptions::default()).unwrap();
    for (p, bytes) in &before {
        assert!(
            &std::fs::read(p).unwrap() == bytes,
            "{} was modified",
            p.display()
        );
    }
    std::fs::remove_dir_all(&input).unwrap();
    dicom::save(&vol, &tmp.join("out2"), &SaveOptions::default()).unwrap();
    for (p, _) in &before {
        let name = p.file_name().unwrap();
        assert!(
            std::fs::read(tmp.join("out1").join(name)).unwrap()
                == std::fs::read(tmp.join("out2").join(name)).unwrap(),
            "output depends on the input files still being there"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Two echoes in one series (the real series plus a second echo made from it with pydicom) load
/// as one 4-D volume, echo 1 first although echo 2's files come first by name, and write back
/// to the file each frame came from.
#[test]
fn a_two_echo_series_is_one_4d_volume_and_round_trips() {
    let tmp = scratch("write-4d");
    let input = tmp.join("in");
    copy_dir(&real("mri/siemens_t1_2d_hfs"), &input);
    let echo1 = dicom::load(std::slice::from_ref(&input)).unwrap().remove(0);
    let files = files_of(&echo1);
    let script = "import sys, pydicom, numpy as np\nfor src in sys.argv[2:]:\n    ds = pydicom.dcmread(src)\n    \
        ds.EchoNumbers = 2\n    ds.SOPInstanceUID = ds.SOPInstanceUID + '.2'\n    \
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID\n    \
        ds.PixelData = (ds.pixel_array // 2 + 1).astype(ds.pixel_array.dtype).tobytes()\n    \
        ds.save_as(sys.argv[1] + '/0000_echo2_' + src.split('/')[-1], enforce_file_format=True)\n";
    let mut args = vec![input.to_str().unwrap().to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    // Mark the originals as echo 1 so both echoes carry the number that orders them.
    python(
        "import sys, pydicom\nfor f in sys.argv[1:]:\n    ds = pydicom.dcmread(f)\n    ds.EchoNumbers = 1\n    ds.save_as(f, enforce_file_format=True)\n",
        &argv[1..],
    );
    python(script, &argv);

    let vols = dicom::load(std::slice::from_ref(&input)).unwrap();
    assert_eq!(vols.len(), 1);
    let mut vol = vols.into_iter().next().unwrap();
    assert_eq!(vol.dims(), [256, 256, 35, 2]);
    assert_eq!(vol.affine, echo1.affine);
    let e1 = echo1.voxels.frame_f32(0);
    assert_eq!(vol.voxels.frame_f32(0), e1, "t = 0 is echo 1");
    assert_eq!(
        vol.voxels.frame_f32(1),
        e1.mapv(|v| (v as i64 / 2 + 1) as f32),
        "t = 1 is echo 2"
    );

    mark(&mut vol);
    let out = tmp.join("out");
    dicom::save(&vol, &out, &SaveOptions::default()).unwrap();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 70);
    let back = dicom::load(std::slice::from_ref(&out)).unwrap().remove(0);
    assert_eq!(back.voxels, vol.voxels);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The files keep their positions and RescaleSlope/Intercept, so a volume whose geometry or
/// scaling was changed is refused rather than written with the old ones.
#[test]
fn saving_refuses_a_changed_affine_or_scaling() {
    let vol = dicom::load(&[real("mri/siemens_t1_2d_hfs")])
        .unwrap()
        .remove(0);
    let tmp = scratch("write-changed");
    let mut moved = vol.clone();
    moved.affine.0[(0, 3)] += 1.0;
    let err = dicom::save(&moved, &tmp.join("a"), &SaveOptions::default()).unwrap_err();
    assert!(err.to_string().contains("affine differs"), "{err}");
    let mut rescaled = vol.clone();
    rescaled.scaling.slope = 2.0;
    let err = dicom::save(&rescaled, &tmp.join("b"), &SaveOptions::default()).unwrap_err();
    assert!(err.to_string().contains("scaling"), "{err}");
    assert!(
        !tmp.join("a").exists() && !tmp.join("b").exists(),
        "nothing written"
    );
    dicom::save(&vol, &tmp.join("c"), &SaveOptions::default()).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}
