//! Prints the residuals of each volume given on the command line, with the template's facial
//! landmarks mapped in by the head fit (as `defacer check` does), without running the detector.

use defacer_check::{Landmark, ResidualOptions};
use defacer_render::{RenderOptions, SkinScene};

fn main() {
    for path in std::env::args().skip(1) {
        let vols = match defacer_volume::load(&[path.clone().into()]) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let vol = &vols[0];
        let plan = match defacer_mask::plan(
            vol,
            &defacer_mask::DefaceOptions {
                max_fit_distance_mm: 8.0,
                ..Default::default()
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let m = plan.report.fit_matrix;
        let t = defacer_mask::template::Template::embedded();
        let landmarks: Vec<Landmark> = t
            .landmarks
            .iter()
            .filter(|(n, _)| !n.starts_with("tragus"))
            .map(|(n, p)| Landmark {
                name: n.clone(),
                world_mm: [0, 1, 2]
                    .map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]),
            })
            .collect();
        eprintln!(
            "fit {:.2} mm; {:?}",
            plan.report.fit_mean_distance_mm,
            landmarks
                .iter()
                .map(|l| (l.name.as_str(), l.world_mm.map(|x| x.round())))
                .collect::<Vec<_>>()
        );
        let scene = SkinScene::new(vol, &RenderOptions::default()).expect("scene");
        let ct = matches!(vol.modality, defacer_volume::Modality::Ct)
            || scene.skin_level() == defacer_render::skin_level::CT_SKIN_HU;
        if std::env::var("FIT_ONLY").is_ok() {
            continue;
        }
        for r in [15.0, 20.0] {
            if std::env::var("R").is_ok_and(|x| x != r.to_string()) {
                continue;
            }
            let opts = ResidualOptions {
                plain_face_radius_mm: r,
                bone_level: ct.then_some(defacer_check::CT_BONE_HU),
                ..ResidualOptions::default()
            };
            let res = defacer_check::residuals::measure(&scene, &landmarks, &opts);
            let cells: Vec<String> = res
                .landmarks
                .iter()
                .map(|l| {
                    format!(
                        "{} {:.1} (+{:.1}/-{:.1} a{:.0})",
                        l.name, l.relief_mm, l.protrusion_mm, l.depression_mm, l.skin_area_mm2
                    )
                })
                .collect();
            println!(
                "{path} r{r}: max {:.1} | {}",
                res.max_relief_mm,
                cells.join(" | ")
            );
        }
    }
}
