//! Landmarks placed by hand on every real head (testdata/landmarks/*.json, world RAS mm): each
//! facial landmark lies in the removal (the tragi with ears removed too), and no brain landmark
//! is within the safety margin of it.

use defacer_mask::{plan, DefaceOptions};
use defacer_volume::{load, Affine, Modality, Scaling, Volume, Voxels};
use nalgebra::{Matrix4, Vector3, Vector4};
use ndarray::{s, Array3, Array4, Axis, ShapeBuilder};
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
    let mut failures = Vec::new();
    for f in &files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("readable")).expect("json");
        let rel = doc["volume"].as_str().expect("volume path");
        // Every head must load, the tilted CT with uneven slice spacing included.
        let vol = real_volume(rel);
        failures.extend(check(rel, &vol, &doc));
        failures.extend(misplaced_eyes(rel, &vol, &doc));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// How far (mm) the fitted template may put an eye from the hand-placed one: the globe's
/// radius is about 12 mm, so the template's eye still lies in the subject's globe.
const EYE_FIT_MM: f64 = 10.0;

/// The fit itself, not only the removal: the template's eyes as fitted lie within
/// [`EYE_FIT_MM`] of the subject's. A removal can still cover the eyes of a fit tilted by 30°
/// (the GE CT's, with the neck in the search: its eyes 25 and 27 mm off), but not the face it
/// was meant to. The heads checked here keep every eye's centre in the removal, so the report
/// must not say that an eye is left.
fn misplaced_eyes(rel: &str, vol: &Volume, doc: &Value) -> Vec<String> {
    let m = plan(vol, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut failures: Vec<String> = eyes_said_kept(&m.report.warnings)
        .into_iter()
        .map(|side| format!("{rel}: the report says the {side} eye is not removed"))
        .collect();
    let a = m.report.fit_matrix;
    let template = defacer_mask::template::Template::embedded();
    for name in ["eye_left", "eye_right"] {
        let Some(placed) = doc["landmarks"][name]["ras"].as_array() else {
            continue;
        };
        let placed: Vec<f64> = placed.iter().filter_map(|x| x.as_f64()).collect();
        let t = template.landmarks[name];
        let fitted: Vec<f64> = (0..3)
            .map(|r| a[r][0] * t[0] + a[r][1] * t[1] + a[r][2] * t[2] + a[r][3])
            .collect();
        let d = (0..3)
            .map(|i| (fitted[i] - placed[i]).powi(2))
            .sum::<f64>()
            .sqrt();
        eprintln!("{rel}: template {name} fitted {d:.1} mm from the subject's");
        if d > EYE_FIT_MM {
            failures.push(format!(
                "{rel}: template {name} fitted {d:.1} mm from the subject's"
            ));
        }
    }
    failures
}

/// The sides ("left", "right") of the eyes the report's `warnings` say are not removed.
fn eyes_said_kept(warnings: &[String]) -> Vec<&'static str> {
    ["left", "right"]
        .into_iter()
        .filter(|side| {
            warnings
                .iter()
                .any(|w| w.contains(&format!("the {side} eye may remain")))
        })
        .collect()
}

