//! nibabel as an independent reference for NIfTI tests: what it reads from a file.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// What nibabel reports for a file.
#[derive(Debug)]
pub struct Nib {
    pub affine: [[f64; 4]; 4],
    pub shape: Vec<usize>,
    pub dtype: String,
    /// `None` when nibabel considers the data unscaled.
    pub slope: Option<f64>,
    pub inter: Option<f64>,
    pub descrip: String,
}

/// Runs a Python snippet with nibabel imported as `nib` and numpy as `np`; panics with the
/// script's stderr so that a missing python3/nibabel is obvious.
pub fn python(script: &str) -> String {
    let full = format!("import sys, json\nimport numpy as np\nimport nibabel as nib\n{script}");
    let out = Command::new("python3")
        .arg("-c")
        .arg(&full)
        .output()
        .expect("python3 is needed by these tests (with numpy and nibabel installed)");
    assert!(
        out.status.success(),
        "python3 with nibabel failed (is nibabel installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// nibabel's view of `path`; if `dump` is given, the unscaled voxel values are written there as
/// little-endian bytes in file (Fortran) order.
pub fn nibabel(path: &Path, dump: Option<&Path>) -> Nib {
    let dump = dump.map(|d| d.display().to_string()).unwrap_or_default();
    let script = format!(
        r#"
img = nib.load({path:?})
h = img.header
s, i = h.get_slope_inter()
raw = img.dataobj.get_unscaled()
if {dump:?}:
    le = raw.dtype.newbyteorder('<')
    open({dump:?}, 'wb').write(np.asarray(raw, dtype=le).tobytes(order='F'))
print(json.dumps(dict(affine=img.affine.tolist(), shape=list(img.shape), dtype=raw.dtype.name,
    slope=None if s is None else float(s), inter=None if i is None else float(i),
    descrip=h['descrip'].item().decode('latin1'))))
"#,
        path = path.display().to_string(),
    );
    let v: serde_json::Value = serde_json::from_str(python(&script).trim()).expect("nibabel JSON");
    let affine = std::array::from_fn(|r| {
        std::array::from_fn(|c| v["affine"][r][c].as_f64().expect("affine number"))
    });
    Nib {
        affine,
        shape: v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect(),
        dtype: v["dtype"].as_str().unwrap().to_string(),
        slope: v["slope"].as_f64(),
        inter: v["inter"].as_f64(),
        descrip: v["descrip"].as_str().unwrap().to_string(),
    }
}

/// Largest absolute difference between two affines.
pub fn affine_diff(a: &[[f64; 4]; 4], b: &[[f64; 4]; 4]) -> f64 {
    let mut m = 0.0f64;
    for r in 0..4 {
        for c in 0..4 {
            m = m.max((a[r][c] - b[r][c]).abs());
        }
    }
    m
}

/// Every real NIfTI volume in the test data.
pub const REAL_NIFTI: &[&str] = &[
    "mri/ch2.nii.gz",
    "mri/ch2bet.nii.gz",
    "mri/t2w_partial_face.nii.gz",
    "ct/invesalius_ct.nii.gz",
    "templates/pydeface/mean_reg2mean.nii.gz",
    "templates/pydeface/facemask.nii.gz",
    "templates/mni152/MNI152_T1_2mm.nii.gz",
    "templates/mni152/mniMask.nii.gz",
];
