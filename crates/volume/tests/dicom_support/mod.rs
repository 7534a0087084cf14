//! Shared helpers for the DICOM tests: independent references (dcm2niix, nibabel, pydicom,
//! dcmtk) run as external programs. A missing tool fails the test with instructions.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use defacer_volume::{Affine, Volume};

/// Runs a program and returns its stdout; panics naming the program if it is missing or fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): the DICOM tests need dcm2niix, dcmtk and python3 \
             with nibabel and pydicom installed"
            )
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn python(script: &str, args: &[&str]) -> String {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    run("python3", &a)
}

/// A NIfTI image as nibabel reads it: affine, shape and raw (unscaled) stored values.
pub struct NiftiRef {
    pub affine: Affine,
    pub shape: [usize; 3],
    /// Stored values, Fortran order.
    pub data: Vec<i64>,
    pub scl_slope: f64,
    pub scl_inter: f64,
}

const DUMP_NIFTI: &str = r#"
import sys, json, numpy as np, nibabel as nib
img = nib.load(sys.argv[1])
raw = np.asarray(img.dataobj.get_unscaled() if hasattr(img.dataobj, 'get_unscaled') else img.dataobj)
raw = raw.reshape(raw.shape[:3])
raw.astype('<i8').ravel(order='F').tofile(sys.argv[2])
slope, inter = img.header.get_slope_inter()
print(json.dumps({'affine': img.affine.tolist(), 'shape': list(raw.shape),
                  'slope': 1.0 if slope is None else float(slope),
                  'inter': 0.0 if inter is None else float(inter)}))
"#;

pub fn read_nifti_with_nibabel(path: &Path, scratch: &Path) -> NiftiRef {
    let raw = scratch.join("nibabel.raw");
    let json = python(DUMP_NIFTI, &[path.to_str().unwrap(), raw.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let mut m = [[0.0; 4]; 4];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = v["affine"][r][c].as_f64().unwrap();
        }
    }
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let bytes = std::fs::read(&raw).unwrap();
    let data = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    NiftiRef {
        affine: Affine::from_row_major(m),
        shape: [shape[0], shape[1], shape[2]],
        data,
        scl_slope: v["slope"].as_f64().unwrap(),
        scl_inter: v["inter"].as_f64().unwrap(),
    }
}

/// Converts a DICOM folder with dcm2niix (uncompressed NIfTI, no sidecar) and returns the paths
/// of the NIfTI files it wrote, sorted, with its console output.
pub fn dcm2niix(dicom_dir: &Path, scratch: &Path) -> (Vec<PathBuf>, String) {
    let out = scratch.join("dcm2niix");
    std::fs::create_dir_all(&out).unwrap();
    let log = run(
        "dcm2niix",
        &[
            "-z",
            "n",
            "-b",
            "n",
            "-o",
            out.to_str().unwrap(),
            "-f",
            "out",
            dicom_dir.to_str().unwrap(),
        ],
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nii"))
        .collect();
    files.sort();
    (files, log)
}

/// Stored value of our voxel `(i, j, k)` (frame 0) as i64.
pub fn stored(vol: &Volume, ijk: [usize; 3]) -> i64 {
    let a = vol.voxels.frame_f32(0);
    a[[ijk[0], ijk[1], ijk[2]]] as i64
}

/// Result of comparing a volume to a reference image voxel by voxel in world space.
#[derive(Debug)]
pub struct WorldComparison {
    /// Largest distance (mm) between the world position of one of our voxels and that of the
    /// reference voxel it maps to.
    pub max_position_error_mm: f64,
    /// Voxels whose world position falls outside the reference grid.
    pub outside: usize,
    /// Voxels whose stored values differ.
    pub different: usize,
    pub compared: usize,
}

/// Maps each of our voxels to world, then to the nearest reference voxel through the inverse of
/// the reference affine, and compares stored values (`reference` values Fortran order).
pub fn compare_in_world(
    vol: &Volume,
    refer: &NiftiRef,
    value_of: impl Fn(i64) -> i64,
) -> WorldComparison {
    let inv = refer
        .affine
        .inverse()
        .expect("reference affine is singular");
    let [nx, ny, nz, _] = vol.dims();
    let ours = vol.voxels.frame_f32(0);
    let [rx, ry, rz] = refer.shape;
    let mut c = WorldComparison {
        max_position_error_mm: 0.0,
        outside: 0,
        different: 0,
        compared: 0,
    };
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let w = vol.affine.voxel_to_world([i as f64, j as f64, k as f64]);
                let r = inv.voxel_to_world(w);
                let ri = [r[0].round(), r[1].round(), r[2].round()];
                let back = refer.affine.voxel_to_world(ri);
                let err = ((back[0] - w[0]).powi(2)
                    + (back[1] - w[1]).powi(2)
                    + (back[2] - w[2]).powi(2))
                .sqrt();
                c.max_position_error_mm = c.max_position_error_mm.max(err);
                if ri
                    .iter()
                    .zip([rx, ry, rz])
                    .any(|(&x, n)| x < 0.0 || x >= n as f64)
                {
                    c.outside += 1;
                    continue;
                }
                let (a, b, d) = (ri[0] as usize, ri[1] as usize, ri[2] as usize);
                let theirs = refer.data[a + rx * (b + ry * d)];
                c.compared += 1;
                if value_of(ours[[i, j, k]] as i64) != theirs {
                    c.different += 1;
                }
            }
        }
    }
    c
}

