//! Shared by the mask's integration tests.

use defacer_mask::DefaceOptions;
use defacer_volume::Volume;
use ndarray::Array3;

/// Hand-placed landmarks on a copy: those whose names start with one of `removed` lie in
/// `removal`, those starting with one of `skipped` are not looked at, every other one (the brain
/// landmarks) lies at least the default margin from the removal.
pub fn landmark_failures(
    what: &str,
    v: &Volume,
    removal: &Array3<bool>,
    marks: &[(String, [f64; 3])],
    removed: &[&str],
    skipped: &[&str],
) -> Vec<String> {
    let margin = DefaceOptions::default().margin_mm;
    let inv = v.affine.inverse().expect("invertible");
    let removed_at: Vec<[f64; 3]> = removal
        .indexed_iter()
        .filter(|(_, &r)| r)
        .map(|((i, j, k), _)| v.affine.voxel_to_world([i as f64, j as f64, k as f64]))
        .collect();
    let mut failures = Vec::new();
    for (name, p) in marks {
        let is = |prefixes: &[&str]| prefixes.iter().any(|f| name.starts_with(f));
        if is(skipped) {
            continue;
        }
        if is(removed) {
            let q = inv.voxel_to_world(*p).map(|x| x.round() as usize);
            let hit = removal.get((q[0], q[1], q[2])).copied().unwrap_or(false);
            eprintln!("{what}: {name} removed: {hit}");
            if !hit {
                failures.push(format!("{what}: {name} {p:?} is not removed"));
            }
        } else {
            let d = removed_at
                .iter()
                .map(|q| (0..3).map(|a| (q[a] - p[a]).powi(2)).sum::<f64>().sqrt())
                .fold(f64::INFINITY, f64::min);
            eprintln!("{what}: brain landmark {name} is {d:.1} mm from the removal");
            if d < margin {
                failures.push(format!("{what}: brain landmark {name} is {d:.1} mm away"));
            }
        }
    }
    failures
}
