//! De-identification of written DICOM series (PS3.15 Basic Profile and options), checked on real
//! series with pydicom, dcmtk's dcmdump and dicom3tools' dciodvfy as independent readers.

mod dicom_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use defacer_testkit::{real, scratch};
use defacer_volume::deid::{ChangeKind, Options};
use defacer_volume::{dicom, SaveOptions, Source, Volume};
use dicom_support::*;
use serde_json::Value;

/// Attributes that name or date the patient, the visit, the place or the machine, listed here
/// from PS3.15 Table E.1-1 independently of the crate's table: none may keep a non-empty
/// original value.
const IDENTIFYING: &[&str] = &[
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAge",
    "PatientSex",
    "PatientSize",
    "PatientWeight",
    "OtherPatientIDs",
    "PatientAddress",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "StudyTime",
    "SeriesTime",
    "AcquisitionTime",
    "ContentTime",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepID",
    "PerformedProcedureStepDescription",
    "RequestingPhysician",
    "ImageComments",
];

const DUMP: &str = r#"
import sys, json, pydicom
def walk(ds, out):
    for e in ds:
        out['private'] += e.tag.is_private
        if e.VR == 'UI' and e.tag not in (0x00080016, 0x00081150):
            vals = e.value if isinstance(e.value, (list, pydicom.multival.MultiValue)) else [e.value]
            out['uids'] += [str(v) for v in vals if v and not str(v).startswith('1.2.840.10008.')]
        if e.VR == 'SQ':
            for item in e.value:
                walk(item, out)
files = []
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    out = {'path': path, 'private': 0, 'uids': [], 'top': {}, 'codes': []}
    walk(ds, out)
    for e in ds.file_meta:
        if e.VR == 'UI' and e.tag not in (0x00020002, 0x00020010, 0x00020012):
            out['uids'].append(str(e.value))
    out['top']['MediaStorageSOPInstanceUID'] = str(ds.file_meta.MediaStorageSOPInstanceUID)
    if 'SourceApplicationEntityTitle' in ds.file_meta:
        out['top']['SourceApplicationEntityTitle'] = str(ds.file_meta.SourceApplicationEntityTitle)
    for e in ds:
        if not e.tag.is_private and e.keyword and e.VR != 'SQ':
            out['top'][e.keyword] = '' if e.value is None else str(e.value)
        elif e.keyword and e.VR == 'SQ':
            out['top'][e.keyword] = f'<{len(e.value)} items>'
    for item in ds.get('DeidentificationMethodCodeSequence', []):
        out['codes'].append(str(item.CodeValue))
    files.append(out)
print(json.dumps(files))
"#;

/// What pydicom reads in one file.
struct Dump {
    path: PathBuf,
    /// Private attributes at any depth.
    private: u64,
    /// UIDs at any depth and in the file meta, except SOP class and transfer syntax UIDs.
    uids: Vec<String>,
    /// Top-level standard attributes as text (sequences as their item count).
    top: BTreeMap<String, String>,
    codes: Vec<String>,
}

