//! Landmarks placed by hand on every real head (testdata/landmarks/*.json, world RAS mm): each
//! facial landmark lies in the removal (the tragi with ears removed too), and no brain landmark
//! is within the safety margin of it.

use defacer_mask::{plan, DefaceOptions};
use defacer_volume::load;
use serde_json::Value;

const FACIAL: [&str; 5] = ["nose_tip", "eye_left", "eye_right", "upper_lip", "chin"];
const EARS: [&str; 2] = ["tragus_left", "tragus_right"];

#[test]
fn facial_landmarks_are_removed_and_brain_landmarks_are_spared() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/landmarks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/landmarks exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "landmark files missing in {}",
        dir.display()
    );
    let opts = DefaceOptions::default().ears(true);
    let mut failures = Vec::new();
    for f in &files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("readable")).expect("json");
        let rel = doc["volume"].as_str().expect("volume path");
        // Every head must load, the tilted CT with uneven slice spacing included.
        let vols = load(&[defacer_testkit::real(rel)]).unwrap_or_else(|e| panic!("{e}"));
        let vol = &vols[0];
        let m = plan(vol, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let removal = m.removal();
        // Through the slice positions, not the affine alone: the tilted CT's slices are uneven.
        let map = vol.voxel_map().expect("invertible");
        let dims = removal.shape().to_vec();
        // world positions of every removed voxel, for distances
        let removed: Vec<[f64; 3]> = removal
            .indexed_iter()
            .filter(|(_, &r)| r)
            .map(|((i, j, k), _)| map.to_world([i as f64, j as f64, k as f64]))
            .collect();
        let marks = doc["landmarks"].as_object().expect("landmarks");
        for (name, v) in marks {
            let Some(ras) = v["ras"].as_array() else {
                continue;
            };
            let p: Vec<f64> = ras.iter().filter_map(|x| x.as_f64()).collect();
            let p = [p[0], p[1], p[2]];
            if FACIAL.contains(&name.as_str()) || EARS.contains(&name.as_str()) {
                let ijk = map.to_voxel(p).map(|x| x.round());
                let inside = (0..3).all(|a| ijk[a] >= 0.0 && (ijk[a] as usize) < dims[a]);
                let hit = inside && removal[[ijk[0] as usize, ijk[1] as usize, ijk[2] as usize]];
                eprintln!("{rel}: {name} {p:?} removed: {hit}");
                if !hit {
                    failures.push(format!(
                        "{rel}: facial landmark {name} {p:?} is not removed"
                    ));
                }
            } else {
                let d = removed
                    .iter()
                    .map(|q| {
                        ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) + (q[2] - p[2]).powi(2))
                            .sqrt()
                    })
                    .fold(f64::INFINITY, f64::min);
                eprintln!("{rel}: brain landmark {name} is {d:.1} mm from the removal");
                if d < opts.margin_mm {
                    failures.push(format!(
                        "{rel}: brain landmark {name} is {d:.1} mm from the removal"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