/// Copies a directory's files (flat) into `dest`.
pub fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dest.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// One frame of one file as pydicom reads it.
pub struct PydicomFrame {
    pub path: PathBuf,
    pub frame: usize,
    pub sop_instance_uid: String,
    /// RAS world positions of pixels (column 0, row 0), (last column, row 0), (column 0, last row).
    pub corners: [[f64; 3]; 3],
    /// Stored values, row after row.
    pub pixels: Vec<i64>,
}

const DUMP_DICOM: &str = r#"
import sys, json, numpy as np, pydicom
raw_out = open(sys.argv[1], 'wb')
out = []
def first(ds, seq):
    return ds[seq][0] if seq in ds and len(ds[seq].value) else None
for path in sys.argv[2:]:
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    n = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    if n == 1:
        arr = arr.reshape((1,) + arr.shape[-2:])
    shared = first(ds, 'SharedFunctionalGroupsSequence')
    per = ds.PerFrameFunctionalGroupsSequence if 'PerFrameFunctionalGroupsSequence' in ds else None
    for f in range(n):
        def get(seq, attr):
            for grp in ([per[f]] if per is not None else []) + ([shared] if shared is not None else []):
                item = first(grp, seq)
                if item is not None and attr in item:
                    return [float(x) for x in item[attr].value]
            return [float(x) for x in ds[attr].value]
        ipp = np.array(get('PlanePositionSequence', 'ImagePositionPatient'))
        iop = np.array(get('PlaneOrientationSequence', 'ImageOrientationPatient'))
        sp = get('PixelMeasuresSequence', 'PixelSpacing')
        rows, cols = arr.shape[1], arr.shape[2]
        def world(i, j):
            p = ipp + iop[:3] * sp[1] * i + iop[3:] * sp[0] * j
            return [-p[0], -p[1], p[2]]
        out.append({'path': path, 'frame': f, 'sop': str(ds.SOPInstanceUID),
                    'corners': [world(0, 0), world(cols - 1, 0), world(0, rows - 1)]})
        arr[f].astype('<i8').ravel(order='C').tofile(raw_out)
raw_out.close()
print(json.dumps(out))
"#;

