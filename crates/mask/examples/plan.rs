//! Plans the defacing masks of head volumes and prints each report as JSON.
//!
//! `cargo run --release -p defacer-mask --example plan -- head.nii.gz [--ears] [--bone]`

use defacer_mask::{plan, DefaceOptions};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = DefaceOptions::default()
        .ears(args.iter().any(|a| a == "--ears"))
        .remove_bone(args.iter().any(|a| a == "--bone"));
    for a in args.iter().filter(|a| !a.starts_with("--")) {
        let vols = match defacer_volume::load(&[PathBuf::from(a)]) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        for v in &vols {
            let t = std::time::Instant::now();
            match plan(v, &opts) {
                Ok(m) => {
                    let json = serde_json::to_string_pretty(&m.report).unwrap_or_default();
                    println!("{a}: {:.0} ms\n{json}", t.elapsed().as_secs_f64() * 1000.0);
                    if let Ok(dir) = std::env::var("DEFACER_DUMP") {
                        // raw uint8 in Fortran order: bit 1 face, 2 ears, 4 protected, 8 head
                        let mut out = Vec::with_capacity(m.face.len());
                        let ears = m.ears.clone().unwrap_or_else(|| m.face.mapv(|_| false));
                        for (((f, e), p), h) in m
                            .face
                            .t()
                            .iter()
                            .zip(ears.t().iter())
                            .zip(m.protected.t().iter())
                            .zip(m.head.t().iter())
                        {
                            out.push(
                                *f as u8 | (*e as u8) << 1 | (*p as u8) << 2 | (*h as u8) << 3,
                            );
                        }
                        let name = PathBuf::from(a)
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default();
                        let _ = std::fs::write(
                            PathBuf::from(dir).join(format!("{name}.mask.raw")),
                            out,
                        );
                    }
                }
                Err(e) => println!("{e}"),
            }
        }
    }
}
