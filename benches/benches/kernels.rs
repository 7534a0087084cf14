//! Kernels: on a volume the size of a 1 mm head's face region, the separable Gaussian the blur
//! and reface methods run six times per frame; on a working grid the size of a whole head's
//! (128 × 128 × 100 cells of 2 mm), the masks' morphology, by rows of a disc and by the
//! distance transform it stands in for; and the head threshold's percentile of such a grid's
//! values, by the parallel radix rank and by the standard library's selection on a copy; and
//! the template fit to ch2's head (a real head: the fit's reads follow its surface).
//! Run: `DEFACER_DATA=... cargo bench -p defacer-benches --bench kernels`.

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

fn bench_morphology(c: &mut Criterion) {
    use defacer_mask::distance::{dilate, distance_sq_within, reach_through};
    use defacer_mask::grid::Field;
    // a head-like ball with a rough surface in a 2 mm working grid
    let dims = [128, 128, 100];
    let head = Field::from_cells(dims, |n| {
        let (i, j, k) = (n % 128, (n / 128) % 128, n / (128 * 128));
        let d2 = (i as f64 - 64.0).powi(2)
            + (j as f64 - 60.0).powi(2) * 0.8
            + (k as f64 - 50.0).powi(2) * 1.1;
        d2 < 45.0f64.powi(2) + ((i * 7 + j * 13 + k * 3) % 97) as f64 * 20.0
    });
    let mut group = c.benchmark_group("morphology");
    group.sample_size(10);
    for radius in [4.0, 6.0, 10.0] {
        group.bench_function(format!("dilate {radius} mm"), |b| {
            b.iter(|| dilate(&head, radius, 2.0))
        });
        let r2 = (radius * radius) as f32;
        group.bench_function(format!("transform, threshold {radius} mm"), |b| {
            b.iter(|| distance_sq_within(&head, 2.0, radius).map(|d| d <= r2))
        });
    }
    let air = head.map(|h| !h);
    group.bench_function("geodesic reach 30 mm", |b| {
        b.iter(|| reach_through(&air, &head, 30.0, 2.0))
    });
    group.finish();
}

fn bench_order(c: &mut Criterion) {
    use defacer_mask::order::Ranks;
    // a head's values: a third air (zeros and faint noise), the rest tissue
    let n = 128 * 128 * 100;
    let values: Vec<f32> = (0..n)
        .map(|c| match c % 3 {
            0 if c % 7 == 0 => 0.0,
            0 => ((c * 13) % 17) as f32,
            _ => 200.0 + ((c * 7919) % 1000) as f32 * 0.7,
        })
        .collect();
    let rank = (n - 1) * 995 / 1000;
    let mut group = c.benchmark_group("order");
    group.sample_size(10);
    group.bench_function("99.5th percentile, radix ranks", |b| {
        b.iter(|| Ranks::new(&values, |_, _| true).nth(rank))
    });
    group.bench_function("99.5th percentile, select_nth on a copy", |b| {
        b.iter(|| {
            let mut v = values.clone();
            *v.select_nth_unstable_by(rank, |a, b| a.total_cmp(b)).1
        })
    });
    group.finish();
}

fn bench_fit(c: &mut Criterion) {
    use defacer_mask::grid::WorkingImage;
    use defacer_mask::head::HeadMask;
    use defacer_mask::registration::{fit, SubjectSurface};
    use defacer_mask::template::Template;
    let vol = defacer_volume::load(&[defacer_testkit::real("mri/ch2.nii.gz")])
        .expect("ch2 loads")
        .remove(0);
    let map = vol.voxel_map().expect("invertible");
    let img = WorkingImage::from_volume(&vol, &map, 2.0);
    let head = HeadMask::find(&img, defacer_volume::Modality::Mr).expect("a head");
    let surface = SubjectSurface::new(&head, img.grid, &img.in_fov);
    let template = Template::embedded();
    let mut group = c.benchmark_group("template fit");
    group.sample_size(10);
    group.bench_function("ch2, 2 mm working grid", |b| {
        b.iter(|| fit(template, &head, &surface).expect("a fit"))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_gaussian,
    bench_morphology,
    bench_order,
    bench_fit
);
criterion_main!(benches);
