//! Renders of real heads: determinism, independence from the file's axis order, CT levels, and
//! the QC pictures.

use defacer_render::{qc, RenderOptions, SkinScene, View};
use defacer_volume::{Affine, Volume, Voxels};
use image::GrayImage;
use ndarray::{s, Array3};

fn load(rel: &str) -> Volume {
    let path = defacer_testkit::real(rel);
    defacer_volume::load(&[path])
        .expect("real volume loads")
        .remove(0)
}

/// `vol` stored with its axes in the order (k, i, j), the new first axis reversed; the affine
/// changes so that every voxel keeps its world position.
fn permuted_and_flipped(vol: &Volume) -> Volume {
    let a = vol.frame_physical(0);
    let nk = a.shape()[2];
    let b: Array3<f32> = a
        .permuted_axes([2, 0, 1])
        .slice(s![..;-1, .., ..])
        .to_owned();
    let dims = [b.shape()[0], b.shape()[1], b.shape()[2], 1];
    let samples: Vec<f32> = b.t().iter().copied().collect();
    // old (i, j, k) = (new1, new2, nk-1-new0)
    let m = nalgebra::Matrix4::new(
        0.0,
        1.0,
        0.0,
        0.0, //
        0.0,
        0.0,
        1.0,
        0.0, //
        -1.0,
        0.0,
        0.0,
        (nk - 1) as f64, //
        0.0,
        0.0,
        0.0,
        1.0,
    );
    Volume::synthetic(
        Voxels::from_file_order(dims, samples).expect("dims match"),
        Affine(vol.affine.0 * m),
        defacer_volume::Scaling::IDENTITY,
        vol.modality,
    )
}

fn lit_fraction(img: &GrayImage) -> f64 {
    img.pixels().filter(|p| p[0] > 0).count() as f64 / (img.width() * img.height()) as f64
}

#[test]
fn renders_are_deterministic_and_show_a_head() {
    let vol = load("mri/ch2.nii.gz");
    let opts = RenderOptions {
        size: 200,
        ..RenderOptions::default()
    };
    let a = SkinScene::new(&vol, &opts).unwrap();
    let b = SkinScene::new(&vol, &opts).unwrap();
    for view in [
        View::FRONT,
        View {
            yaw_deg: 40.0,
            pitch_deg: -20.0,
        },
    ] {
        let (ia, ib) = (a.render(&view), b.render(&view));
        assert_eq!(ia, ib, "two renders of {view:?} differ");
        let lit = lit_fraction(&ia);
        // A head filling the framing sphere covers a good part of the picture, not all of it.
        assert!(
            lit > 0.25 && lit < 0.9,
            "{view:?}: {lit:.2} of the picture is skin"
        );
    }
}

#[test]
fn picture_does_not_depend_on_axis_order() {
    let vol = load("mri/ch2.nii.gz");
    let perm = permuted_and_flipped(&vol);
    assert_ne!(
        vol.affine.orientation_codes(),
        perm.affine.orientation_codes()
    );
    let opts = RenderOptions {
        size: 200,
        ..RenderOptions::default()
    };
    let a = SkinScene::new(&vol, &opts).unwrap();
    let b = SkinScene::new(&perm, &opts).unwrap();
    assert!((a.skin_level() - b.skin_level()).abs() < 1e-3 * a.skin_level().abs().max(1.0));
    for view in [
        View::FRONT,
        View {
            yaw_deg: -60.0,
            pitch_deg: 20.0,
        },
    ] {
        let (ia, ib) = (a.render(&view), b.render(&view));
        let n = (ia.width() * ia.height()) as usize;
        let diffs: Vec<i32> = ia
            .pixels()
            .zip(ib.pixels())
            .map(|(p, q)| (p[0] as i32 - q[0] as i32).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / n as f64;
        let big = diffs.iter().filter(|&&d| d > 8).count();
        assert!(mean < 0.5, "{view:?}: mean difference {mean:.3}");
        assert!(
            big * 1000 < n,
            "{view:?}: {big} pixels differ by more than 8"
        );
    }
}

#[test]
fn ct_uses_the_hounsfield_skin_level() {
    let vol = load("ct/invesalius_ct.nii.gz");
    let scene = SkinScene::new(
        &vol,
        &RenderOptions {
            size: 160,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    assert!(
        (-300.0..=-200.0).contains(&scene.skin_level()),
        "{}",
        scene.skin_level()
    );
    let lit = lit_fraction(&scene.render(&View::FRONT));
    assert!(lit > 0.2, "{lit}");
}

#[test]
fn mri_skin_level_lies_between_air_and_tissue() {
    for rel in ["mri/ch2.nii.gz", "mri/t2w_partial_face.nii.gz"] {
        let vol = load(rel);
        let frame = vol.frame_physical(0);
        let mut v: Vec<f32> = frame.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        let scene = SkinScene::new(
            &vol,
            &RenderOptions {
                size: 64,
                ..RenderOptions::default()
            },
        )
        .unwrap();
        let level = scene.skin_level();
        // Air (the darkest quarter of a head volume) is below the level, bright tissue above.
        assert!(level > v[v.len() / 4], "{rel}: level {level} not above air");
        assert!(
            level < v[v.len() * 99 / 100],
            "{rel}: level {level} not below tissue"
        );
    }
}

#[test]
fn before_after_shows_what_was_removed() {
    let vol = load("mri/ch2.nii.gz");
    // Everything anterior of y = 60 mm (in front of the eyes) set to air.
    let mut cut = vol.clone();
    let frame = vol.frame_physical(0);
    let mask = ndarray::Array3::from_shape_fn(frame.dim(), |(i, j, k)| {
        vol.affine.voxel_to_world([i as f64, j as f64, k as f64])[1] > 60.0
    });
    cut.voxels.fill(&mask.view(), 0.0);
    let views = [
        View::FRONT,
        View {
            yaw_deg: 60.0,
            pitch_deg: 0.0,
        },
    ];
    let opts = RenderOptions {
        size: 120,
        ..RenderOptions::default()
    };
    let sheet = qc::before_after(&vol, &cut, &views, &opts).unwrap();
    assert_eq!((sheet.width(), sheet.height()), (2 * 120 + 2, 2 * 120 + 2));
    let top = image::imageops::crop_imm(&sheet, 0, 0, 120, 120).to_image();
    let bottom = image::imageops::crop_imm(&sheet, 0, 122, 120, 120).to_image();
    assert_ne!(
        top, bottom,
        "cutting the face changed nothing in the front view"
    );

    let slices = qc::mask_slices(&vol, &mask.view()).unwrap();
    let red = slices
        .pixels()
        .filter(|p| p[0] == 255 && p[1] == 40)
        .count();
    assert!(
        red > 100,
        "outline of the removed region is missing ({red} pixels)"
    );
    let wrong = ndarray::Array3::from_elem((3, 3, 3), false);
    assert!(qc::mask_slices(&vol, &wrong.view()).is_err());
}
