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
        let loaded = if a == "phantom" {
            let ph =
                defacer_mask::phantom::Phantom::new(defacer_mask::phantom::Contrast::T1).build();
            if let Ok(dir) = std::env::var("DEFACER_DUMP") {
                let t: Vec<u8> = ph.tissue.t().iter().copied().collect();
                let _ = std::fs::write(PathBuf::from(dir).join("phantom.tissue.raw"), t);
                println!(
                    "dims {:?} affine {:?}",
                    ph.tissue.shape(),
                    ph.volume.affine.to_row_major()
                );
            }
            Ok(vec![ph.volume])
        } else {
            defacer_volume::load(&[PathBuf::from(a)])
        };
        let vols = match loaded {
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
                        // raw uint8 in Fortran order: bit 1 face, 2 ears, 4 protected, 8 head,
                        // 16 bone, 32 intracranial, 64 template head
                        let none = m.face.mapv(|_| false);
                        let ears = m.ears.as_ref().unwrap_or(&none);
                        let bone = m.bone.as_ref().unwrap_or(&none);
                        let ic = m.intracranial.as_ref().unwrap_or(&none);
                        let bits = [
                            &m.face,
                            ears,
                            &m.protected,
                            &m.head,
                            bone,
                            ic,
                            &m.template_head,
                        ];
                        let mut out = vec![0u8; m.face.len()];
                        for (b, mask) in bits.iter().enumerate() {
                            for (o, &on) in out.iter_mut().zip(mask.t().iter()) {
                                *o |= (on as u8) << b;
                            }
                        }
                        let name = PathBuf::from(a)
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default();
                        let _ = std::fs::write(
                            PathBuf::from(&dir).join(format!("{name}.mask.raw")),
                            out,
                        );
                        let img: Vec<u8> = v
                            .frame_physical(0)
                            .t()
                            .iter()
                            .flat_map(|x| x.to_le_bytes())
                            .collect();
                        let _ = std::fs::write(
                            PathBuf::from(&dir).join(format!("{name}.f32.raw")),
                            img,
                        );
                        println!("dims {:?} affine {:?}", v.dims(), v.affine.to_row_major());
                    }
                }
                Err(e) => println!("{e}"),
            }
        }
    }
}
