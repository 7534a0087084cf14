//! `defacer check`: does a face still show in a 3-D render of this volume?

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use clap::Args;
use defacer_check::{check_volume, CheckOptions, CheckReport, Landmark};
use defacer_mask::TurnedHeader;
use defacer_volume::Volume;
use rayon::prelude::*;
use serde::Serialize;

use crate::exit;
use crate::inputs::{self, Item};

#[derive(Args)]
pub struct CheckArgs {
    /// NIfTI files, DICOM series folders, or folder trees of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per volume instead of text.
    #[arg(long)]
    json: bool,
    /// Write every render (PNG) here, one folder per volume.
    #[arg(long)]
    renders: Option<PathBuf>,
    /// Inputs checked at once (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// One volume's verdict.
#[derive(Serialize)]
struct Verdict {
    path: PathBuf,
    #[serde(flatten)]
    report: CheckReport,
    /// Why no landmark residuals were measured, or which of them were not counted; and when
    /// the header placed the head wrongly, how the head was turned to be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    landmarks_note: Option<String>,
}

pub fn run(args: &CheckArgs) -> u8 {
    // Renders go to DIR/<item>; the planner's "output" is that folder.
    let out_root = args.renders.clone().unwrap_or_default();
    let items = match inputs::plan(&args.paths, &out_root) {
        Ok(i) => i,
        Err(e) => {
            crate::report_error(&e);
            return exit::ERROR;
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            crate::report_error(&e);
            return exit::ERROR;
        }
    };
    let results: Mutex<Vec<(usize, Result<Vec<Verdict>>)>> = Mutex::new(Vec::new());
    pool.install(|| {
        items.par_iter().enumerate().for_each(|(n, item)| {
            let r = check_item(item, args.renders.is_some(), items.len() == 1);
            if let Ok(mut v) = results.lock() {
                v.push((n, r));
            }
        })
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(n, _)| *n);
    let (mut verdicts, mut errors) = (Vec::new(), 0);
    for (n, r) in results {
        match r {
            Ok(v) => verdicts.extend(v),
            Err(e) => {
                errors += 1;
                let label = items[n].input.label().display().to_string();
                let msg = format!("{e:#}");
                crate::report_error(&if msg.contains(&label) {
                    msg
                } else {
                    format!("{label}: {msg}")
                });
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&verdicts) {
            Ok(s) => println!("{s}"),
            Err(e) => crate::report_error(&e),
        }
    } else {
        for v in &verdicts {
            println!("{}", line(v));
        }
    }
    // A face (or a face's relief) anywhere is the finding that matters most; errors come next.
    if verdicts
        .iter()
        .any(|v| v.report.face_found || v.report.residuals.large_residual)
    {
        exit::SOME_FAILED
    } else if errors > 0 {
        exit::ERROR
    } else {
        exit::OK
    }
}

fn line(v: &Verdict) -> String {
    let r = &v.report;
    let best = r
        .views
        .iter()
        .flat_map(|w| w.detections.iter().map(|d| d.confidence))
        .fold(f32::NEG_INFINITY, f32::max);
    let verdict = if r.face_found {
        format!(
            "FACE FOUND in {}/{} views (best score {best:.2})",
            r.views_with_face,
            r.views.len()
        )
    } else {
        format!("no face in {} views", r.views.len())
    };
    let mut s = format!("{}: {verdict}", v.path.display());
    let res = &r.residuals;
    if !res.landmarks.is_empty() {
        let relief: Vec<String> = res
            .landmarks
            .iter()
            .map(|l| {
                if l.in_view {
                    format!("{} {:.1}", l.name, l.relief_mm)
                } else {
                    format!("{} out of view", l.name)
                }
            })
            .collect();
        // Landmarks the scan does not reach show no relief whether or not a face is there.
        let verdict = if res.large_residual {
            "LARGE RESIDUAL"
        } else if res.landmarks.iter().any(|l| l.in_view) {
            "no facial relief"
        } else {
            "facial relief not measured: no mapped landmark lies in the field of view"
        };
        s += &format!(
            "; {verdict} (facial relief, mm: {}; large from {:.0} mm)",
            relief.join(", "),
            res.large_relief_mm
        );
    }
    if let Some(note) = &v.landmarks_note {
        s += &format!("; {note}");
    }
    s
}

fn check_item(item: &Item, renders: bool, single: bool) -> Result<Vec<Verdict>> {
    let vols = defacer_volume::load(&item.input.paths())?;
    let many = vols.len() > 1;
    vols.iter()
        .enumerate()
        .map(|(n, vol)| {
            let series = if many {
                format!("_series-{:02}", n + 1)
            } else {
                String::new()
            };
            let renders_dir =
                renders.then(|| inputs::side_path(&item.output, item, single && !many, &series));
            check_one(vol, renders_dir)
        })
        .collect()
}

fn check_one(vol: &Volume, renders_dir: Option<PathBuf>) -> Result<Verdict> {
    let fitted = template_landmarks(vol);
    // A head whose header places it wrongly (the template fitted it only with its axes
    // turned) is looked at as it fits: the renders look at the front of the header's world,
    // which would show the back of such a head and no face.
    let Ok(Fitted {
        turned_header: Some(turned),
        ..
    }) = &fitted
    else {
        return check_fitted(vol, renders_dir, fitted);
    };
    let placed = turned.placed(vol);
    let mut verdict = check_fitted(&placed, renders_dir, template_landmarks(&placed))?;
    let note = format!(
        "the header's orientation is probably wrong ({}): checked with the voxel axes read as \
         {}, as the head fits",
        vol.affine.orientation_codes(),
        turned.axis_codes
    );
    verdict.landmarks_note = Some(match verdict.landmarks_note {
        Some(n) => format!("{note}; {n}"),
        None => note,
    });
    Ok(verdict)
}

/// [`check_one`] with the template's landmarks (or why there are none) as placed in `vol`.
///
/// Two eye hollows count as a face unless the head may be a bare brain, whose frontal lobes
/// show two hollows where the eyes would be: a brain is told by having no skull found around
/// it *and* fitting the template only at a child's scale (as a brain, smaller than a head,
/// does). A head of adult size whose skull is not traced (an MRI whose frontal bone is not
/// dark, a craniotomy) is a head, and its eyes are its face: with the nose cut off by the
/// field of view they may be all that is left of it to measure.
fn check_fitted(
    vol: &Volume,
    renders_dir: Option<PathBuf>,
    fitted: Result<Fitted>,
) -> Result<Verdict> {
    let (landmarks, eye_hollows_count, landmarks_note) = match fitted {
        Ok(f) if f.skull_found => (f.landmarks, true, None),
        Ok(f) if !f.small_head => (
            f.landmarks,
            true,
            Some(
                "no skull found around the brain, but the head is an adult's size (not a bare \
                 brain): eye hollows counted"
                    .into(),
            ),
        ),
        Ok(f) => (
            f.landmarks,
            false,
            Some(
                "no skull found around the brain and the head is smaller than an adult's: eye \
                 hollows not counted (a bare brain has two)"
                    .into(),
            ),
        ),
        // no landmarks: nothing is measured, eye hollows included
        Err(e) => (
            Vec::new(),
            false,
            Some(format!("template fit failed, no landmark residuals: {e:#}")),
        ),
    };
    let defaults = CheckOptions::default();
    let opts = CheckOptions {
        renders_dir,
        landmarks,
        residuals: defacer_check::ResidualOptions {
            eye_hollows_count,
            ..defaults.residuals
        },
        ..defaults
    };
    let report = check_volume(vol, &opts)?;
    Ok(Verdict {
        path: vol.path().to_path_buf(),
        report,
        landmarks_note,
    })
}

/// The head fit as `check` uses it: the template's facial landmarks mapped into the volume's
/// world, what the fit says of a skull and of the head's size, and how the head fitted if only
/// with its axes turned.
struct Fitted {
    landmarks: Vec<Landmark>,
    skull_found: bool,
    small_head: bool,
    turned_header: Option<TurnedHeader>,
}

fn template_landmarks(vol: &Volume) -> Result<Fitted> {
    // A defaced head has lost the surface the fit likes best, so a looser fit is accepted: the
    // residuals need the face's place and orientation to within a centimetre or two, not the
    // precision that defacing needs.
    let opts = defacer_mask::DefaceOptions {
        max_fit_distance_mm: 8.0,
        ..defacer_mask::DefaceOptions::default()
    };
    let plan = defacer_mask::plan(vol, &opts)?;
    let m = plan.report.fit_matrix;
    let skull_found = plan.bone.is_some();
    let template = defacer_mask::template::Template::embedded();
    let landmarks = template
        .landmarks
        .iter()
        .filter(|(name, _)| !name.starts_with("tragus"))
        .map(|(name, p)| {
            let w = [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]);
            Landmark {
                name: name.clone(),
                world_mm: w,
            }
        })
        .collect();
    Ok(Fitted {
        landmarks,
        skull_found,
        small_head: plan.report.small_head,
        turned_header: plan.report.turned_header,
    })
}
