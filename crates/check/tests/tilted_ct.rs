//! The facial relief of a gantry-tilted head CT with uneven slices, whose slab ends below the
//! eyes (the nose is cut, no lips or chin): the eyes are measured on the original and on a
//! defaced copy, and what lies beyond the slab is reported as out of view rather than as a
//! face without relief.

use defacer_check::{residuals, Landmark, ResidualOptions, Residuals, CT_BONE_HU};
use defacer_render::{RenderOptions, SkinScene};
use defacer_volume::Volume;

fn tilted_ct() -> Volume {
    defacer_volume::load(&[defacer_testkit::real("ct/ge_tilted_ct")])
        .expect("the tilted series loads")
        .remove(0)
}

/// The eyes placed by hand on this series (`testdata/landmarks`, from each slice's DICOM
/// geometry), and a chin 70 mm below their midpoint: the landmark file records the slab's
/// inferior edge crossing the nasal dorsum at z ≈ −1 mm, so that chin lies outside the scan.
fn landmarks() -> Vec<Landmark> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/landmarks/ge_tilted_ct.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("landmarks")).expect("json");
    let mut lm: Vec<Landmark> = ["eye_left", "eye_right"]
        .iter()
        .map(|n| {
            let p: Vec<f64> = json["landmarks"][n]["ras"]
                .as_array()
                .expect("both eyes are placed")
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            Landmark {
                name: n.to_string(),
                world_mm: [p[0], p[1], p[2]],
            }
        })
        .collect();
    let mid = [0, 1, 2].map(|a| 0.5 * (lm[0].world_mm[a] + lm[1].world_mm[a]));
    lm.push(Landmark {
        name: "chin".into(),
        world_mm: [mid[0], mid[1], mid[2] - 70.0],
    });
    lm
}

fn measure(vol: &Volume, lm: &[Landmark]) -> Residuals {
    let scene = SkinScene::new(vol, &RenderOptions::default()).unwrap();
    let opts = ResidualOptions {
        bone_level: Some(CT_BONE_HU),
        ..ResidualOptions::default()
    };
    residuals::measure(&scene, lm, &opts)
}

/// The copy `defacer deface` writes by default: soft tissue of the face removed, air filled.
fn removed(vol: &Volume) -> Volume {
    let plan = defacer_mask::plan(vol, &defacer_mask::DefaceOptions::default()).unwrap();
    let mut out = vol.clone();
    let region = defacer_apply::Region {
        change: plan.face.view(),
        head: plan.head.view(),
        template_head: Some(plan.template_head.view()),
    };
    let method = defacer_apply::Method::Remove {
        fill: defacer_apply::Fill::Air,
    };
    let stats = defacer_apply::apply(&mut out, &region, &method, plan.fill_value_stored);
    assert!(stats.voxels_changed > 0, "nothing was removed");
    out
}

fn get<'a>(r: &'a Residuals, name: &str) -> &'a defacer_check::LandmarkResidual {
    r.landmarks.iter().find(|l| l.name == name).unwrap()
}

#[test]
fn eyes_are_measured_on_a_tilted_slab_and_what_lies_below_it_is_out_of_view() {
    let vol = tilted_ct();
    let lm = landmarks();
    let opts = ResidualOptions::default();
    let third_of_disc = std::f64::consts::PI * opts.landmark_radius_mm.powi(2) / 3.0;

    let original = measure(&vol, &lm);
    let defaced = measure(&removed(&vol), &lm);
    for (what, r) in [("original", &original), ("defaced", &defaced)] {
        for l in &r.landmarks {
            eprintln!(
                "{what} {}: in view {} (scanned {:.0} mm²), skin {:.0} mm², relief {:.1} \
                 (+{:.1} / -{:.1})",
                l.name,
                l.in_view,
                l.scanned_area_mm2,
                l.skin_area_mm2,
                l.relief_mm,
                l.protrusion_mm,
                l.depression_mm
            );
        }
    }

    for eye in ["eye_left", "eye_right"] {
        let (o, d) = (get(&original, eye), get(&defaced, eye));
        // The slab's tilted edge passes about 10 mm below the globes: the eyes are in view and
        // enough skin around them is measured for their relief to count.
        assert!(o.in_view, "{o:?}");
        assert!(o.skin_area_mm2 >= third_of_disc, "{o:?}");
        // Defacing removes tissue, not the field of view.
        assert!(d.in_view, "{d:?}");
        assert_eq!(o.scanned_area_mm2, d.scanned_area_mm2);
        // The eyelids are gone: less skin lies on or in front of the globes' depth.
        assert!(d.skin_area_mm2 < o.skin_area_mm2, "{o:?}\n{d:?}");
    }
    // Below the slab nothing was scanned: no relief, and reported as out of view, not as a
    // chin without relief.
    for r in [&original, &defaced] {
        let chin = get(r, "chin");
        assert!(!chin.in_view, "{chin:?}");
        assert_eq!(chin.relief_mm, 0.0);
        assert!(chin.scanned_area_mm2 < third_of_disc, "{chin:?}");
    }
}
