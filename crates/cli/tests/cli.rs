//! The real binary on real volumes: exit codes, outputs, invariants.

use std::path::{Path, PathBuf};

mod support;
use support::{defacer, s, stderr};

use defacer_testkit::{real, scratch};
use defacer_volume::{load, Volume};

fn load_one(p: &Path) -> Volume {
    let mut v = load(&[p.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1, "{}", p.display());
    v.remove(0)
}

#[test]
fn info_json_reports_geometry_of_a_real_nifti() {
    let o = defacer(&["info", "--json", s(&real("mri/ch2.nii.gz"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let v = &v[0];
    assert_eq!(v["format"], "nifti1");
    assert_eq!(v["dims"], serde_json::json!([181, 217, 181]));
    assert_eq!(v["datatype"], "uint8");
    assert_eq!(v["orientation"], "RAS");
    assert_eq!(v["affine"][0][3], -90.0);
    assert_eq!(v["voxel_size_mm"], serde_json::json!([1.0, 1.0, 1.0]));
}

#[test]
fn info_json_reports_a_dicom_series() {
    let o = defacer(&["info", "--json", s(&real("ct/invesalius_ct_dicom"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["format"], "dicom");
    assert_eq!(v[0]["modality"], "CT");
    assert_eq!(v[0]["dims"], serde_json::json!([256, 256, 108]));
}

#[test]
fn info_on_a_bad_file_names_it_and_exits_2() {
    let dir = scratch("info-bad");
    let bad = dir.join("broken.nii");
    std::fs::write(&bad, b"not a nifti file at all").unwrap();
    let o = defacer(&["info", s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("broken.nii"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn deface_is_deterministic() {
    let dir = scratch("determinism");
    let input = real("mri/t2w_partial_face.nii.gz");
    let (a, b) = (dir.join("a.nii.gz"), dir.join("b.nii.gz"));
    for (out, jobs) in [(&a, "1"), (&b, "2")] {
        let o = defacer(&[
            "deface",
            s(&input),
            "-o",
            s(out),
            "--fill",
            "noise",
            "--jobs",
            jobs,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn deface_dicom_series_rereads_with_same_geometry() {
    let dir = scratch("dicom");
    let out = dir.join("ct");
    let input = real("ct/invesalius_ct_dicom");
    let o = defacer(&["deface", s(&input), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (load_one(&input), load_one(&out));
    assert_eq!(a.dims(), b.dims());
    let diff = a.affine.0 - b.affine.0;
    assert!(diff.amax() < 1e-6, "{diff}");
    assert_eq!(a.scaling, b.scaling);
    let n_in = std::fs::read_dir(&input).unwrap().count();
    let n_out = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(n_in, n_out);
    assert!(a.voxels.count_differences(&b.voxels).unwrap() > 10_000);
}

#[test]
fn batch_with_a_bad_input_completes_the_rest_and_exits_1() {
    let dir = scratch("batch");
    let inp = dir.join("in");
    std::fs::create_dir_all(inp.join("sub")).unwrap();
    std::fs::copy(real("mri/t2w_partial_face.nii.gz"), inp.join("a.nii.gz")).unwrap();
    std::fs::copy(real("mri/ch2.nii.gz"), inp.join("sub/b.nii.gz")).unwrap();
    std::fs::write(inp.join("sub/broken.nii.gz"), b"\x1f\x8b garbage").unwrap();
    let out = dir.join("out");
    let report = dir.join("report.json");
    let o = defacer(&[
        "deface",
        s(&inp),
        "-o",
        s(&out),
        "--report",
        s(&report),
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("broken.nii.gz"), "{e}");
    assert!(e.contains("2 done") && e.contains("1 failed"), "{e}");
    assert!(out.join("a.nii.gz").exists() && out.join("sub/b.nii.gz").exists());
    assert!(!out.join("sub/broken.nii.gz").exists());
    // Nothing temporary left behind.
    let leftovers: Vec<PathBuf> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("defacer-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["items"].as_array().map(|a| a.len()), Some(3));
    // An existing output is not overwritten without --overwrite.
    let o = defacer(&[
        "deface",
        s(&inp.join("a.nii.gz")),
        "-o",
        s(&out.join("a.nii.gz")),
    ]);
    assert!(stderr(&o).contains("skipped"), "{}", stderr(&o));
}

#[test]
fn input_is_never_modified() {
    let dir = scratch("input-untouched");
    let input = dir.join("in.nii.gz");
    std::fs::copy(real("mri/t2w_partial_face.nii.gz"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let o = defacer(&["deface", s(&input), "-o", s(&dir.join("out.nii.gz"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
