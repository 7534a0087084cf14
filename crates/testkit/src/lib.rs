//! # defacer-testkit
//!
//! Where the real head volumes used by tests live. Tests never skip silently when they are
//! missing: they fail and say how to get them.
//!
//! The location is `$DEFACER_DATA`, or `testdata/real` at the workspace root when unset (that is
//! where `testdata/fetch-real-data.sh` puts them).
//!
//! ```
//! let p = defacer_testkit::data_dir().join("mri/ch2.nii.gz");
//! assert!(p.ends_with("mri/ch2.nii.gz"));
//! ```

use std::path::{Path, PathBuf};

/// The environment variable that points to the real-data folder.
pub const DATA_ENV: &str = "DEFACER_DATA";

/// The real-data folder (it may not exist; use [`real`] in tests).
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("testdata/real"),
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A path inside the real-data folder; panics with instructions if it is missing, so a test that
/// needs real data fails loudly instead of passing vacuously.
pub fn real(rel: &str) -> PathBuf {
    let p = data_dir().join(rel);
    assert!(
        p.exists(),
        "real test volume {} is missing: set {DATA_ENV} to the data folder or run \
         testdata/fetch-real-data.sh",
        p.display()
    );
    p
}

/// A scratch directory for a test's outputs.
pub fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("defacer-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("cannot create scratch directory");
    p
}

/// The hand-placed landmark file `testdata/landmarks/<file>` of one head: its volume (relative to
/// the data folder) and every landmark that is in view, as world RAS mm.
pub fn landmarks(file: &str) -> (String, Vec<(String, [f64; 3])>) {
    let path = workspace_root().join("testdata/landmarks").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("landmark file {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("landmark file {}: {e}", path.display()));
    let bad = |what: &str| -> ! { panic!("landmark file {}: {what}", path.display()) };
    let marks = doc["landmarks"]
        .as_object()
        .unwrap_or_else(|| bad("no landmarks"))
        .iter()
        // Landmarks outside the field of view have no position ("absent" says why).
        .filter_map(|(name, v)| {
            let p: Vec<f64> = v["ras"]
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            let p: [f64; 3] = p.try_into().unwrap_or_else(|_| bad("ras is not 3 numbers"));
            Some((name.clone(), p))
        })
        .collect();
    let volume = doc["volume"].as_str().unwrap_or_else(|| bad("no volume"));
    (volume.to_string(), marks)
}
