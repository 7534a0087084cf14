//! NIfTI reading and writing checked against nibabel on real volumes and on variants of them
//! that nibabel writes (NIfTI-2, .hdr/.img pairs, big-endian, 4-D, extensions).

mod nifti_support;

use std::path::{Path, PathBuf};

use defacer_testkit::{real, scratch};
use defacer_volume::{nifti, SaveOptions, Source};
use nifti_support::*;

/// Loads `path` with defacer and nibabel and checks they agree on geometry, type, scaling and
/// every voxel value.
fn assert_matches_nibabel(path: &Path, tmp: &Path) {
    let dump = tmp.join("nibabel-voxels.bin");
    let nib = nibabel(path, Some(&dump));
    let vol = nifti::load(path).unwrap_or_else(|e| panic!("{e}"));
    let diff = affine_diff(&vol.affine.to_row_major(), &nib.affine);
    assert!(
        diff <= 1e-4,
        "{}: affine differs from nibabel's by {diff}",
        path.display()
    );
    let dims = vol.dims();
    let ours: Vec<usize> = dims[..nib.shape.len()].to_vec();
    assert_eq!(ours, nib.shape, "{}: shape", path.display());
    assert!(dims[nib.shape.len()..].iter().all(|&d| d == 1));
    assert_eq!(
        vol.datatype().name(),
        nib.dtype,
        "{}: dtype",
        path.display()
    );
    let ours = (vol.scaling.slope, vol.scaling.intercept);
    assert_eq!(ours, (nib.slope, nib.inter), "{}: scaling", path.display());
    let theirs = std::fs::read(&dump).unwrap();
    let mine = vol.voxels.to_le_bytes();
    assert_eq!(mine.len(), theirs.len(), "{}: data size", path.display());
    assert!(
        mine == theirs,
        "{}: voxel values differ from nibabel's",
        path.display()
    );
}

/// The header file of a NIfTI path (the `.hdr` of a pair).
fn header_file(p: &Path) -> PathBuf {
    nifti::Files::from_path(p).header_path().to_path_buf()
}

/// The data file of a NIfTI path (the `.img` of a pair).
fn data_file(p: &Path) -> PathBuf {
    nifti::Files::from_path(p).data_path().to_path_buf()
}

fn vox_offset_of(header: &[u8]) -> usize {
    let size = header.len();
    let r = vox_offset_range(size);
    let le = header[0..4] == 348i32.to_le_bytes() || header[0..4] == 540i32.to_le_bytes();
    let b = &header[r];
    if size == 348 {
        let a = [b[0], b[1], b[2], b[3]];
        (if le {
            f32::from_le_bytes(a)
        } else {
            f32::from_be_bytes(a)
        }) as usize
    } else {
        let a: [u8; 8] = b.try_into().unwrap();
        (if le {
            i64::from_le_bytes(a)
        } else {
            i64::from_be_bytes(a)
        }) as usize
    }
}

fn header_size_of(raw: &[u8]) -> usize {
    let w = [raw[0], raw[1], raw[2], raw[3]];
    let n = i32::from_le_bytes(w);
    (if n == 348 || n == 540 {
        n
    } else {
        i32::from_be_bytes(w)
    }) as usize
}

/// Checks a gzip file's header carries no file name and mtime 0.
fn assert_anonymous_gzip(p: &Path) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(
        &b[..3],
        &[0x1f, 0x8b, 8],
        "{}: not gzip/deflate",
        p.display()
    );
    assert_eq!(
        b[3] & 0x08,
        0,
        "{}: gzip header has a file name",
        p.display()
    );
    assert_eq!(
        &b[4..8],
        &[0, 0, 0, 0],
        "{}: gzip mtime is not 0",
        p.display()
    );
}

