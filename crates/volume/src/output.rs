//! Atomic output: a file or directory appears at its final path complete, or not at all.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A sibling temporary path in the same directory (same filesystem, so `rename` is atomic).
fn temp_sibling(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = format!(".{name}.defacer-tmp-{}", std::process::id());
    dest.with_file_name(tmp)
}

/// Writes a file via `write`, into a temporary sibling that is renamed onto `dest` only when
/// everything succeeded; the temporary is removed on failure.
pub fn write_file_atomically<F>(dest: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    write_owned_file_atomically(dest, |f| {
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())
    })
}

/// [`write_file_atomically`] for a `write` that must own its file (a writer that hands the file
/// to threads of its own, such as the parallel gzip of [`crate::save`]) and gives it back when
/// done, to be synced before the rename.
pub fn write_owned_file_atomically<F>(dest: &Path, write: F) -> Result<()>
where
    F: FnOnce(fs::File) -> std::io::Result<fs::File>,
{
    let tmp = temp_sibling(dest);
    let result = (|| {
        let f = write(fs::File::create(&tmp)?)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(dest, e));
    }
    Ok(())
}

/// Fills a new directory via `fill` (given the temporary directory's path) and renames it onto
/// `dest`, which must not exist yet (or be an empty directory).
pub fn write_dir_atomically<F>(dest: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let tmp = temp_sibling(dest);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = fill(&tmp).and_then(|_| {
        if dest.is_dir() {
            // An empty directory may be replaced; a non-empty one is refused.
            fs::remove_dir(dest).map_err(|e| Error::io(dest, e))?;
        }
        fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
