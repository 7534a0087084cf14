//! How far the template fit puts the template's landmarks from the hand-placed ones of each
//! real head (testdata/landmarks): a direct view of the fit's error, in mm.
//!
//! `DEFACER_DATA=... cargo run --release -p defacer-mask --example fit_landmarks`
//! (`DEFACER_LANDMARKS=dir` reads the landmark files from another folder)

use defacer_mask::{plan, template::Template, DefaceOptions};
use nalgebra::{Matrix4, Vector4};
use serde_json::Value;

fn main() {
    let dir = std::env::var("DEFACER_LANDMARKS").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/landmarks"),
        std::path::PathBuf::from,
    );
    let data = std::env::var("DEFACER_DATA").unwrap_or_else(|_| "testdata/real".into());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    let template = Template::embedded();
    for f in files {
        let Ok(doc) = std::fs::read_to_string(&f).map(|s| serde_json::from_str::<Value>(&s)) else {
            continue;
        };
        let Ok(doc) = doc else { continue };
        let Some(rel) = doc["volume"].as_str() else {
            continue;
        };
        let vols = match defacer_volume::load(&[std::path::Path::new(&data).join(rel)]) {
            Ok(v) => v,
            Err(e) => {
                println!("{rel}: {e}");
                continue;
            }
        };
        let m = match plan(&vols[0], &DefaceOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                println!("{rel}: {e}");
                continue;
            }
        };
        let a = m.report.fit_matrix;
        let to_subject = Matrix4::from_fn(|r, c| a[r][c]);
        let mut line = format!("{rel}: fit {:.2} mm;", m.report.fit_mean_distance_mm);
        for (name, t) in &template.landmarks {
            let Some(h) = doc["landmarks"][name.as_str()]["ras"].as_array() else {
                continue;
            };
            let h: Vec<f64> = h.iter().filter_map(|x| x.as_f64()).collect();
            let w = to_subject * Vector4::new(t[0], t[1], t[2], 1.0);
            let d = (0..3).map(|i| (w[i] - h[i]).powi(2)).sum::<f64>().sqrt();
            line += &format!(" {name} {d:.0}");
        }
        println!("{line}");
    }
}