/// Reads every frame of `files` with pydicom: geometry computed from its own reading of the
/// position, orientation and spacing attributes, and its decoded pixels.
pub fn pydicom_frames(files: &[PathBuf], scratch: &Path) -> Vec<PydicomFrame> {
    let raw = scratch.join("pydicom.raw");
    let mut args = vec![raw.to_str().unwrap().to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let json = python(DUMP_DICOM, &argv);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let values = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()));
    let mut frames = Vec::new();
    for f in v.as_array().unwrap() {
        let mut corners = [[0.0; 3]; 3];
        for (c, corner) in corners.iter_mut().enumerate() {
            for (a, x) in corner.iter_mut().enumerate() {
                *x = f["corners"][c][a].as_f64().unwrap();
            }
        }
        frames.push(PydicomFrame {
            path: PathBuf::from(f["path"].as_str().unwrap()),
            frame: f["frame"].as_u64().unwrap() as usize,
            sop_instance_uid: f["sop"].as_str().unwrap().to_string(),
            corners,
            pixels: Vec::new(),
        });
    }
    // Every frame has the same size in the series we compare.
    let all: Vec<i64> = values.collect();
    let per = all.len() / frames.len().max(1);
    for (n, fr) in frames.iter_mut().enumerate() {
        fr.pixels = all[n * per..(n + 1) * per].to_vec();
    }
    frames
}

/// Compares every slice of a loaded DICOM volume with pydicom's reading of the file and frame it
/// came from: corner world positions (returns the largest difference, mm) and every stored value.
pub fn compare_with_pydicom(vol: &Volume, scratch: &Path) -> f64 {
    let defacer_volume::Source::Dicom(series) = &vol.source else {
        panic!("not a DICOM volume")
    };
    let files: Vec<PathBuf> = series.instances.iter().map(|i| i.path.clone()).collect();
    let frames = pydicom_frames(&files, scratch);
    let [nx, ny, nz, _] = vol.dims();
    let a = vol.voxels.frame_f32(0);
    // Through the slice positions when the stack is uneven (the affine alone otherwise).
    let map = vol.voxel_map().expect("invertible affine");
    let mut max_err: f64 = 0.0;
    let mut seen = vec![false; nz];
    for inst in &series.instances {
        for (f, &k) in inst.slices.iter().enumerate() {
            let r = frames
                .iter()
                .find(|r| r.path == inst.path && r.frame == f)
                .unwrap_or_else(|| {
                    panic!("pydicom did not read frame {f} of {}", inst.path.display())
                });
            assert_eq!(r.sop_instance_uid, inst.sop_instance_uid);
            seen[k] = true;
            let ours = [
                map.to_world([0.0, 0.0, k as f64]),
                map.to_world([(nx - 1) as f64, 0.0, k as f64]),
                map.to_world([0.0, (ny - 1) as f64, k as f64]),
            ];
            for (o, t) in ours.iter().zip(&r.corners) {
                let d =
                    ((o[0] - t[0]).powi(2) + (o[1] - t[1]).powi(2) + (o[2] - t[2]).powi(2)).sqrt();
                max_err = max_err.max(d);
            }
            assert_eq!(
                r.pixels.len(),
                nx * ny,
                "{}: frame size",
                inst.path.display()
            );
            for j in 0..ny {
                for i in 0..nx {
                    assert_eq!(
                        a[[i, j, k]] as i64,
                        r.pixels[j * nx + i],
                        "{} frame {f}: voxel ({i}, {j}) differs from pydicom",
                        inst.path.display()
                    );
                }
            }
        }
    }
    assert!(seen.iter().all(|&s| s), "some slices came from no file");
    max_err
}

const COMPARE_WRITTEN: &str = r#"
import sys, json, pydicom
# Tags the writer changes besides de-identification, then those of the profile (argv[1]).
allowed = {0x00080018, 0x00080008, 0x7FE00010, 0x00082111, 0x0020000E,
           0x00120062, 0x00120063, 0x00120064, 0x00280303}
allowed |= {int(t, 16) for t in sys.argv[1].split(',')}
problems = []
def ignored(tag):
    # Private attributes are removed, and overlay data and comments (60xx,3000/4000).
    return tag in allowed or tag.group % 2 == 1 or (
        0x6000 <= tag.group <= 0x601E and tag.element in (0x3000, 0x4000))
