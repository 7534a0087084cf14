//! Prints the facial relief residuals of each volume given on the command line, with the
//! template's facial landmarks mapped in by the head fit as `defacer check` does, without
//! running the face detector (this is how the table in the README was measured).
//!
//! ```text
//! cargo run -p defacer-check --example residuals -- head.nii.gz defaced.nii.gz
//! ```

use defacer_check::{residuals, Landmark, ResidualOptions, CT_BONE_HU};
use defacer_render::{skin_level::CT_SKIN_HU, RenderOptions, SkinScene};
use defacer_volume::Modality;

fn main() {
    for path in std::env::args().skip(1) {
        if let Err(e) = print_residuals(&path) {
            eprintln!("{path}: {e}");
        }
    }
}

fn print_residuals(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let vols = defacer_volume::load(&[path.into()])?;
    let vol = &vols[0];
    let fit = defacer_mask::DefaceOptions {
        max_fit_distance_mm: 8.0,
        ..Default::default()
    };
    let m = defacer_mask::plan(vol, &fit)?.report.fit_matrix;
    let landmarks: Vec<Landmark> = defacer_mask::template::Template::embedded()
        .landmarks
        .iter()
        .filter(|(n, _)| !n.starts_with("tragus"))
        .map(|(n, p)| Landmark {
            name: n.clone(),
            world_mm: [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]),
        })
        .collect();
    let scene = SkinScene::new(vol, &RenderOptions::default())?;
    let ct = match vol.modality {
        Modality::Ct => true,
        Modality::Mr => false,
        Modality::Unknown => scene.skin_level() == CT_SKIN_HU,
    };
    let opts = ResidualOptions {
        bone_level: ct.then_some(CT_BONE_HU),
        ..ResidualOptions::default()
    };
    let res = residuals::measure(&scene, &landmarks, &opts);
    let cells: Vec<String> = res
        .landmarks
        .iter()
        .map(|l| {
            format!(
                "{} {:.1} (+{:.1}/-{:.1}, skin {:.0} mm²)",
                l.name, l.relief_mm, l.protrusion_mm, l.depression_mm, l.skin_area_mm2
            )
        })
        .collect();
    println!(
        "{path}: max {:.1} mm{} | {}",
        res.max_relief_mm,
        if res.large_residual { " LARGE" } else { "" },
        cells.join(" | ")
    );
    Ok(())
}
