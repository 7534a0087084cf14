//! Heads smaller than an adult's. The template is an adult, MNI-sized head and the fit's scale
//! prior stops it shrinking much below four fifths, so a head three quarters of an adult's (a
//! young child's) is not fitted well: the plan must say so rather than pass silently.

use defacer_mask::{plan, DefaceOptions};
use defacer_volume::{load, Volume};
use nalgebra::{Matrix4, Vector4};

/// A real head made `factor` times as large in the world (its affine scaled about the origin).
fn scaled(rel: &str, factor: f64) -> Volume {
    let mut v = load(&[defacer_testkit::real(rel)])
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .remove(0);
    v.affine.0 = Matrix4::from_diagonal(&Vector4::new(factor, factor, factor, 1.0)) * v.affine.0;
    v
}

fn small_head_warning(v: &Volume) -> Option<String> {
    let m = plan(v, &DefaceOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    m.report
        .warnings
        .into_iter()
        .find(|w| w.contains("as small as the template fit allows"))
}

#[test]
fn a_head_three_quarters_of_an_adults_is_flagged() {
    // ch2 at 0.75: the fit lands with its eyes 30 mm from the real ones
    let w = small_head_warning(&scaled("mri/ch2.nii.gz", 0.75));
    assert!(w.is_some(), "no warning for ch2 at 0.75");
    // the InVesalius CT at 0.85: shrunk to the bound on every axis, eyes 14–15 mm off
    let w = small_head_warning(&scaled("ct/invesalius_ct.nii.gz", 0.85));
    assert!(
        w.is_some_and(|w| w.contains("3 axes")),
        "InVesalius CT at 0.85"
    );
}

#[test]
fn adult_heads_are_not_flagged() {
    for rel in [
        "mri/ch2.nii.gz",
        "ct/invesalius_ct.nii.gz",
        "mri/t2w_partial_face.nii.gz",
    ] {
        let w = small_head_warning(&scaled(rel, 1.0));
        assert!(w.is_none(), "{rel}: {w:?}");
    }
}
