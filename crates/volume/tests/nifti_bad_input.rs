//! Broken NIfTI files, made by damaging a real one: each gives a one-line error that names the
//! file and the problem, and never a panic. Failed saves leave nothing behind.

mod nifti_support;

use std::path::{Path, PathBuf};

use defacer_testkit::{real, scratch};
use defacer_volume::{nifti, Error, SaveOptions};
use nifti_support::raw_bytes;

/// A scratch directory removed when the test ends (pass or fail): these hold damaged copies of
/// a 7 MB volume.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        Dir(scratch(name))
    }
}

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The decompressed bytes of the real ch2 volume (NIfTI-1, little-endian, uint8, sform).
fn ch2() -> Vec<u8> {
    raw_bytes(&real("mri/ch2.nii.gz"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Loads `path`, expecting an error whose message names the file and contains `word`.
fn load_error(path: &Path, word: &str) -> Error {
    load_error_naming(path, &path.file_name().unwrap().to_string_lossy(), word)
}

/// Loads `path`, expecting a one-line error that names `file` and contains `word`.
fn load_error_naming(path: &Path, file: &str, word: &str) -> Error {
    let e = match nifti::load(path) {
        Ok(_) => panic!("{} loaded but is broken", path.display()),
        Err(e) => e,
    };
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(file), "error does not name the file: {msg}");
    assert!(msg.contains(word), "error does not say '{word}': {msg}");
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
    e
}

fn put_i16(b: &mut [u8], off: usize, v: i16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn truncated_header() {
    let dir = Dir::new("bad-trunc-hdr");
    let p = write(&dir, "short.nii", &ch2()[..200]);
    assert!(matches!(
        load_error(&p, "truncated header"),
        Error::Invalid { .. }
    ));
}

#[test]
fn truncated_data() {
    let dir = Dir::new("bad-trunc-data");
    let b = ch2();
    let p = write(&dir, "half.nii", &b[..b.len() / 2]);
    load_error(&p, "truncated voxel data");
    // The same through gzip, where the size is only known after decompressing.
    let gz = dir.join("half.nii.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &b[..b.len() / 2]).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    load_error(&gz, "truncated voxel data");
}

#[test]
fn wrong_magic() {
    let dir = Dir::new("bad-magic");
    let mut b = ch2();
    b[344..348].copy_from_slice(b"xyz\0");
    load_error(&write(&dir, "magic.nii", &b), "magic");
}

#[test]
fn wrong_sizeof_hdr() {
    let dir = Dir::new("bad-sizeof");
    let mut b = ch2();
    b[0..4].copy_from_slice(&349i32.to_le_bytes());
    load_error(&write(&dir, "sizeof.nii", &b), "sizeof_hdr");
}

#[test]
fn dims_not_matching_data() {
    let dir = Dir::new("bad-dims");
    let mut b = ch2();
    put_i16(&mut b, 42, 30000); // dim[1]: far more voxels than the file holds
    load_error(&write(&dir, "dims.nii", &b), "truncated voxel data");
    let mut b = ch2();
    put_i16(&mut b, 44, 0); // dim[2] = 0
    load_error(&write(&dir, "zero.nii", &b), "dim[2]");
    let mut b = ch2();
    put_i16(&mut b, 40, 5); // 5-D with dim[5] = 181
    put_i16(&mut b, 50, 181);
    assert!(matches!(
        load_error(&write(&dir, "5d.nii", &b), "5-D"),
        Error::Unsupported { .. }
    ));
}

#[test]
fn absurd_dims_in_gzip_are_refused_before_allocating() {
    let dir = Dir::new("bad-absurd");
    let mut b = ch2()[..352].to_vec();
    for (i, d) in [(42, 32767), (44, 32767), (46, 32767), (48, 32767)] {
        put_i16(&mut b, i, d);
    }
    put_i16(&mut b, 40, 4);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &b).unwrap();
    let p = dir.join("absurd.nii.gz");
    std::fs::write(&p, enc.finish().unwrap()).unwrap();
    load_error(&p, "cannot fit");
}

#[test]
fn vox_offset_beyond_file() {
    let dir = Dir::new("bad-voxoffset");
    let mut b = ch2();
    put_f32(&mut b, 108, 1.0e9);
    load_error(
        &write(&dir, "offset.nii", &b),
        "vox_offset 1000000000 lies beyond the end",
    );
    let mut b = ch2();
    put_f32(&mut b, 108, 100.0);
    load_error(&write(&dir, "inside.nii", &b), "inside the 348-byte header");
}

#[test]
fn nan_affine() {
    let dir = Dir::new("bad-nan");
    let mut b = ch2();
    put_f32(&mut b, 280, f32::NAN); // srow_x[0]; ch2 uses its sform
    let e = load_error(&write(&dir, "nan.nii", &b), "NaN");
    assert!(matches!(e, Error::Invalid { .. }));
}

#[test]
fn singular_affine() {
    let dir = Dir::new("bad-singular");
    let mut b = ch2();
    for i in 0..4 {
        put_f32(&mut b, 296 + 4 * i, 0.0); // srow_y = 0
    }
    load_error(&write(&dir, "singular.nii", &b), "singular");
}

#[test]
fn corrupted_gzip() {
    let dir = Dir::new("bad-gzip");
    let mut b = std::fs::read(real("mri/ch2.nii.gz")).unwrap();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 64] {
        *x ^= 0x5a;
    }
    load_error(&write(&dir, "corrupt.nii.gz", &b), "gzip");
    // A damaged checksum alone is caught too: the whole stream is verified.
    let mut b = std::fs::read(real("mri/ch2.nii.gz")).unwrap();
    let n = b.len();
    b[n - 8] ^= 0xff;
    load_error(&write(&dir, "crc.nii.gz", &b), "gzip");
}

#[test]
fn unsupported_datatype() {
    let dir = Dir::new("bad-dtype");
    let mut b = ch2();
    put_i16(&mut b, 70, 32); // complex64
    put_i16(&mut b, 72, 64);
    let e = load_error(&write(&dir, "complex.nii", &b), "complex64");
    assert!(matches!(e, Error::Unsupported { .. }));
    assert!(e.to_string().contains("unsupported"));
}

#[test]
fn missing_file() {
    let dir = Dir::new("bad-missing");
    let e = load_error(&dir.join("nothere.nii.gz"), "No such file");
    assert!(matches!(e, Error::Io { .. }));
    // A pair whose .img is missing names the .img.
    std::fs::write(dir.join("lonely.hdr"), {
        let mut h = ch2()[..348].to_vec();
        h[344..348].copy_from_slice(b"ni1\0");
        put_f32(&mut h, 108, 0.0);
        h
    })
    .unwrap();
    load_error_naming(&dir.join("lonely.hdr"), "lonely.img", "No such file");
}

#[test]
fn failed_saves_leave_nothing() {
    let dir = Dir::new("bad-save");
    let vol = nifti::load(&real("mri/ch2bet.nii.gz")).unwrap();
    let opts = SaveOptions::default();
    let missing_dir = dir.join("no/such/dir/out.nii.gz");
    let e = nifti::save(&vol, &missing_dir, &opts).unwrap_err();
    assert!(e.to_string().contains("out.nii.gz"), "{e}");
    assert!(!dir.join("no").exists());
    // Single-file input written as a pair: refused before writing anything.
    let e = nifti::save(&vol, &dir.join("pair.hdr"), &opts).unwrap_err();
    assert!(e.to_string().contains("pair.hdr"), "{e}");
    // Changed datatype: the kept header would lie about the data.
    let mut changed = vol.clone();
    changed.voxels = defacer_volume::Voxels::from_file_order(
        vol.dims(),
        vec![0i16; vol.dims().iter().product()],
    )
    .unwrap();
    let e = nifti::save(&changed, &dir.join("dtype.nii"), &opts).unwrap_err();
    assert!(e.to_string().contains("datatype"), "{e}");
    // An in-memory volume too wide for a NIfTI-1 header.
    let wide = defacer_volume::Volume::synthetic(
        defacer_volume::Voxels::from_file_order([40000, 1, 1, 1], vec![0u8; 40000]).unwrap(),
        vol.affine,
        vol.scaling,
        vol.modality,
    );
    let e = nifti::save(&wide, &dir.join("wide.nii"), &opts).unwrap_err();
    assert!(e.to_string().contains("40000"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&*dir).unwrap().collect();
    assert!(left.is_empty(), "files left after failed saves: {left:?}");
}