fn dump(files: &[PathBuf]) -> Vec<Dump> {
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let v: Value = serde_json::from_str(python(DUMP, &args).trim()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| Dump {
            path: PathBuf::from(f["path"].as_str().unwrap()),
            private: f["private"].as_u64().unwrap(),
            uids: f["uids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect(),
            top: f["top"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            codes: f["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

fn files_of(vol: &Volume) -> Vec<PathBuf> {
    let Source::Dicom(s) = &vol.source else {
        panic!("not DICOM")
    };
    s.instances.iter().map(|i| i.path.clone()).collect()
}

fn saved(vol: &Volume, out: &Path, deid: Options) -> Vec<PathBuf> {
    let opts = SaveOptions {
        deidentification: deid,
        ..Default::default()
    };
    dicom::save(vol, out, &opts).unwrap_or_else(|e| panic!("{e}"));
    files_of(vol)
        .iter()
        .map(|p| out.join(p.file_name().unwrap()))
        .collect()
}

fn value<'a>(d: &'a Dump, key: &str) -> Option<&'a str> {
    d.top.get(key).map(|s| s.as_str())
}

/// The Error lines dciodvfy prints for a file (it reports on stderr).
fn dciodvfy_errors(path: &Path) -> BTreeSet<String> {
    let out = Command::new("dciodvfy")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run dciodvfy ({e}): install dicom3tools"));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| l.starts_with("Error"))
        .map(|l| l.to_string())
        .collect()
}

/// Saves a real series with the Basic Profile and checks the output with independent readers.
fn basic_profile_on(rel: &str, name: &str) {
    let vol = dicom::load(&[real(rel)]).unwrap().remove(0);
    let tmp = scratch(&format!("deid-{name}"));
    let out = tmp.join("out");
    let outputs = saved(&vol, &out, Options::default());
    let inputs = files_of(&vol);
    let before = dump(&inputs);
    let after = dump(&outputs);

    // Nothing identifying keeps its original value.
    let mut present = BTreeSet::new();
    for (a, b) in before.iter().zip(&after) {
        for key in IDENTIFYING {
            let Some(old) = value(a, key).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            present.insert(*key);
            assert_ne!(
                value(b, key),
                Some(old),
                "{name}: {key} kept its value in {}",
                b.path.display()
            );
        }
        assert_eq!(
            b.private,
            0,
            "{name}: private attributes in {}",
            b.path.display()
        );
        assert_eq!(value(b, "PatientIdentityRemoved"), Some("YES"));
        assert_eq!(b.codes, ["113100"], "{name}: method codes");
        assert_eq!(
            value(b, "LongitudinalTemporalInformationModified"),
            Some("REMOVED")
        );
        assert!(
            value(b, "PatientName").is_some() && value(b, "PatientID").is_some(),
            "{name}: Type 2 PatientName/PatientID must stay present"
        );
    }
    eprintln!("{name}: identifying attributes present in the input: {present:?}");
    assert!(
        present.len() >= 2,
        "{name}: the input should carry identifying attributes"
    );

    // No original UID survives anywhere, at any depth or in the file meta.
    let old_uids: BTreeSet<&String> = before.iter().flat_map(|d| &d.uids).collect();
    for b in &after {
        for u in &b.uids {
            assert!(
                !old_uids.contains(u),
                "{name}: original UID {u} in {}",
                b.path.display()
            );
        }
    }
    // One study, series and frame of reference for all files; one SOP instance per file.
    for key in [
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
    ] {
        let new: BTreeSet<_> = after.iter().map(|d| value(d, key)).collect();
        let old: BTreeSet<_> = before.iter().map(|d| value(d, key)).collect();
        assert_eq!(new.len(), 1, "{name}: {key} differs between files: {new:?}");
        assert_eq!(old.len(), 1);
        assert_ne!(new, old, "{name}: {key} unchanged");
    }
    let sops: BTreeSet<_> = after.iter().map(|d| value(d, "SOPInstanceUID")).collect();
    assert_eq!(
        sops.len(),
        after.len(),
        "{name}: SOPInstanceUIDs not unique"
    );
    for b in &after {
        assert_eq!(
            value(b, "SOPInstanceUID"),
            value(b, "MediaStorageSOPInstanceUID"),
            "{name}: file meta follows the new SOPInstanceUID"
        );
    }

    // The record names what was removed, and only that (top level).
    let Source::Dicom(series) = &vol.source else {
        unreachable!()
    };
    let report = series.identifying_fields(&Options::default());
    let reported_removed: BTreeSet<&str> = report
        .iter()
        .filter(|c| {
            c.action == ChangeKind::Removed && !c.tag.contains('/') && !c.tag.contains("xxxx")
        })
        .map(|c| c.attribute.as_str())
        .collect();
    let mut really_removed = BTreeSet::new();
    for (a, b) in before.iter().zip(&after) {
        for key in a.top.keys() {
            if !b.top.contains_key(key) {
                really_removed.insert(key.as_str());
            }
        }
    }
    assert_eq!(
        reported_removed, really_removed,
        "{name}: removed attributes vs record"
    );
    eprintln!("{name}: removed {really_removed:?}");
    eprintln!(
        "{name}: record {:?}",
        report
            .iter()
            .map(|c| format!("{} {:?}", c.attribute, c.action))
            .collect::<Vec<_>>()
    );

    // Same geometry and voxels, read back by us and by pydicom.
    let back = dicom::load(std::slice::from_ref(&out)).unwrap().remove(0);
    assert_eq!(back.voxels, vol.voxels, "{name}: voxels");
    assert!(
        (back.affine.0 - vol.affine.0).amax() < 1e-6,
        "{name}: affine"
    );
    let err = compare_with_pydicom(&back, &tmp);
    assert!(err < 1e-3, "{name}: pydicom geometry differs by {err} mm");

    // dcmtk parses every file; dciodvfy finds no error the input did not already have.
    let args: Vec<&str> = outputs.iter().map(|p| p.to_str().unwrap()).collect();
    let mut dcmdump_args = vec!["-q"];
    dcmdump_args.extend(&args);
    run("dcmdump", &dcmdump_args);
    for n in [0, inputs.len() / 2, inputs.len() - 1] {
        let new: Vec<_> = dciodvfy_errors(&outputs[n])
            .difference(&dciodvfy_errors(&inputs[n]))
            .cloned()
            .collect();
        assert!(
            new.is_empty(),
            "{name}: dciodvfy errors added in {}: {new:?}",
            outputs[n].display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn basic_profile_on_philips_series() {
    basic_profile_on("mri/philips_mprage_t1", "philips");
}

#[test]
fn basic_profile_on_siemens_series() {
    basic_profile_on("mri/siemens_t1_2d_hfs", "siemens");
}

#[test]
fn basic_profile_on_ct_series() {
    basic_profile_on("ct/invesalius_ct_dicom", "invesalius");
}

/// The options keep what they say and nothing else, and are recorded with their codes.
#[test]
fn options_keep_dates_and_patient_characteristics() {
    let vol = dicom::load(&[real("mri/siemens_t1_2d_hfs")])
        .unwrap()
        .remove(0);
    let tmp = scratch("deid-options");
    let opts = Options {
        retain_full_dates: true,
        retain_patient_characteristics: true,
        face_removed: true,
        ..Options::default()
    };
    let outputs = saved(&vol, &tmp.join("out"), opts);
    let before = dump(&files_of(&vol));
    let after = dump(&outputs);
    let kept = [
        "StudyDate",
        "SeriesDate",
        "AcquisitionDate",
        "ContentDate",
        "StudyTime",
        "SeriesTime",
        "AcquisitionTime",
        "ContentTime",
        "PerformedProcedureStepStartDate",
        "PatientAge",
        "PatientSex",
        "PatientSize",
        "PatientWeight",
    ];
    let still_changed = [
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "InstitutionName",
        "DeviceSerialNumber",
        "StationName",
    ];
    for (a, b) in before.iter().zip(&after) {
        for key in kept {
            assert!(
                value(a, key).is_some_and(|v| !v.is_empty()),
                "input has {key}"
            );
            assert_eq!(value(b, key), value(a, key), "{key} kept");
        }
        for key in still_changed {
            assert_ne!(value(b, key), value(a, key), "{key} still de-identified");
        }
        assert_eq!(b.codes, ["113100", "113102", "113106", "113108"]);
        assert_eq!(
            value(b, "LongitudinalTemporalInformationModified"),
            Some("UNMODIFIED")
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Two series of one study (the real series and a second one made from it with pydicom, as a
/// PACS holds a rescan): written separately, they still share the new study UID, frame of
/// reference and patient pseudonym, and keep distinct series.
#[test]
fn series_of_one_study_stay_together() {
    let tmp = scratch("deid-study");
    let input = tmp.join("in");
    copy_dir(&real("mri/siemens_t1_2d_hfs"), &input);
    let first = dicom::load(std::slice::from_ref(&input)).unwrap().remove(0);
    let script =
        "import sys, pydicom\nfor src in sys.argv[2:]:\n    ds = pydicom.dcmread(src)\n    \
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + '.9'\n    ds.SeriesNumber = 9\n    \
        ds.SOPInstanceUID = ds.SOPInstanceUID + '.9'\n    \
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID\n    \
        ds.save_as(sys.argv[1] + '/rescan_' + src.split('/')[-1], enforce_file_format=True)\n";
    let mut args = vec![input.to_str().unwrap().to_string()];
    args.extend(
        files_of(&first)
            .iter()
            .map(|f| f.to_str().unwrap().to_string()),
    );
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    python(script, &argv);
    let vols = dicom::load(std::slice::from_ref(&input)).unwrap();
    assert_eq!(vols.len(), 2, "two series");
    let mut dumps = Vec::new();
    for (n, v) in vols.iter().enumerate() {
        let outs = saved(v, &tmp.join(format!("out{n}")), Options::default());
        dumps.push(dump(&outs[..1]).remove(0));
    }
    for key in [
        "StudyInstanceUID",
        "FrameOfReferenceUID",
        "PatientID",
        "PatientName",
    ] {
        assert_eq!(
            value(&dumps[0], key),
            value(&dumps[1], key),
            "{key} differs between series"
        );
    }
    assert_ne!(
        value(&dumps[0], "SeriesInstanceUID"),
        value(&dumps[1], "SeriesInstanceUID")
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
