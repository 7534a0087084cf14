//! Renders a head volume around the face, runs the face detector, prints the JSON report and
//! writes the renders (PNG) to a folder:
//!
//! `cargo run --release -p defacer-check --example check_file -- head.nii.gz renders/`
use defacer_check::{check_volume, CheckOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: check_file VOLUME [RENDER_DIR [THRESHOLD]]");
        std::process::exit(2);
    }
    let vols = match defacer_volume::load(&[args[1].clone().into()]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut opts = CheckOptions {
        renders_dir: args.get(2).map(Into::into),
        ..CheckOptions::default()
    };
    if let Some(t) = args.get(3).and_then(|t| t.parse().ok()) {
        opts.threshold = t;
    }
    for vol in &vols {
        let t = std::time::Instant::now();
        match check_volume(vol, &opts) {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                eprintln!(
                    "{}: face_found={} views_with_face={}/{} in {:.2?}",
                    args[1],
                    report.face_found,
                    report.views_with_face,
                    report.views.len(),
                    t.elapsed()
                );
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}