/// Saves `input` unchanged as `out` and checks: header bytes identical except the scrubbed
/// text fields (and vox_offset when extensions went), voxel bytes identical, gzip header
/// anonymous, and nibabel reads the same geometry and scaling with the new descrip.
fn assert_round_trip(input: &Path, out: &Path, tmp: &Path) {
    let vol = nifti::load(input).unwrap_or_else(|e| panic!("{e}"));
    let Source::Nifti(src) = &vol.source else {
        panic!("not a NIfTI source")
    };
    let identifying = src.identifying_fields();
    let had_extensions = identifying.iter().any(|f| f.field == "extensions");
    let opts = SaveOptions {
        description: "round trip test".into(),
        ..Default::default()
    };
    nifti::save(&vol, out, &opts).unwrap_or_else(|e| panic!("{e}"));

    let (hin, hout) = (raw_bytes(&header_file(input)), raw_bytes(&header_file(out)));
    let size = header_size_of(&hin);
    assert_eq!(header_size_of(&hout), size);
    let mut skip = text_field_ranges(size);
    if had_extensions {
        skip.push(vox_offset_range(size));
    }
    let kept = |i: &usize| !skip.iter().any(|r| r.contains(i));
    for i in (0..size).filter(kept) {
        assert_eq!(
            hin[i],
            hout[i],
            "{}: header byte {i} changed",
            out.display()
        );
    }
    let descrip = text_field_ranges(size)[0].start;
    assert_eq!(&hout[descrip..descrip + 16], b"round trip test\0");

    // What the input's text fields held (e.g. a user's home folder in ch2's db_name) is gone.
    let header_region = &hout[..vox_offset_of(&hout[..size]).min(hout.len())];
    for f in identifying.iter().filter(|f| f.field != "extensions") {
        let old = f.old_value.trim();
        if old.len() >= 4 {
            let found = header_region
                .windows(old.len())
                .any(|w| w == old.as_bytes());
            assert!(
                !found,
                "{}: {} value {old:?} still in the header",
                out.display(),
                f.field
            );
        }
    }

    let single = header_file(input) == data_file(input);
    let (din, dout) = (raw_bytes(&data_file(input)), raw_bytes(&data_file(out)));
    let (oin, oout) = (vox_offset_of(&hin[..size]), vox_offset_of(&hout[..size]));
    let nbytes = vol.voxels.to_le_bytes().len();
    assert_eq!(dout.len(), oout + nbytes, "{}: output size", out.display());
    assert!(
        din[oin..oin + nbytes] == dout[oout..],
        "{}: voxel bytes changed",
        out.display()
    );
    if had_extensions {
        assert_eq!(
            &hout[size..size + 4],
            &[0, 0, 0, 0],
            "extension flag not cleared"
        );
        assert_eq!(oout, if single { size + 4 } else { 0 });
    } else {
        // Nothing identifying after the header: everything but the text fields is as it was.
        assert_eq!(oin, oout);
        assert_eq!(hin.len(), hout.len());
    }
    for p in [header_file(out), data_file(out)] {
        if p.to_string_lossy().ends_with(".gz") {
            assert_anonymous_gzip(&p);
        }
    }

    let (before, after) = (
        nibabel(input, None),
        nibabel(out, Some(&tmp.join("after.bin"))),
    );
    assert!(
        affine_diff(&before.affine, &after.affine) <= 1e-4,
        "{}: affine",
        out.display()
    );
    assert_eq!(
        (before.slope, before.inter),
        (after.slope, after.inter),
        "{}",
        out.display()
    );
    assert_eq!(after.descrip, "round trip test");
    let back = nifti::load(out).unwrap_or_else(|e| panic!("{e}"));
    assert!(back.voxels.to_le_bytes() == vol.voxels.to_le_bytes());
    let Source::Nifti(back_src) = &back.source else {
        panic!()
    };
    let left: Vec<_> = back_src
        .identifying_fields()
        .into_iter()
        .filter(|f| f.field != "descrip")
        .collect();
    assert!(
        left.is_empty(),
        "{}: still identifying: {left:?}",
        out.display()
    );
}

