//! Turning the user's INPUT arguments into work items with output paths.
//!
//! A NIfTI file is one item; a directory whose own files are DICOM is one item (its series);
//! a folder tree is walked and each NIfTI file and each DICOM directory in it becomes an item
//! whose output mirrors its place in the tree.

use std::fs;
use std::path::{Path, PathBuf};

use defacer_volume::nifti::is_nifti_path;

/// One unit of work.
#[derive(Debug, Clone)]
pub struct Item {
    /// What to load: one NIfTI file, or the DICOM files of one directory.
    pub input: Input,
    /// Where the result goes: a file for NIfTI, a directory for DICOM.
    pub output: PathBuf,
    /// The item's place below its input root (its name, for a single input), which side outputs
    /// such as masks and QC pictures mirror.
    pub rel: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Input {
    Nifti(PathBuf),
    Dicom { dir: PathBuf, files: Vec<PathBuf> },
}

impl Input {
    pub fn label(&self) -> &Path {
        match self {
            Input::Nifti(p) => p,
            Input::Dicom { dir, .. } => dir,
        }
    }
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Input::Nifti(p) => vec![p.clone()],
            Input::Dicom { files, .. } => files.clone(),
        }
    }
}

/// Plans the work for `inputs` written under `output`. With exactly one NIfTI file or one DICOM
/// directory as input, `output` is that item's output itself; otherwise it is a folder that
/// mirrors the input layout. Errors are one line naming the path.
pub fn plan(inputs: &[PathBuf], output: &Path) -> Result<Vec<Item>, String> {
    let mut found: Vec<(PathBuf, Input)> = Vec::new(); // (path relative to its root, input)
    let single_dir = |root: &Path| {
        root.file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("input"))
    };
    for root in inputs {
        let meta = fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
        if meta.is_file() {
            if is_nifti_path(root) {
                let name = root.file_name().map(PathBuf::from).unwrap_or_default();
                found.push((name, Input::Nifti(root.clone())));
            } else {
                return Err(format!(
                    "{}: not a NIfTI file (.nii, .nii.gz, .hdr/.img); give DICOM series as their folder",
                    root.display()
                ));
            }
        } else {
            let before = found.len();
            walk(root, root, &mut found)?;
            // A DICOM folder given directly is named by its own name, not by "".
            for (rel, _) in &mut found[before..] {
                if rel.as_os_str().is_empty() {
                    *rel = single_dir(root);
                }
            }
            if found.len() == before {
                return Err(format!(
                    "{}: no NIfTI files or DICOM series found",
                    root.display()
                ));
            }
        }
    }
    let single = found.len() == 1 && inputs.len() == 1;
    Ok(found
        .into_iter()
        .map(|(rel, input)| {
            let output = if single {
                output.to_path_buf()
            } else {
                output.join(&rel)
            };
            Item { input, output, rel }
        })
        .collect())
}

/// Collects NIfTI files and DICOM directories below `dir`, in sorted (deterministic) order.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(PathBuf, Input)>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read directory: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let mut dicom_files = Vec::new();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, found)?;
        } else if is_nifti_path(&p) {
            // The .img of an .hdr/.img pair is loaded with its .hdr.
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".img") || lower.ends_with(".img.gz") {
                continue;
            }
            found.push((rel(&p), Input::Nifti(p)));
        } else if looks_like_dicom(&p) {
            dicom_files.push(p);
        }
    }
    if !dicom_files.is_empty() {
        let r = rel(dir);
        found.push((
            r,
            Input::Dicom {
                dir: dir.to_path_buf(),
                files: dicom_files,
            },
        ));
    }
    Ok(())
}

/// DICOM Part 10 files carry "DICM" at byte 128. Walking a folder tree, only those are taken
/// as DICOM: anything else in a tree (notes, spreadsheets, DICOMDIR indexes excepted by the
/// loader) must not turn into a failed item.
fn looks_like_dicom(p: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 132];
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
        && &buf[128..132] == b"DICM"
}

/// A side output's path for `item`: `side` itself when the run has a single item, otherwise
/// `side/<item's place>` with the NIfTI extension replaced by `suffix`.
pub fn side_path(side: &Path, item: &Item, single: bool, suffix: &str) -> PathBuf {
    if single {
        return side.to_path_buf();
    }
    let rel = item.rel.to_string_lossy();
    let stem = rel
        .strip_suffix(".nii.gz")
        .or_else(|| rel.strip_suffix(".nii"))
        .unwrap_or(&rel);
    side.join(format!("{stem}{suffix}"))
}

/// Loads an item's volumes: every series of a DICOM folder, or only `series` when given.
pub fn load(
    input: &Input,
    series: Option<&str>,
) -> defacer_volume::Result<Vec<defacer_volume::Volume>> {
    match (input, series) {
        (Input::Dicom { files, .. }, Some(uid)) => {
            Ok(vec![defacer_volume::dicom::load_series(files, uid)?])
        }
        _ => defacer_volume::load(&input.paths()),
    }
}
