//! The files a NIfTI volume lives in (`.nii`, `.nii.gz`, `.hdr` + `.img`, gzipped or not) and
//! reading them without trusting sizes a header claims.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// deflate cannot expand data by more than about 1032:1, so a gzip file of `n` bytes cannot hold
/// more than this many times `n`; used to refuse absurd sizes before allocating.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// What is allocated up front for data read from gzip, before the stream proves it has more.
const GZIP_INITIAL_CAPACITY: usize = 256 << 20;

/// How a NIfTI volume is laid out on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// Header and data in one `.nii` (or `.nii.gz`) file.
    Single(PathBuf),
    /// Header in `.hdr`, data in `.img` (each possibly gzipped).
    Pair { hdr: PathBuf, img: PathBuf },
}

impl Files {
    /// The layout named by `path`: a pair when it ends in `.hdr` or `.img` (optionally `.gz`),
    /// a single file otherwise.
    pub fn from_path(path: &Path) -> Files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, gz) = match strip_suffix_ci(&name, ".gz") {
            Some(s) => (s.to_string(), &name[s.len()..]),
            None => (name.clone(), ""),
        };
        let ext_at = stem.len().saturating_sub(4);
        let ext = &stem[ext_at..];
        if !stem.is_char_boundary(ext_at)
            || !matches!(ext.to_ascii_lowercase().as_str(), ".hdr" | ".img")
        {
            return Files::Single(path.to_path_buf());
        }
        let base = &stem[..ext_at];
        // Keep the case the user chose (`.HDR` pairs with `.IMG`).
        let upper = ext.chars().any(|c| c.is_ascii_uppercase());
        let (h, i) = if upper {
            (".HDR", ".IMG")
        } else {
            (".hdr", ".img")
        };
        Files::Pair {
            hdr: path.with_file_name(format!("{base}{h}{gz}")),
            img: path.with_file_name(format!("{base}{i}{gz}")),
        }
    }

    /// The file holding the header.
    pub fn header_path(&self) -> &Path {
        match self {
            Files::Single(p) => p,
            Files::Pair { hdr, .. } => hdr,
        }
    }
    /// The file holding the voxel data.
    pub fn data_path(&self) -> &Path {
        match self {
            Files::Single(p) => p,
            Files::Pair { img, .. } => img,
        }
    }
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(at) && s[at..].eq_ignore_ascii_case(suffix)).then(|| &s[..at])
}

/// True when the name ends in `.gz` (any case): such outputs are gzipped.
pub fn is_gz_name(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| strip_suffix_ci(&n.to_string_lossy(), ".gz").is_some())
}

/// A file opened for sequential reading, transparently gunzipped, that knows an upper bound of
/// how many bytes it can still deliver.
pub struct Stream {
    path: PathBuf,
    reader: Box<dyn Read>,
    gzipped: bool,
    /// Upper bound of the bytes left (exact for plain files).
    left_max: u64,
}