/// The Philips T1 averaged in 5 mm axial slabs, in each of the five ways the slabs can fall on
/// its 1 mm planes: where the slab through an eye holds the frontal lobe too, the brain's
/// 10 mm margin, which wins over the face, reaches that eye's centre. The removal keeps it (the
/// margin is the user's), and the report must say so, for that eye alone: a render of the skin
/// does not show a reviewer an eye left behind the eyelids. At least one of the five copies
/// must keep an eye (or this tests nothing), and every other facial landmark holds on all.
#[test]
fn the_report_says_when_an_eye_is_kept_within_the_brain_margin() {
    let rel = "mri/philips_mprage_t1";
    let full = real_volume(rel);
    let doc = landmarks_doc("philips_mprage_t1.json");
    let opts = DefaceOptions::default();
    let mut failures = Vec::new();
    let mut eyes_kept = 0;
    for skip in 0..5 {
        let vol = in_axial_slabs(&full, 5.0, skip);
        let what = format!("{rel} in 5 mm axial slabs from plane {skip}");
        let m = plan(&vol, &opts).unwrap_or_else(|e| panic!("{what}: {e}"));
        let missed: Vec<String> = check_removal(&what, &vol, &m.removal(), &doc, opts.margin_mm)
            .into_iter()
            .filter(|f| !f.contains("tragus"))
            .collect();
        // the hand-placed eyes the removal misses, by side
        let kept: Vec<&str> = ["left", "right"]
            .into_iter()
            .filter(|side| missed.iter().any(|f| f.contains(&format!("eye_{side} "))))
            .collect();
        eyes_kept += kept.len();
        let said = eyes_said_kept(&m.report.warnings);
        eprintln!("{what}: eyes kept {kept:?}, the report says {said:?}");
        if said != kept {
            failures.push(format!(
                "{what}: eyes kept {kept:?}, the report says {said:?}: {:?}",
                m.report.warnings
            ));
        }
        if m.report
            .warnings
            .iter()
            .any(|w| w.contains("eye may remain") && !w.contains("margin kept around the brain"))
        {
            failures.push(format!(
                "{what}: an eye said kept outside the brain's margin: {:?}",
                m.report.warnings
            ));
        }
        failures.extend(missed.into_iter().filter(|f| !f.contains("eye_")));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        eyes_kept > 0,
        "no copy keeps an eye any longer: this no longer tests the report's warning"
    );
}

/// `vol` averaged in slabs about `mm` thick across the voxel axis that runs most nearly along
/// world z (as a 2-D acquisition of thick slices sees the head), each slab placed at the centre
/// of the planes it averages; the first `skip` planes and those left over at the end are
/// dropped.
fn in_axial_slabs(vol: &Volume, mm: f64, skip: usize) -> Volume {
    let a = vol.affine.0;
    let axis = axial_axis(vol);
    let step = vol.affine.voxel_size()[axis];
    let k = ((mm / step).round() as usize).max(1);
    let data = vol.frame_physical(0);
    let slabs = (data.len_of(Axis(axis)) - skip) / k;
    let mut dims = [data.dim().0, data.dim().1, data.dim().2];
    dims[axis] = slabs;
    let mut out = Array3::<f32>::zeros((dims[0], dims[1], dims[2]).f());
    for ((i, j, l), &v) in data.indexed_iter() {
        let mut at = [i, j, l];
        if at[axis] < skip {
            continue;
        }
        at[axis] = (at[axis] - skip) / k;
        if at[axis] < slabs {
            out[at] += v / k as f32;
        }
    }
    let mut m = a;
    for r in 0..3 {
        m[(r, axis)] *= k as f64;
        m[(r, 3)] += a[(r, axis)] * (skip as f64 + (k as f64 - 1.0) / 2.0);
    }
    float_volume(&out, Affine(m), vol.modality)
}

/// The voxel axis of `vol` that runs most nearly along world z.
fn axial_axis(vol: &Volume) -> usize {
    let a = vol.affine.0;
    (0..3)
        .max_by(|&p, &q| a[(2, p)].abs().total_cmp(&a[(2, q)].abs()))
        .expect("three axes")
}

/// Plans `vol` (ears on) and checks every landmark of `doc` in view against the removal.
fn check(rel: &str, vol: &Volume, doc: &Value) -> Vec<String> {
    checked(rel, vol, doc).0
}

