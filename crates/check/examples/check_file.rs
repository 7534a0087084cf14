//! Renders a head volume around the face, runs the face detector, prints the JSON report and
//! writes the renders (PNG) to a folder; the time spent preparing, rendering and detecting goes
//! to stderr:
//!
//! `cargo run --release -p defacer-check --example check_file -- head.nii.gz renders/`
use std::time::{Duration, Instant};

use defacer_check::{check_scene, CheckOptions, FaceDetector};
use defacer_render::SkinScene;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: check_file VOLUME [RENDER_DIR [THRESHOLD]]");
        std::process::exit(2);
    }
    let t = Instant::now();
    let vols = match defacer_volume::load(&[args[1].clone().into()]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    eprintln!("load {:.2?}", t.elapsed());
    let mut opts = CheckOptions {
        renders_dir: args.get(2).map(Into::into),
        ..CheckOptions::default()
    };
    if let Some(t) = args.get(3).and_then(|t| t.parse().ok()) {
        opts.threshold = t;
    }
    let detector = match FaceDetector::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    for vol in &vols {
        let t = Instant::now();
        let scene = match SkinScene::new(vol, &opts.render) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let prepare = t.elapsed();
        let t = Instant::now();
        for view in &opts.views {
            std::hint::black_box(scene.render(view));
        }
        let render = t.elapsed();
        let t = Instant::now();
        match check_scene(&scene, &detector, &opts) {
            Ok(report) => {
                let all = t.elapsed();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                eprintln!(
                    "{}: face_found={} views_with_face={}/{}; dims {:?}; prepare {:.2?}, render {} views {:.2?}, detect ≈ {:.2?}",
                    args[1],
                    report.face_found,
                    report.views_with_face,
                    report.views.len(),
                    vol.dims(),
                    prepare,
                    opts.views.len(),
                    render,
                    all.saturating_sub(render).max(Duration::ZERO)
                );
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}