def compare(a, b, where):
    for elem in a:
        if ignored(elem.tag):
            continue
        if elem.tag not in b:
            problems.append(f'{where}: {elem.tag} {elem.keyword} missing')
        elif elem.VR == 'SQ':
            if len(elem.value) != len(b[elem.tag].value):
                problems.append(f'{where}: {elem.keyword} item count changed')
            for n, (x, y) in enumerate(zip(elem.value, b[elem.tag].value)):
                compare(x, y, f'{where} {elem.keyword}[{n}]')
        elif b[elem.tag].value != elem.value or b[elem.tag].VR != elem.VR:
            problems.append(f'{where}: {elem.tag} {elem.keyword} changed: {elem.value!r} -> {b[elem.tag].value!r}')
    for elem in b:
        if elem.tag not in a and elem.tag not in allowed:
            problems.append(f'{where}: {elem.tag} {elem.keyword} added')
args = sys.argv[2:]
for src, dst in zip(args[0::2], args[1::2]):
    a = pydicom.dcmread(src)
    b = pydicom.dcmread(dst)
    b.pixel_array  # must decode
    if b.SOPInstanceUID == a.SOPInstanceUID:
        problems.append(f'{dst}: SOPInstanceUID unchanged')
    if b.SeriesInstanceUID == a.SeriesInstanceUID:
        problems.append(f'{dst}: SeriesInstanceUID unchanged')
    if b.file_meta.MediaStorageSOPInstanceUID != b.SOPInstanceUID:
        problems.append(f'{dst}: MediaStorageSOPInstanceUID does not match SOPInstanceUID')
    # FrameType value 1 of enhanced files must follow ImageType: expect DERIVED there too.
    for groups in ['SharedFunctionalGroupsSequence', 'PerFrameFunctionalGroupsSequence']:
        for item in (a[groups].value if groups in a else []):
            for ft_seq in ['MRImageFrameTypeSequence', 'CTImageFrameTypeSequence']:
                for ft in (item[ft_seq].value if ft_seq in item else []):
                    if 'FrameType' in ft:
                        ft.FrameType = ['DERIVED'] + list(ft.FrameType)[1:]
    it_a, it_b = list(a.ImageType), list(b.ImageType)
    if it_b[0] != 'DERIVED' or it_b[1:] != it_a[1:]:
        problems.append(f'{dst}: ImageType {it_b} from {it_a}')
    if 'DerivationDescription' not in b:
        problems.append(f'{dst}: no DerivationDescription')
    if b.get('PatientIdentityRemoved') != 'YES':
        problems.append(f'{dst}: PatientIdentityRemoved is not YES')
    compare(a, b, dst)
    for key in ['MediaStorageSOPClassUID', 'ImplementationClassUID']:
        if getattr(a.file_meta, key, None) != getattr(b.file_meta, key, None):
            problems.append(f'{dst}: file meta {key} changed')
print(json.dumps(problems))
"#;

/// Checks with pydicom that each written file decodes and differs from its source only where
/// writing is allowed to change it: the de-identification profile's attributes (`profile`, at
/// any depth), private attributes, and what the writer itself sets; returns the problems found
/// (empty when all is well).
pub fn pydicom_write_problems(pairs: &[(PathBuf, PathBuf)]) -> Vec<String> {
    let profile: Vec<String> = defacer_volume::deid::BASIC_PROFILE
        .iter()
        .map(|r| format!("{:04X}{:04X}", r.tag.group(), r.tag.element()))
        .collect();
    let mut args = vec![profile.join(",")];
    for (a, b) in pairs {
        args.push(a.to_str().unwrap().to_string());
        args.push(b.to_str().unwrap().to_string());
    }
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let json = python(COMPARE_WRITTEN, &argv);
    serde_json::from_str(json.trim()).unwrap()
}

/// Transfer syntax UID of a written file, read by pydicom.
pub fn transfer_syntax_of(path: &Path) -> String {
    python(
        "import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).file_meta.TransferSyntaxUID)",
        &[path.to_str().unwrap()],
    )
    .trim()
    .to_string()
}

/// Reads `src` with pydicom, runs `code` on the dataset `ds`, and writes the result to `dst`.
pub fn pydicom_edit(src: &Path, dst: &Path, code: &str) {
    let script = format!(
        "import sys, pydicom\nds = pydicom.dcmread(sys.argv[1])\n{code}\nds.save_as(sys.argv[2], enforce_file_format=True)\n"
    );
    python(&script, &[src.to_str().unwrap(), dst.to_str().unwrap()]);
}
