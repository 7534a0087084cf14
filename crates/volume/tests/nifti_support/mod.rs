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
    /// The scaling nibabel applies to the stored values (1 and 0 when unscaled).
    pub slope: f64,
    pub inter: f64,
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
raw = img.dataobj.get_unscaled()
if {dump:?}:
    le = raw.dtype.newbyteorder('<')
    open({dump:?}, 'wb').write(np.asarray(raw, dtype=le).tobytes(order='F'))
print(json.dumps(dict(affine=img.affine.tolist(), shape=list(img.shape), dtype=raw.dtype.name,
    slope=float(img.dataobj.slope), inter=float(img.dataobj.inter),
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
        slope: v["slope"].as_f64().expect("slope"),
        inter: v["inter"].as_f64().expect("inter"),
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

/// The decompressed bytes of a file (gzip recognised by its magic bytes).
pub fn raw_bytes(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        bytes
    }
}

/// Byte ranges of the NIfTI free-text fields that `save` scrubs, from the NIfTI-1 and NIfTI-2
/// standards (descrip, aux_file, db_name, intent_name, data_type / unused_str).
pub fn text_field_ranges(header_size: usize) -> Vec<std::ops::Range<usize>> {
    match header_size {
        348 => vec![148..228, 228..252, 14..32, 328..344, 4..14],
        540 => vec![240..320, 320..344, 508..524, 524..539],
        _ => panic!("not a NIfTI header size: {header_size}"),
    }
}

/// Byte range of vox_offset in the header.
pub fn vox_offset_range(header_size: usize) -> std::ops::Range<usize> {
    if header_size == 348 {
        108..112
    } else {
        168..176
    }
}
