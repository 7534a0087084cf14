//! Times `plan` stage by stage: each volume is loaded once and planned `--reps` times; prints
//! the median of every stage. With `--dump DIR`, writes the masks of the last run as raw bytes
//! (Fortran order), one bit per mask: face, ears, protected, head, template head, bone,
//! intracranial.
//!
//! `cargo run --release -p defacer-mask --example stages -- head.nii.gz [--ears] [--bone] [--reps 5]`

use defacer_mask::{plan, DefaceOptions};
use std::path::PathBuf;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let reps: usize = value("--reps").and_then(|v| v.parse().ok()).unwrap_or(5);
    let dump = value("--dump").map(PathBuf::from);
    let opts = DefaceOptions::default()
        .ears(args.iter().any(|a| a == "--ears"))
        .remove_bone(args.iter().any(|a| a == "--bone"));
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--reps" || a == "--dump" {
            skip = true;
            continue;
        }
        if a.starts_with("--") {
            continue;
        }
        let vol = match defacer_volume::load(&[PathBuf::from(a)]) {
            Ok(mut v) => v.remove(0),
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let mut rows: Vec<[f64; 7]> = Vec::new();
        let mut last = None;
        for _ in 0..reps {
            let t = std::time::Instant::now();
            let m = match plan(&vol, &opts) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{e}");
                    break;
                }
            };
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            let s = &m.report.timings_ms;
            rows.push([
                s.resample, s.head, s.fit, s.regions, s.native, s.total, wall,
            ]);
            last = Some(m);
        }
        let Some(m) = last else { continue };
        let med: Vec<f64> = (0..7)
            .map(|c| median(rows.iter().map(|r| r[c]).collect()))
            .collect();
        let name = PathBuf::from(a)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{name}: resample {:.0} head {:.0} fit {:.0} regions {:.0} native {:.0} total {:.0} wall {:.0} ms | removed {:.1} ml ears {:.1} ml min_dist {:?} fit {:.2} mm",
            med[0], med[1], med[2], med[3], med[4], med[5], med[6],
            m.report.removed_ml, m.report.ears_ml, m.report.min_distance_to_brain_mm,
            m.report.fit_mean_distance_mm
        );
        if let Some(dir) = &dump {
            // every mask as one byte per voxel, bit n for the n-th mask below (0 when absent)
            let masks = [
                Some(&m.face),
                m.ears.as_ref(),
                Some(&m.protected),
                Some(&m.head),
                Some(&m.template_head),
                m.bone.as_ref(),
                m.intracranial.as_ref(),
            ];
            let mut bytes = vec![0u8; m.face.len()];
            for (bit, mask) in masks.iter().enumerate() {
                if let Some(mask) = mask {
                    for (b, &on) in bytes.iter_mut().zip(mask.t().iter()) {
                        *b |= (on as u8) << bit;
                    }
                }
            }
            let _ = std::fs::write(dir.join(format!("{name}.masks.raw")), bytes);
        }
    }
}