impl Stream {
    /// Opens `path`; gzip is recognised by its magic bytes, not the name.
    pub fn open(path: &Path) -> Result<Stream> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut buf = BufReader::with_capacity(1 << 16, file);
        let mut magic = [0u8; 2];
        let n = read_full(&mut buf, &mut magic).map_err(|e| Error::io(path, e))?;
        let head = std::io::Cursor::new(magic[..n].to_vec()).chain(buf);
        let gzipped = n == 2 && magic == [0x1f, 0x8b];
        let (reader, left_max): (Box<dyn Read>, u64) = if gzipped {
            let bound = len
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(1 << 20);
            (Box::new(MultiGzDecoder::new(head)), bound)
        } else {
            (Box::new(head), len)
        };
        Ok(Stream {
            path: path.to_path_buf(),
            reader,
            gzipped,
            left_max,
        })
    }

    pub fn is_gzipped(&self) -> bool {
        self.gzipped
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The exact number of bytes left, when known (plain files).
    pub fn exact_bytes_left(&self) -> Option<u64> {
        (!self.gzipped).then_some(self.left_max)
    }

    /// Reads up to `n` bytes (fewer only at the end of the data).
    pub fn read_up_to(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; n.min(self.left_max as usize)];
        let got = read_full(&mut self.reader, &mut out).map_err(|e| self.read_error(e))?;
        out.truncate(got);
        self.left_max = self.left_max.saturating_sub(got as u64);
        Ok(out)
    }

    /// Reads exactly `n` bytes of `what`; refuses before allocating when the file cannot hold them.
    pub fn read_exact(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        let short = |got: u64| {
            Error::invalid(
                &self.path,
                format!("truncated {what}: needs {n} bytes, file has {got}"),
            )
        };
        if n > self.left_max {
            return Err(if self.gzipped {
                Error::invalid(
                    &self.path,
                    format!("{what} of {n} bytes cannot fit in a gzip file of this size"),
                )
            } else {
                short(self.left_max)
            });
        }
        let len = usize::try_from(n).map_err(|_| short(0))?;
        let out = if self.gzipped {
            // The bound above is loose for gzip: grow as data really arrives, so a lying header
            // costs at most what the stream holds.
            let mut out = Vec::with_capacity(len.min(GZIP_INITIAL_CAPACITY));
            (&mut self.reader)
                .take(n)
                .read_to_end(&mut out)
                .map_err(|e| self.read_error(e))?;
            out
        } else {
            let mut out = vec![0u8; len];
            let got = read_full(&mut self.reader, &mut out).map_err(|e| self.read_error(e))?;
            out.truncate(got);
            out
        };
        if out.len() < len {
            return Err(short(out.len() as u64));
        }
        self.left_max -= n;
        Ok(out)
    }

    /// Reads everything left, refusing more than `cap` bytes (`what` names it in the error).
    pub fn read_rest(&mut self, cap: u64, what: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.reader)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.read_error(e))?;
        if out.len() as u64 > cap {
            return Err(Error::invalid(
                &self.path,
                format!("{what} is larger than {cap} bytes"),
            ));
        }
        self.left_max = self.left_max.saturating_sub(out.len() as u64);
        Ok(out)
    }

    /// Reads and drops what is left, so that gzip verifies its checksum over the whole stream.
    pub fn finish(mut self) -> Result<()> {
        if self.gzipped {
            std::io::copy(&mut self.reader, &mut std::io::sink())
                .map_err(|e| self.read_error(e))?;
        }
        Ok(())
    }

    fn read_error(&self, e: std::io::Error) -> Error {
        if self.gzipped {
            // flate2 reports bad deflate data, bad checksums and early ends as I/O errors; for
            // the user they mean the file is damaged.
            Error::invalid(&self.path, format!("corrupt or truncated gzip data ({e})"))
        } else {
            Error::io(&self.path, e)
        }
    }
}

/// Like `read_exact`, but returns how many bytes were read when the input ends first.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(p: &str) -> Option<(String, String)> {
        match Files::from_path(Path::new(p)) {
            Files::Pair { hdr, img } => {
                Some((hdr.display().to_string(), img.display().to_string()))
            }
            Files::Single(_) => None,
        }
    }

    #[test]
    fn pairs_are_named_by_either_half_keeping_case_and_gzip() {
        let expect = |h: &str, i: &str| Some((h.to_string(), i.to_string()));
        assert_eq!(pair("d/a.hdr"), expect("d/a.hdr", "d/a.img"));
        assert_eq!(pair("d/a.img"), expect("d/a.hdr", "d/a.img"));
        assert_eq!(pair("a.IMG.gz"), expect("a.HDR.gz", "a.IMG.gz"));
        assert_eq!(pair("a.nii.gz"), None);
        assert_eq!(pair("a.nii"), None);
        assert_eq!(pair("héad.hdr"), expect("héad.hdr", "héad.img"));
        assert_eq!(pair("é"), None);
    }

    #[test]
    fn gzip_is_named_by_suffix() {
        assert!(is_gz_name(Path::new("x/a.nii.GZ")));
        assert!(!is_gz_name(Path::new("x/a.nii")));
    }
}
