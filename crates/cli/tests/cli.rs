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

/// One attribute of a written DICOM file as dcmtk's dcmdump prints it (None when absent).
fn dcmdump_value(file: &Path, keyword: &str) -> Option<String> {
    let o = std::process::Command::new("dcmdump")
        .args(["-q", "+P", keyword, s(file)])
        .output()
        .expect("dcmtk's dcmdump is needed by this test");
    assert!(o.status.success(), "dcmdump {}", file.display());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text.lines().next()?;
    Some(line.split(['[', ']']).nth(1).unwrap_or("").to_string())
}

/// DICOM output is de-identified (PS3.15), the options keep what they say, and the report lists
/// the attributes changed by name.
#[test]
fn deface_dicom_deidentifies_and_reports_the_changes() {
    let dir = scratch("dicom-deid");
    let out = dir.join("mr");
    let report = dir.join("report.json");
    let input = real("mri/siemens_t1_2d_hfs");
    let o = defacer(&[
        "deface",
        s(&input),
        "-o",
        s(&out),
        "--keep-patient-characteristics",
        "--report",
        s(&report),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = std::fs::read_dir(&input)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let (a, b) = (input.join(&name), out.join(&name));
    for kept in ["PatientAge", "PatientSex", "PatientWeight"] {
        assert!(dcmdump_value(&a, kept).is_some());
        assert_eq!(dcmdump_value(&b, kept), dcmdump_value(&a, kept), "{kept}");
    }
    for changed in [
        "PatientName",
        "PatientID",
        "StudyDate",
        "InstitutionName",
        "DeviceSerialNumber",
    ] {
        assert!(dcmdump_value(&a, changed).is_some_and(|v| !v.is_empty()));
        assert_ne!(
            dcmdump_value(&b, changed),
            dcmdump_value(&a, changed),
            "{changed}"
        );
    }
    assert_eq!(
        dcmdump_value(&b, "PatientIdentityRemoved").as_deref(),
        Some("YES")
    );

    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let changes = r["items"][0]["volumes"][0]["dicom_header_changes"]
        .as_array()
        .expect("DICOM changes in the report");
    let action_of = |attr: &str| {
        changes
            .iter()
            .find(|c| c["attribute"] == attr)
            .map(|c| c["action"].as_str().unwrap().to_string())
    };
    assert_eq!(action_of("PatientName").as_deref(), Some("pseudonym"));
    assert_eq!(action_of("InstitutionName").as_deref(), Some("removed"));
    assert_eq!(action_of("StudyDate").as_deref(), Some("emptied"));
    assert_eq!(action_of("PatientAge"), None, "kept, so not changed");
    let text = std::fs::read_to_string(&report).unwrap();
    let old_name = dcmdump_value(&a, "InstitutionName").unwrap();
    assert!(
        !text.contains(&old_name),
        "the report must not repeat identifying values"
    );
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

/// The README's first command: no input defaces the bundled demo head into ./defacer-demo.
#[test]
fn deface_without_input_runs_the_demo() {
    let dir = scratch("demo");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_defacer"))
        .arg("deface")
        .current_dir(&dir)
        .output()
        .expect("cannot run defacer");
    assert!(o.status.success(), "{}", stderr(&o));
    let demo = dir.join("defacer-demo");
    let files: Vec<_> = walk(&demo);
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".nii.gz")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "png")),
        "{files:?}"
    );
}