#[test]
fn real_volumes_match_nibabel() {
    let tmp = scratch("nifti-real");
    for rel in REAL_NIFTI {
        assert_matches_nibabel(&real(rel), &tmp);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn real_identifying_fields_are_reported() {
    let fields = |rel: &str| {
        let vol = nifti::load(&real(rel)).unwrap();
        let Source::Nifti(src) = &vol.source else {
            panic!()
        };
        src.identifying_fields()
    };
    let ch2 = fields("mri/ch2.nii.gz");
    let db_name = ch2
        .iter()
        .find(|f| f.field == "db_name")
        .expect("ch2 db_name reported");
    assert!(db_name.old_value.starts_with("/home/"), "{db_name:?}");
    let mask = fields("templates/mni152/mniMask.nii.gz");
    assert!(mask
        .iter()
        .any(|f| f.field == "aux_file" && f.old_value.contains("Rorden")));
    // A file with no text in those fields reports nothing.
    assert!(fields("templates/pydeface/facemask.nii.gz").is_empty());
}

#[test]
fn real_volumes_round_trip() {
    let tmp = scratch("nifti-roundtrip");
    for (n, rel) in REAL_NIFTI.iter().enumerate() {
        let input = real(rel);
        assert_round_trip(&input, &tmp.join(format!("out{n}.nii.gz")), &tmp);
        // Changing only the compression keeps every byte of the decompressed file.
        assert_round_trip(&input, &tmp.join(format!("out{n}.nii")), &tmp);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Variants of real volumes written by nibabel into `dir`, by name.
fn nibabel_variants(dir: &Path) -> Vec<PathBuf> {
    let (ch2, t2w) = (real("mri/ch2.nii.gz"), real("mri/t2w_partial_face.nii.gz"));
    let script = format!(
        r#"
d = {dir:?}
ch2 = nib.load({ch2:?}); t2w = nib.load({t2w:?})
def name(n): return d + '/' + n
# NIfTI-2, compressed and not
for n in ['ch2_nifti2.nii', 'ch2_nifti2.nii.gz']:
    nib.Nifti2Image(np.asanyarray(ch2.dataobj), ch2.affine, nib.Nifti2Header.from_header(ch2.header)).to_filename(name(n))
# .hdr/.img pairs (NIfTI-1 and NIfTI-2, gzipped pair too)
nib.Nifti1Pair(t2w.get_data_dtype().type(t2w.dataobj.get_unscaled()), t2w.affine, t2w.header).to_filename(name('t2w_pair.hdr'))
nib.Nifti1Pair(np.asanyarray(ch2.dataobj), ch2.affine, ch2.header).to_filename(name('ch2_pair.img.gz'))
nib.Nifti2Pair(np.asanyarray(ch2.dataobj), ch2.affine).to_filename(name('ch2_nifti2_pair.hdr'))
# big-endian NIfTI-1 and NIfTI-2, int16 with scaling
be = t2w.header.as_byteswapped('>')
raw = np.asarray(t2w.dataobj.get_unscaled())
img = nib.Nifti1Image(raw.astype('>i2'), t2w.affine, be)
img.to_filename(name('t2w_bigendian.nii'))
# nibabel picks its own scl_* when saving; set them in the bytes for a scaled big-endian file
b = bytearray(open(name('t2w_bigendian.nii'), 'rb').read())
b[112:120] = np.array([0.5, -10], dtype='>f4').tobytes()
import gzip
open(name('t2w_bigendian.nii.gz'), 'wb').write(gzip.compress(bytes(b)))
assert nib.load(name('t2w_bigendian.nii.gz')).header.endianness == '>'
img2 = nib.Nifti2Image(raw.astype('>i2'), t2w.affine, nib.Nifti2Header.from_header(be).as_byteswapped('>'))
img2.to_filename(name('t2w_nifti2_bigendian.nii'))
assert nib.load(name('t2w_nifti2_bigendian.nii')).header.endianness == '>'
# 4-D float32 with three different frames
c = np.asanyarray(ch2.dataobj)[40:120, 50:150, 30:110].astype(np.float32)
nib.Nifti1Image(np.stack([c, c * 0.5, c + 1.25], axis=3), ch2.affine).to_filename(name('ch2_4d.nii.gz'))
# identifying text fields and a comment extension
img = nib.Nifti1Image(raw, t2w.affine, t2w.header)
h = img.header
h['descrip'] = b'Jane Doe 1970-01-01 MRN 12345'
h['aux_file'] = b'jane_doe.txt'
h['db_name'] = b'hospital-db'
h['intent_name'] = b'jd'
h['data_type'] = b'MRN54321'
h.extensions.append(nib.nifti1.Nifti1Extension('comment', b'Patient: Jane Doe'))
img.to_filename(name('t2w_identifying.nii.gz'))
img2 = nib.Nifti2Image(raw, t2w.affine)
img2.header['descrip'] = b'Jane Doe'
img2.header['unused_str'] = b'MRN54321'
img2.header.extensions.append(nib.nifti1.Nifti1Extension('comment', b'Patient: Jane Doe'))
img2.to_filename(name('t2w_nifti2_identifying.nii'))
img3 = nib.Nifti1Pair(raw, t2w.affine, t2w.header)
img3.header['aux_file'] = b'jane_doe.txt'
img3.header.extensions.append(nib.nifti1.Nifti1Extension('comment', b'Patient: Jane Doe'))
img3.to_filename(name('t2w_pair_identifying.hdr'))
# qform only, with qfac (pixdim[0]) 0, which nibabel reads as 1; and no transform at all
img = nib.Nifti1Image(raw, t2w.affine, t2w.header)
img.set_sform(None, code=0)
img.to_filename(name('t2w_qform_only.nii'))
b = bytearray(open(name('t2w_qform_only.nii'), 'rb').read())
b[76:80] = np.float32(0).astype(img.header.endianness + 'f4').tobytes()
open(name('t2w_qfac0.nii'), 'wb').write(bytes(b))
img = nib.Nifti1Image(raw, None)
img.set_qform(None, code=0); img.set_sform(None, code=0)
img.header.set_zooms((0.9, 1.1, 2.0))
img.to_filename(name('t2w_no_xform.nii'))
print('ok')
"#,
    );
    assert_eq!(python(&script).trim(), "ok");
    [
        "ch2_nifti2.nii",
        "ch2_nifti2.nii.gz",
        "t2w_pair.hdr",
        "ch2_pair.img.gz",
        "ch2_nifti2_pair.hdr",
        "t2w_bigendian.nii.gz",
        "t2w_nifti2_bigendian.nii",
        "ch2_4d.nii.gz",
        "t2w_identifying.nii.gz",
        "t2w_nifti2_identifying.nii",
        "t2w_pair_identifying.hdr",
        "t2w_qform_only.nii",
        "t2w_qfac0.nii",
        "t2w_no_xform.nii",
    ]
    .iter()
    .map(|n| dir.join(n))
    .collect()
}

#[test]
fn nibabel_variants_load_and_round_trip() {
    let tmp = scratch("nifti-variants");
    let out_dir = tmp.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for input in nibabel_variants(&tmp) {
        assert_matches_nibabel(&input, &tmp);
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        assert_round_trip(&input, &out_dir.join(&name), &tmp);
    }
    assert_identifying_scrubbed(&tmp.join("t2w_identifying.nii.gz"), &out_dir, true);
    assert_identifying_scrubbed(&tmp.join("t2w_nifti2_identifying.nii"), &out_dir, false);
    assert_identifying_scrubbed(&tmp.join("t2w_pair_identifying.hdr"), &out_dir, false);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The identifying content nibabel put in `input` is reported, and absent from every byte of
/// the saved output.
fn assert_identifying_scrubbed(input: &Path, out_dir: &Path, all_fields: bool) {
    let vol = nifti::load(input).unwrap();
    let Source::Nifti(src) = &vol.source else {
        panic!()
    };
    let fields = src.identifying_fields();
    let value = |f: &str| {
        fields
            .iter()
            .find(|x| x.field == f)
            .map(|x| x.old_value.clone())
    };
    let ext = value("extensions").expect("extension reported");
    assert!(ext.contains("code 6"), "{ext}");
    if all_fields {
        assert_eq!(
            value("descrip").as_deref(),
            Some("Jane Doe 1970-01-01 MRN 12345")
        );
        assert_eq!(value("aux_file").as_deref(), Some("jane_doe.txt"));
        assert_eq!(value("db_name").as_deref(), Some("hospital-db"));
        assert_eq!(value("intent_name").as_deref(), Some("jd"));
        assert_eq!(value("data_type").as_deref(), Some("MRN54321"));
    }
    let out = out_dir.join(input.file_name().unwrap());
    for p in [header_file(&out), data_file(&out)] {
        let bytes = raw_bytes(&p);
        for needle in [&b"Jane"[..], b"jane_doe", b"hospital-db", b"MRN54321"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}",
                p.display()
            );
        }
    }
}

/// A gzipped output is compressed in parallel, yet it is one gzip member (a single-member
/// decoder reads all of it, and nothing follows), the same file whatever the number of
/// threads, and holds exactly the bytes of the uncompressed output.
#[test]
fn gzip_output_is_one_member_whatever_the_threads() {
    use std::io::Read as _;
    let tmp = scratch("nifti-gzip-threads");
    let vol = nifti::load(&real("mri/ch2.nii.gz")).unwrap_or_else(|e| panic!("{e}"));
    let opts = SaveOptions::default();
    let save_on = |threads: usize, name: &str| {
        let out = tmp.join(name);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| nifti::save(&vol, &out, &opts))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::read(&out).unwrap()
    };
    let one = save_on(1, "one.nii.gz");
    for threads in [2, 3] {
        assert!(
            save_on(threads, &format!("{threads}.nii.gz")) == one,
            "{threads} threads wrote another file than one thread"
        );
    }
    assert_anonymous_gzip(&tmp.join("one.nii.gz"));
    let mut member = flate2::bufread::GzDecoder::new(&one[..]);
    let mut inflated = Vec::new();
    member.read_to_end(&mut inflated).unwrap();
    assert!(member.into_inner().is_empty(), "data after the gzip member");
    let plain = save_on(2, "plain.nii");
    assert!(
        inflated == plain,
        "the gzip holds other bytes than the plain output"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