/// [`check`], with the removal.
fn checked(rel: &str, vol: &Volume, doc: &Value) -> (Vec<String>, Array3<bool>) {
    let opts = DefaceOptions::default().ears(true);
    let m = plan(vol, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let removal = m.removal();
    (
        check_removal(rel, vol, &removal, doc, opts.margin_mm),
        removal,
    )
}

/// Every landmark of `doc` in view against `removal`, a removal of `vol`'s voxels.
fn check_removal(
    rel: &str,
    vol: &Volume,
    removal: &Array3<bool>,
    doc: &Value,
    margin_mm: f64,
) -> Vec<String> {
    let mut failures = Vec::new();
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
            if !inside {
                // a cropped copy's field of view may end before it: no voxel to remove
                eprintln!("{rel}: {name} {p:?} is out of view");
                continue;
            }
            let hit = removal[[ijk[0] as usize, ijk[1] as usize, ijk[2] as usize]];
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
                    ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) + (q[2] - p[2]).powi(2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            eprintln!("{rel}: brain landmark {name} is {d:.1} mm from the removal");
            if d < margin_mm {
                failures.push(format!(
                    "{rel}: brain landmark {name} is {d:.1} mm from the removal"
                ));
            }
        }
    }
    failures
}

/// Heads tilted in the scanner beyond the fit's ±20° starts (the same voxels, the world
/// turned under them by the header): the CT rolled by 30° and 40° and pitched by 40°, ch2
/// turned by 60° about the vertical. Fitted beyond 25° from upright, a head is planned upright
/// in a world turned by its fit; before that, the CT rolled by 30° or 40° kept its left eye
/// (axial planes cut the orbit and the cranium together, and the orbit joined the
/// intracranial space), and pitched by 40° lost a sixth of its removal.
#[test]
fn landmarks_hold_on_heads_tilted_in_the_scanner() {
    let opts = DefaceOptions::default().ears(true);
    let mut failures = Vec::new();
    let ct = ("ct/invesalius_ct.nii.gz", "invesalius_ct.json");
    let ch2 = ("mri/ch2.nii.gz", "ch2.json");
    for ((rel, marks), axis, deg, what) in [
        (ct, Vector3::y(), 30.0, "rolled 30°"),
        (ct, Vector3::y(), 40.0, "rolled 40°"),
        (ct, Vector3::x(), 40.0, "pitched 40°"),
        (ch2, Vector3::z(), 60.0, "turned 60°"),
    ] {
        let tilt = Matrix4::new_rotation(axis * f64::to_radians(deg));
        let doc = landmarks_doc(marks);
        let right = real_volume(rel);
        let mut tilted = right.clone();
        tilted.affine = Affine(tilt * right.affine.0);
        let m = plan(&tilted, &opts).unwrap_or_else(|e| panic!("{rel} {what}: {e}"));
        // the voxels are the same: the landmarks are checked where they lie in the original
        failures.extend(check_removal(
            &format!("{rel} ({what})"),
            &right,
            &m.removal(),
            &doc,
            opts.margin_mm,
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Headers that place the head wrongly (turned half way round so the face looks back; turned
/// a quarter; mirrored top to bottom, as a converter that flips the slice order does): the
/// template fits only with the axes turned back, and the plan does so. The removal, a set of
/// voxels, must hold every landmark as placed with the right header; the report must say the
/// header is probably wrong; and its fit matrix must place the template's eyes on the
/// subject's eyes in the wrong header's world, where a user of the report reads it.
#[test]
fn landmarks_hold_when_the_header_turns_the_head() {
    let opts = DefaceOptions::default().ears(true);
    let mut failures = Vec::new();
    let half_turn = Matrix4::new_rotation(Vector3::z() * std::f64::consts::PI);
    let quarter_turn = Matrix4::new_rotation(Vector3::x() * std::f64::consts::FRAC_PI_2);
    let upside_down = Matrix4::new_nonuniform_scaling(&Vector3::new(1.0, 1.0, -1.0));
    // (volume, landmarks, the top cut away (mm), the wrong header's turn, what it is)
    for (rel, marks, cut_mm, wrong, what) in [
        (
            "mri/philips_mprage_t1",
            "philips_mprage_t1.json",
            None,
            half_turn,
            "face turned back",
        ),
        (
            "mri/ch2.nii.gz",
            "ch2.json",
            None,
            quarter_turn,
            "turned a quarter",
        ),
        (
            "ct/invesalius_ct.nii.gz",
            "invesalius_ct.json",
            None,
            upside_down,
            "upside down",
        ),
        // Partial heads fit a wrong orientation closely enough to pass (2.5–3.0 mm): before
        // the search looked at loose fits, the T2 slab's removal came 2.8 mm from the frontal
        // pole and the CT kept its eyes and nose.
        (
            "mri/t2w_partial_face.nii.gz",
            "t2w_partial_face.json",
            None,
            upside_down,
            "a slab, upside down",
        ),
        (
            "ct/invesalius_ct.nii.gz",
            "invesalius_ct.json",
            Some(35.0),
            upside_down,
            "without its top 35 mm, upside down",
        ),
    ] {
        let doc = landmarks_doc(marks);
        let right = real_volume(rel);
        let right = match cut_mm {
            Some(cut_mm) => below_vertex(&right, cut_mm),
            None => right,
        };
        let mut misplaced = right.clone();
        misplaced.affine = Affine(wrong * right.affine.0);
        let m = plan(&misplaced, &opts).unwrap_or_else(|e| panic!("{rel} {what}: {e}"));
        let name = format!("{rel} ({what})");
        failures.extend(check_removal(
            &name,
            &right,
            &m.removal(),
            &doc,
            opts.margin_mm,
        ));
        if !m
            .report
            .warnings
            .iter()
            .any(|w| w.contains("header's orientation is probably wrong"))
        {
            failures.push(format!(
                "{name}: no warning about the header: {:?}",
                m.report.warnings
            ));
        }
        let a = m.report.fit_matrix;
        let template = defacer_mask::template::Template::embedded();
        for eye in ["eye_left", "eye_right"] {
            let placed: Vec<f64> = doc["landmarks"][eye]["ras"]
                .as_array()
                .expect("eyes placed")
                .iter()
                .filter_map(|x| x.as_f64())
                .collect();
            // where the wrong header puts the subject's eye
            let placed = wrong * Vector4::new(placed[0], placed[1], placed[2], 1.0);
            // either eye: a mirrored fit swaps them
            let d = ["eye_left", "eye_right"]
                .map(|fitted| {
                    let t = template.landmarks[fitted];
                    (0..3)
                        .map(|r| {
                            (a[r][0] * t[0] + a[r][1] * t[1] + a[r][2] * t[2] + a[r][3] - placed[r])
                                .powi(2)
                        })
                        .sum::<f64>()
                        .sqrt()
                })
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            eprintln!("{name}: a template eye fitted {d:.1} mm from the subject's {eye}");
            if d > EYE_FIT_MM {
                failures.push(format!(
                    "{name}: template eyes {d:.1} mm from the subject's {eye}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Fields of view that stop short of the vertex: the same heads with the top 35 and 50 mm cut
/// away (the slices above a plane through the head, as a short axial scan ends), against the
/// same landmarks. The template must still land on the face with half the cranium missing.
#[test]
fn landmarks_hold_when_the_field_of_view_misses_the_vertex() {
    let mut failures = Vec::new();
    for (rel, marks) in [
        ("mri/ch2.nii.gz", "ch2.json"),
        ("ct/invesalius_ct.nii.gz", "invesalius_ct.json"),
    ] {
        let vol = real_volume(rel);
        let doc = landmarks_doc(marks);
        for cut_mm in [35.0, 50.0] {
            let cropped = below_vertex(&vol, cut_mm);
            let what = format!("{rel} without its top {cut_mm} mm");
            failures.extend(check(&what, &cropped, &doc));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The Siemens 2-D T1 (4.8 mm sagittal slices) with the top 30 rows (30 mm) of its slices cut
/// away. On slices this thick the skull's dark band is a cell or two wide, and whether its ring
/// closes can hinge on where the working grid's cells fall: on this cut it did not (the space
/// it enclosed held 68 % of the template brain's interior; one row more or less and it did),
/// the brain was then kept by the template alone, 3 mm farther, and the right eye's landmark
/// was left. The skull must be found and every landmark hold.
#[test]
fn landmarks_hold_on_thick_slices_without_the_vertex() {
    let rel = "mri/siemens_t1_2d_hfs";
    let vol = real_volume(rel);
    let doc = landmarks_doc("siemens_t1_2d_hfs.json");
    let cropped = without_end_rows(&vol, 30, End::Superior);
    let what = format!("{rel} without the top 30 rows");
    let m = plan(&cropped, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(m.bone.is_some(), "{what}: {:?}", m.report.warnings);
    let mut failures = check(&what, &cropped, &doc);
    failures.extend(misplaced_eyes(&what, &cropped, &doc));
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The T2 slab without its lowest 15 slices (30 mm): the field of view now starts at the
/// orbits' roofs, the eyes' centres and the nose out of view, and what is left is a band of
/// cranium, which the template's skin fits at many heights. It fitted 20 mm too high, 1.6 mm
/// from the skin; the skull was then refused (judged against the misplaced template), the brain
/// was placed by the template alone, and the removal came within 3.2 mm of the frontal pole.
/// A plan must either keep every landmark or refuse the fit as misplaced.
#[test]
fn a_band_of_cranium_is_not_defaced_by_a_misplaced_template() {
    let rel = "mri/t2w_partial_face.nii.gz";
    let vol = real_volume(rel);
    let cropped = without_end_rows(&vol, 15, End::Inferior);
    let what = format!("{rel} without its lowest 15 slices");
    match plan(&cropped, &DefaceOptions::default()) {
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("misplaced"), "{what}: {e}");
        }
        Ok(_) => {
            let failures = check(&what, &cropped, &landmarks_doc("t2w_partial_face.json"));
            assert!(failures.is_empty(), "{failures:#?}");
        }
    }
}

/// A craniectomy: the InVesalius CT with its bone (above 150 HU) turned to soft tissue (35 HU)
/// within 35 mm of a point of the frontal bone, once over the frontal pole and once over the
/// right frontal defect the scan already has. The outside air must not reach the brain through
/// the opening: every brain landmark keeps the margin and the face is still removed. (Before
/// the skull's ring was closed over such openings, the removal came within 2 mm of the frontal
/// pole.)
#[test]
fn landmarks_hold_when_a_bone_flap_is_missing() {
    let rel = "ct/invesalius_ct.nii.gz";
    let vol = real_volume(rel);
    let doc = landmarks_doc("invesalius_ct.json");
    let mut failures = Vec::new();
    for centre in [[0.0, 72.0, 30.0], [35.0, 60.0, 30.0]] {
        let (opened, removed) = without_bone_near(&vol, centre, 35.0);
        assert!(
            removed > 10_000,
            "{removed} bone voxels turned to soft tissue"
        );
        let what = format!("{rel} without the bone within 35 mm of {centre:?}");
        failures.extend(check(&what, &opened, &doc));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Backgrounds that are not clean zero, as scanners and reconstructions write them: Rician noise
/// of 8 % of the white matter's level (a noisy fast scan), an offset of 20 % with Gaussian noise
/// of 5 % (a background raised by filtering or intensity normalisation), and zero-mean Gaussian
/// noise of 3 % (negative air, as after some reconstructions and resampling). Noise of this
/// level reaches dim skin cell by cell: the head threshold used to rise into the scalp, and
/// on ch2 the removal then took 4.4 ml of the brain (Rician) and 36 ml (offset), while the
/// Philips face was not removed at all (negative air in large units, taken for CT's); with an
/// offset of 10 % and noise of 3 % the dark vitreous of an eye was kept as bone. Every landmark
/// must hold, and on ch2 not one voxel of the ch2bet brain may be removed. With Rician noise of
/// 22 % the Philips head's skin stayed within the noise averaged over 3×3×3 cells, and the
/// removal came within 0.5 mm of the frontal pole (and left the chin).
#[test]
fn landmarks_hold_on_a_noisy_background() {
    let mut failures = Vec::new();
    let brain = real_volume("mri/ch2bet.nii.gz").frame_physical(0);
    for (rel, marks) in [
        ("mri/ch2.nii.gz", "ch2.json"),
        ("mri/philips_mprage_t1", "philips_mprage_t1.json"),
    ] {
        let vol = real_volume(rel);
        let doc = landmarks_doc(marks);
        let wm = white_matter_level(&vol);
        // (what, noise, scale): the scale puts white matter at 100 000, as a converter that
        // applies the scanner's floating-point scaling may write it; there zero-mean air noise
        // reaches −500 and beyond, where CT's air lies
        let kinds: Vec<(&str, Noise, f64)> = if rel.contains("ch2") {
            vec![
                ("Rician noise 8 %", Noise::Rician(0.08 * wm), 1.0),
                (
                    "offset 20 %, noise 5 %",
                    Noise::Offset(0.2 * wm, 0.05 * wm),
                    1.0,
                ),
                ("zero-mean noise 3 %", Noise::Gaussian(0.03 * wm), 1.0),
            ]
        } else {
            vec![
                (
                    "offset 10 %, noise 3 %",
                    Noise::Offset(0.1 * wm, 0.03 * wm),
                    1.0,
                ),
                ("zero-mean noise 3 %", Noise::Gaussian(0.03 * wm), 1.0),
                // the skin within the noise even averaged over 3×3×3 cells
                ("Rician noise 22 %", Noise::Rician(0.22 * wm), 1.0),
                (
                    "zero-mean noise 3 %, white matter at 100 000",
                    Noise::Gaussian(0.03 * 1e5),
                    1e5 / wm,
                ),
            ]
        };
        for (name, noise, scale) in kinds {
            let noisy = with_noise(&vol, noise, scale, 7);
            let what = format!("{rel} with {name}");
            let (missed, removal) = checked(&what, &noisy, &doc);
            failures.extend(missed);
            if rel.contains("ch2") {
                failures.extend(brain_removed(&what, &removal, &brain));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A head whose skull is not found: the Philips T1 with Rician noise of 16 % of white matter.
/// The dark band under the scalp is then not traced, and the brain is known only from the
/// template fitted to the skin, which may put it a few millimetres short of the subject's (the
/// frontal pole lay 2.5 mm outside the fitted template's brain on a copy of this head under a
/// strong bias field, before such fields were allowed for in the head mask). Every landmark
/// must hold all the same, and the report must say how the brain was placed.
#[test]
fn landmarks_hold_when_the_skull_is_not_found() {
    let rel = "mri/philips_mprage_t1";
    let vol = real_volume(rel);
    let wm = white_matter_level(&vol);
    let noisy = with_noise(&vol, Noise::Rician(0.16 * wm), 1.0, 11);
    let m = plan(&noisy, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(
        m.bone.is_none(),
        "{rel} with noise of 16 %: the skull was found, so this no longer tests a head without it"
    );
    assert!(
        m.report
            .warnings
            .iter()
            .any(|w| w.contains("template alone")),
        "{:?}",
        m.report.warnings
    );
    let doc = landmarks_doc("philips_mprage_t1.json");
    let what = format!("{rel} with noise of 16 %, its skull not found");
    let mut failures = check(&what, &noisy, &doc);
    failures.extend(misplaced_eyes(&what, &noisy, &doc));
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A receive coil's falloff: ch2 and the Philips T1 darkened with the distance from the centre
/// of the field of view, threefold at 90 mm (the centre brightening of 7 T, a head coil far
/// from the face); the nose is then five times darker than it was. With one threshold for the
/// whole head, most of ch2's face fell out of the head mask, the template fitted to the rest
/// lay 17 mm off at the eyes and the removal took 1230 voxels of the ch2bet brain; the Philips
/// head kept its right eye. Every landmark must hold, the fitted eyes too, and on ch2 not one
/// voxel of the ch2bet brain may be removed.
#[test]
fn landmarks_hold_under_a_coil_s_falloff() {
    let brain = real_volume("mri/ch2bet.nii.gz").frame_physical(0);
    let mut failures = Vec::new();
    for (rel, marks) in [
        ("mri/ch2.nii.gz", "ch2.json"),
        ("mri/philips_mprage_t1", "philips_mprage_t1.json"),
    ] {
        let vol = real_volume(rel);
        let (nx, ny, nz) = vol.frame_physical(0).dim();
        let map = vol.voxel_map().expect("invertible");
        let centre = map.to_world([nx, ny, nz].map(|n| (n as f64 - 1.0) / 2.0));
        let dimmed = with_gain(&vol, |w| {
            let r2: f64 = (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum();
            (-3f64.ln() * r2 / (90.0 * 90.0)).exp()
        });
        let doc = landmarks_doc(marks);
        let what = format!("{rel} darkened threefold at 90 mm from its centre");
        let (missed, removal) = checked(&what, &dimmed, &doc);
        failures.extend(missed);
        failures.extend(misplaced_eyes(&what, &dimmed, &doc));
        if rel.contains("ch2") {
            failures.extend(brain_removed(&what, &removal, &brain));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A failure if `removal` takes any voxel of the ch2bet `brain`.
fn brain_removed(what: &str, removal: &Array3<bool>, brain: &Array3<f32>) -> Option<String> {
    let removed = removal
        .indexed_iter()
        .filter(|(ijk, &r)| r && brain[*ijk] > 0.0)
        .count();
    eprintln!("{what}: {removed} ch2bet voxels removed");
    (removed > 0).then(|| format!("{what}: {removed} ch2bet voxels removed"))
}

/// `vol` with every voxel multiplied by `gain` at its world position, stored as f32 with its
/// modality unknown, as in a NIfTI file.
fn with_gain(vol: &Volume, gain: impl Fn([f64; 3]) -> f64) -> Volume {
    let map = vol.voxel_map().expect("invertible");
    let mut data = vol.frame_physical(0);
    for ((i, j, k), v) in data.indexed_iter_mut() {
        let w = map.to_world([i as f64, j as f64, k as f64]);
        *v = (*v as f64 * gain(w)) as f32;
    }
    let mut out = float_volume(&data, vol.affine, Modality::Unknown);
    out.slice_positions = vol.slice_positions.clone();
    out
}

#[derive(Clone, Copy)]
enum Noise {
    /// Magnitude of a complex signal with Gaussian noise of this σ in each channel.
    Rician(f64),
    /// This offset everywhere, plus Gaussian noise of this σ, clipped at zero.
    Offset(f64, f64),
    /// Gaussian noise of this σ, negative values kept.
    Gaussian(f64),
}

/// The mean of the brightest tenth of the voxels above a tenth of the maximum: white matter (or
/// fat) in a T1 head, the level noise is quoted against.
fn white_matter_level(vol: &Volume) -> f64 {
    let data = vol.frame_physical(0);
    let max = data.iter().copied().fold(f32::MIN, f32::max);
    let mut tissue: Vec<f32> = data.iter().copied().filter(|&v| v > 0.1 * max).collect();
    tissue.sort_by(|a, b| a.total_cmp(b));
    let top = &tissue[tissue.len() * 9 / 10..];
    top.iter().map(|&v| v as f64).sum::<f64>() / top.len() as f64
}

/// `vol` scaled by `scale`, with `noise` added (deterministic in `seed`), stored as f32 with its
/// modality unknown, as in a NIfTI file.
fn with_noise(vol: &Volume, noise: Noise, scale: f64, seed: u64) -> Volume {
    // SplitMix64 and Box–Muller: a few lines of reproducible normal deviates for a test, where a
    // random-number crate would be a dependency for nothing else.
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut normal = move || {
        let (u, v) = (uniform().max(1e-300), uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut data = vol.frame_physical(0);
    for x in data.iter_mut() {
        let v = *x as f64 * scale;
        *x = match noise {
            Noise::Rician(s) => (v + s * normal()).hypot(s * normal()),
            Noise::Offset(o, s) => (v + o + s * normal()).max(0.0),
            Noise::Gaussian(s) => v + s * normal(),
        } as f32;
    }
    let mut noisy = float_volume(&data, vol.affine, Modality::Unknown);
    noisy.slice_positions = vol.slice_positions.clone();
    noisy
}

/// A volume of physical values `data` (f32, no scaling) placed by `affine`.
fn float_volume(data: &Array3<f32>, affine: Affine, modality: Modality) -> Volume {
    let (nx, ny, nz) = data.dim();
    let mut voxels = Array4::zeros((nx, ny, nz, 1).f());
    voxels.index_axis_mut(Axis(3), 0).assign(data);
    Volume::synthetic(Voxels::F32(voxels), affine, Scaling::IDENTITY, modality)
}

/// The first volume of the real-data file or series `rel` (see `defacer_testkit::real`).
fn real_volume(rel: &str) -> Volume {
    load(&[defacer_testkit::real(rel)])
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .remove(0)
}

/// The landmark file `name` of testdata/landmarks.
fn landmarks_doc(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/landmarks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("json")
}

/// `vol` with its bone (above 150 HU) within `radius_mm` of world point `centre` set to 35 HU,
/// and how many voxels that was.
fn without_bone_near(vol: &Volume, centre: [f64; 3], radius_mm: f64) -> (Volume, usize) {
    let map = vol.voxel_map().expect("invertible");
    let mut data = vol.frame_physical(0);
    let mut removed = 0;
    for ((i, j, k), v) in data.indexed_iter_mut() {
        if *v > 150.0 {
            let w = map.to_world([i as f64, j as f64, k as f64]);
            let d2: f64 = (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum();
            if d2 < radius_mm * radius_mm {
                *v = 35.0;
                removed += 1;
            }
        }
    }
    (float_volume(&data, vol.affine, vol.modality), removed)
}

/// An end of the head along world z.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Superior,
    Inferior,
}

/// `vol` without the `rows` voxel planes at its `end`, across the voxel axis that runs most
/// nearly along world z.
fn without_end_rows(vol: &Volume, rows: usize, end: End) -> Volume {
    let a = vol.affine.0;
    let axis = axial_axis(vol);
    let data = vol.frame_physical(0);
    let n = data.len_of(Axis(axis));
    // the superior end is the last plane where z grows with the index
    let first = if (a[(2, axis)] > 0.0) == (end == End::Superior) {
        0
    } else {
        rows
    };
    let part = data
        .slice_axis(Axis(axis), ndarray::Slice::from(first..first + n - rows))
        .to_owned();
    let mut start = [0.0; 3];
    start[axis] = first as f64;
    let origin = vol.affine.voxel_to_world(start);
    let mut m = a;
    for r in 0..3 {
        m[(r, 3)] = origin[r];
    }
    float_volume(&part, Affine(m), vol.modality)
}

/// The slices of `vol` lying at least `cut_mm` below the top of the head (the highest slice
/// with tissue). Slices must run along world z, as in the heads used here.
fn below_vertex(vol: &Volume, cut_mm: f64) -> Volume {
    let a = vol.affine.0;
    assert!(
        a[(2, 2)].abs() > 0.9 * (a[(0, 2)].powi(2) + a[(1, 2)].powi(2) + a[(2, 2)].powi(2)).sqrt(),
        "slices do not run along z"
    );
    let data = vol.frame_physical(0);
    let max = data.iter().copied().fold(f32::MIN, f32::max);
    let tissue = if vol.modality == Modality::Ct {
        -300.0
    } else {
        0.1 * max
    };
    let z = |k: usize| vol.affine.voxel_to_world([0.0, 0.0, k as f64])[2];
    let nz = data.dim().2;
    let top = (0..nz)
        .filter(|&k| data.index_axis(Axis(2), k).iter().any(|&v| v > tissue))
        .map(z)
        .fold(f64::MIN, f64::max);
    let keep: Vec<usize> = (0..nz).filter(|&k| z(k) <= top - cut_mm).collect();
    let (k0, k1) = (keep[0], keep[keep.len() - 1]);
    let part = data.slice(s![.., .., k0..=k1]).to_owned();
    let mut m = a;
    let origin = vol.affine.voxel_to_world([0.0, 0.0, k0 as f64]);
    for r in 0..3 {
        m[(r, 3)] = origin[r];
    }
    float_volume(&part, Affine(m), vol.modality)
}
