//! Kernels on a volume the size of a 1 mm head's face region: the separable Gaussian the blur
//! and reface methods run six times per frame.
//! Run: `cargo bench -p defacer-benches --bench kernels`.

use criterion::{criterion_group, criterion_main, Criterion};
use defacer_apply::gaussian_blur_mm;
use ndarray::Array3;

fn bench_gaussian(c: &mut Criterion) {
    // a face region with the blur's padding at 1 mm: about 200 × 150 × 170 voxels
    let field = Array3::from_shape_fn((200, 150, 170), |(i, j, k)| {
        ((i * 31 + j * 17 + k * 7) % 255) as f32
    });
    let mut group = c.benchmark_group("gaussian_blur_mm");
    group.sample_size(10);
    for sigma in [3.0, 10.0] {
        group.bench_function(format!("200x150x170 sigma {sigma} mm"), |b| {
            b.iter(|| gaussian_blur_mm(&field, [1.0, 1.0, 1.0], sigma))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gaussian);
criterion_main!(benches);
