//! Load+save of real volumes beside the I/O floor, and the mask (`plan`) of the same volume,
//! measured in the same run: defacing should cost little beyond reading and writing the file.
//!
//! The floor for a `.nii.gz` is decompressing and recompressing the same bytes (what any tool
//! that reads and writes the file must do); for a DICOM series, reading and writing every file.
//! `plan` is timed on the loaded volume (resampling, head mask, template fit, regions, native
//! masks), the template already decoded (it is decoded once per process).
//! Run: `DEFACER_DATA=... cargo bench -p defacer-benches --bench io`.

use std::io::{Read, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use defacer_mask::{plan, DefaceOptions};
use defacer_testkit::{real, scratch};
use defacer_volume::{load, save, SaveOptions};

fn gzip_floor(input: &Path, out: &Path) {
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(input).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(out).unwrap(),
        flate2::Compression::new(6),
    );
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
}

fn copy_floor(input: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for e in std::fs::read_dir(input).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        std::fs::write(out.join(e.file_name()), bytes).unwrap();
    }
}

fn bench_io(c: &mut Criterion) {
    let dir = scratch("bench-io");
    let opts = SaveOptions::default();

    let ch2 = real("mri/ch2.nii.gz");
    let mut g = c.benchmark_group("ch2.nii.gz");
    g.sample_size(10);
    g.bench_function("floor: gunzip+gzip -6", |b| {
        b.iter(|| gzip_floor(&ch2, &dir.join("floor.nii.gz")))
    });
    g.bench_function("load+save", |b| {
        b.iter(|| {
            let v = load(std::slice::from_ref(&ch2)).unwrap();
            save(&v[0], &dir.join("ch2.nii.gz"), &opts).unwrap();
        })
    });
    let vol = load(std::slice::from_ref(&ch2)).unwrap().remove(0);
    let deface = DefaceOptions::default();
    plan(&vol, &deface).unwrap();
    g.bench_function("plan (mask)", |b| b.iter(|| plan(&vol, &deface).unwrap()));
    g.finish();

    let philips = real("mri/philips_mprage_t1");
    let mut g = c.benchmark_group("philips_mprage_t1");
    g.sample_size(10);
    g.bench_function("floor: read+write files", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(dir.join("copy"));
            copy_floor(&philips, &dir.join("copy"))
        })
    });
    g.bench_function("load+save", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(dir.join("philips"));
            let v = load(std::slice::from_ref(&philips)).unwrap();
            save(&v[0], &dir.join("philips"), &opts).unwrap();
        })
    });
    let vol = load(std::slice::from_ref(&philips)).unwrap().remove(0);
    plan(&vol, &deface).unwrap();
    g.bench_function("plan (mask)", |b| b.iter(|| plan(&vol, &deface).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_io);
criterion_main!(benches);
