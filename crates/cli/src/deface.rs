//! `defacer deface`: the batch driver. Per item: load → mask → apply → save (+ mask, QC,
//! report). Items run in parallel; one failure never stops the others.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use defacer_apply::{Fill, Method};
use defacer_volume::nifti::ScrubbedField;
use defacer_volume::{SaveOptions, Scaling, Source, Volume, Voxels};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::exit;
use crate::inputs::{self, Item};

/// The demo head embedded in the binary, used when no input is given.
const DEMO_HEAD: &[u8] = include_bytes!("../../../testdata/sample/ch2_2mm.nii.gz");

#[derive(Args, Clone)]
pub struct DefaceArgs {
    /// NIfTI files, DICOM series folders, or folder trees of them. None: run on the bundled demo head.
    inputs: Vec<PathBuf>,
    /// Output: a file (one NIfTI input), a folder (one DICOM series), or a folder mirroring the inputs.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// What to do with the face.
    #[arg(long, value_enum, default_value_t = MethodArg::Remove)]
    method: MethodArg,
    /// What replaces removed tissue (remove, reface): the air value, or noise matched to the background.
    #[arg(long, value_enum, default_value_t = FillArg::Air)]
    fill: FillArg,
    /// Gaussian width in mm for --method blur.
    #[arg(long, default_value_t = 10.0)]
    blur_sigma_mm: f64,
    /// Also remove the outer ears.
    #[arg(long)]
    ears: bool,
    /// Also remove facial bone (nose, orbital rims, maxilla, mandible), not only soft tissue.
    #[arg(long)]
    remove_bone: bool,
    /// Brain safety margin in mm: nothing closer to the brain than this is changed.
    #[arg(long, default_value_t = 10.0)]
    margin: f64,
    /// Write the region the method may change as a NIfTI mask on the input's grid (a folder for several inputs).
    #[arg(long)]
    mask_out: Option<PathBuf>,
    /// Write QC pictures (renders before/after, slices with the removed region outlined) here.
    #[arg(long)]
    qc: Option<PathBuf>,
    /// Write a JSON report of every input here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Inputs processed at once (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
    /// Only this DICOM series (SeriesInstanceUID, as `defacer info` lists them) of folders
    /// holding several.
    #[arg(long, value_name = "UID")]
    series: Option<String>,
    /// DICOM: keep study, series and acquisition dates and times (PS3.15 Retain Longitudinal
    /// Temporal Information, Full Dates option).
    #[arg(long)]
    keep_dates: bool,
    /// DICOM: keep the patient's age, sex, size and weight (PS3.15 Retain Patient
    /// Characteristics option).
    #[arg(long)]
    keep_patient_characteristics: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Remove,
    Blur,
    Reface,
}

#[derive(Clone, Copy, ValueEnum)]
enum FillArg {
    Air,
    Noise,
}

impl DefaceArgs {
    fn method(&self) -> Method {
        let fill = match self.fill {
            FillArg::Air => Fill::Air,
            FillArg::Noise => Fill::Noise,
        };
        match self.method {
            MethodArg::Remove => Method::Remove { fill },
            MethodArg::Blur => Method::Blur {
                sigma_mm: self.blur_sigma_mm,
                fill,
            },
            MethodArg::Reface => Method::Reface { fill },
        }
    }
}

/// One input's entry in the JSON report.
#[derive(Serialize, Default)]
pub struct ItemReport {
    input: PathBuf,
    output: PathBuf,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    volumes: Vec<VolumeReport>,
}

#[derive(Serialize, Default)]
pub struct VolumeReport {
    method: String,
    removed_volume_ml: f64,
    voxels_changed: usize,
    min_distance_to_brain_mm: Option<f64>,
    timings_ms: Timings,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<PathBuf>,
    /// Identifying header fields that were cleared, with their old values.
    header_changes: Vec<ScrubbedField>,
    /// DICOM attributes removed or replaced by de-identification (PS3.15), by name only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dicom_header_changes: Vec<defacer_volume::deid::Change>,
}

#[derive(Serialize, Default)]
struct Timings {
    load: u64,
    mask: u64,
    apply: u64,
    save: u64,
    qc: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    tool: &'static str,
    version: &'static str,
    method: Method,
    margin_mm: f64,
    ears: bool,
    remove_bone: bool,
    items: &'a [ItemReport],
}

pub fn run(args: &DefaceArgs) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            crate::report_error(&format!("{e:#}"));
            exit::ERROR
        }
    }
}

fn run_inner(args: &DefaceArgs) -> Result<u8> {
    let mut args = args.clone();
    if args.inputs.is_empty() {
        prepare_demo(&mut args)?;
    }
    let Some(output) = args.output.clone() else {
        bail!("no output given: use -o OUTPUT (a file for one NIfTI input, a folder otherwise)");
    };
    let items = inputs::plan(&args.inputs, &output).map_err(anyhow::Error::msg)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let bar = progress_bar(items.len());
    let reports: Mutex<Vec<(usize, ItemReport)>> = Mutex::new(Vec::new());
    pool.install(|| {
        items.par_iter().enumerate().for_each(|(n, item)| {
            let r = process(item, &args, items.len() == 1);
            if let Some(e) = &r.error {
                bar.suspend(|| crate::report_error(e));
            }
            // What the plan doubts (a forced fit, bone not found) must reach someone who
            // does not ask for the report.
            for w in r.volumes.iter().flat_map(|v| &v.warnings) {
                bar.suspend(|| eprintln!("defacer: {}: warning: {w}", r.input.display()));
            }
            bar.inc(1);
            if let Ok(mut v) = reports.lock() {
                v.push((n, r));
            }
        })
    });
    bar.finish_and_clear();
    let mut reports = reports.into_inner().unwrap_or_default();
    reports.sort_by_key(|(n, _)| *n);
    let reports: Vec<ItemReport> = reports.into_iter().map(|(_, r)| r).collect();
    let count = |s: &str| reports.iter().filter(|r| r.status == s).count();
    let (done, skipped, failed) = (count("done"), count("skipped"), count("failed"));
    eprintln!("defacer: {done} done, {skipped} skipped, {failed} failed");
    if let Some(path) = &args.report {
        write_report(path, &args, &reports)?;
    }
    Ok(if failed > 0 {
        exit::SOME_FAILED
    } else {
        exit::OK
    })
}

fn progress_bar(n: usize) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal, so logs stay clean.
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// With no input: write the embedded demo head into a folder and deface that.
fn prepare_demo(args: &mut DefaceArgs) -> Result<()> {
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("defacer-demo"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let input = dir.join("ch2_2mm.nii.gz");
    std::fs::write(&input, DEMO_HEAD)
        .with_context(|| format!("{}: cannot write", input.display()))?;
    eprintln!(
        "defacer: no input given: defacing the bundled demo head (Colin27, 2 mm) into {}",
        dir.display()
    );
    args.inputs = vec![input];
    args.output = Some(dir.join("ch2_2mm_defaced.nii.gz"));
    args.qc.get_or_insert_with(|| dir.join("qc"));
    args.mask_out
        .get_or_insert_with(|| dir.join("ch2_2mm_mask.nii.gz"));
    args.report.get_or_insert_with(|| dir.join("report.json"));
    args.overwrite = true;
    Ok(())
}

fn process(item: &Item, args: &DefaceArgs, single: bool) -> ItemReport {
    let mut rep = ItemReport {
        input: item.input.label().to_path_buf(),
        output: item.output.clone(),
        ..Default::default()
    };
    if item.output.exists() && !args.overwrite {
        rep.status = "skipped";
        rep.error = None;
        eprintln!(
            "defacer: {}: output exists, skipped (use --overwrite)",
            item.output.display()
        );
        return rep;
    }
    match deface_item(item, args, single, &mut rep) {
        Ok(()) => rep.status = "done",
        Err(e) => {
            rep.status = "failed";
            // Every error names the input, once.
            let msg = format!("{e:#}");
            let label = item.input.label().display().to_string();
            rep.error = Some(if msg.contains(&label) {
                msg
            } else {
                format!("{label}: {msg}")
            });
        }
    }
    rep
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

fn deface_item(item: &Item, args: &DefaceArgs, single: bool, rep: &mut ItemReport) -> Result<()> {
    let t = Instant::now();
    let vols = crate::inputs::load(&item.input, args.series.as_deref())?;
    let load_ms = ms(t);
    let many = vols.len() > 1;
    for (n, vol) in vols.into_iter().enumerate() {
        // Several series in one folder: each gets its own output folder inside the output.
        let series = if many {
            format!("_series-{:02}", n + 1)
        } else {
            String::new()
        };
        let out = if many {
            item.output.join(&series[1..])
        } else {
            item.output.clone()
        };
        let sides = SideOutputs {
            mask: args.mask_out.as_ref().map(|m| {
                inputs::side_path(m, item, single && !many, &format!("{series}_mask.nii.gz"))
            }),
            qc: args
                .qc
                .as_ref()
                .map(|q| inputs::side_path(q, item, false, &series)),
        };
        let mut vr = deface_volume(vol, &out, &sides, args)?;
        vr.timings_ms.load = load_ms;
        rep.volumes.push(vr);
    }
    Ok(())
}

/// Where one volume's mask and QC pictures go.
struct SideOutputs {
    mask: Option<PathBuf>,
    /// A folder for this volume's pictures.
    qc: Option<PathBuf>,
}

fn deface_volume(
    mut vol: Volume,
    out: &Path,
    sides: &SideOutputs,
    args: &DefaceArgs,
) -> Result<VolumeReport> {
    let method = args.method();
    let mut rep = VolumeReport {
        method: method.name().to_string(),
        ..Default::default()
    };
    let t = Instant::now();
    let rebuilds_face = !matches!(method, Method::Remove { .. });
    let plan = crate::plan::plan(
        &vol,
        args.margin,
        args.ears,
        args.remove_bone,
        rebuilds_face,
    )?;
    rep.timings_ms.mask = ms(t);
    if let Some(mask_path) = &sides.mask {
        write_mask(&vol, &plan.change, mask_path)?;
        rep.outputs.push(mask_path.to_path_buf());
    }
    let t = Instant::now();
    let original = args.qc.as_ref().map(|_| vol.clone());
    let stats = defacer_apply::apply(
        &mut vol,
        &plan.region(),
        &method,
        plan.mask.fill_value_stored,
    );
    rep.timings_ms.apply = ms(t);
    rep.voxels_changed = stats.voxels_changed;
    let t = Instant::now();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    }
    let opts = SaveOptions {
        description: format!("defaced by defacer {}", env!("CARGO_PKG_VERSION")),
        deidentification: defacer_volume::deid::Options {
            retain_full_dates: args.keep_dates,
            retain_patient_characteristics: args.keep_patient_characteristics,
            face_removed: true,
            patient_pseudonym: None,
        },
    };
    save_replacing(&vol, out, &opts, args.overwrite)?;
    rep.timings_ms.save = ms(t);
    rep.removed_volume_ml = plan.mask.report.removed_ml + plan.mask.report.ears_ml;
    rep.min_distance_to_brain_mm = plan.mask.report.min_distance_to_brain_mm;
    rep.warnings = plan.mask.report.warnings.clone();
    if let Some(slices) = &vol.slice_positions {
        let pitch = vol.affine.voxel_size()[2];
        let (lo, hi) = slices.gap_range();
        let mut w = format!(
            "slices are unevenly spaced ({:.2} to {:.2} mm apart): they are kept as stored and \
             the mask follows each slice's own position",
            lo * pitch,
            hi * pitch
        );
        if sides.mask.is_some() {
            w.push_str(&format!(
                "; the mask NIfTI's affine places its slices {pitch:.2} mm apart (the average), \
                 so read its slice k as the input's slice k, not by position"
            ));
        }
        rep.warnings.push(w);
    }
    match &vol.source {
        Source::Nifti(n) => rep.header_changes = n.identifying_fields(),
        Source::Dicom(d) => {
            rep.dicom_header_changes = d.identifying_fields(&opts.deidentification);
        }
        Source::Synthetic | Source::OnGridOf(_) => {}
    }
    if let (Some(dir), Some(before)) = (&sides.qc, &original) {
        let t = Instant::now();
        rep.outputs
            .extend(write_qc(before, &vol, &plan.change, dir)?);
        rep.timings_ms.qc = ms(t);
    }
    Ok(rep)
}

/// Renders before/after (front, 45°, side) and slices with the changed region outlined.
fn write_qc(
    before: &Volume,
    after: &Volume,
    change: &ndarray::Array3<bool>,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    use defacer_render::{qc, RenderOptions, View};
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let views = [0.0, 45.0, 90.0].map(|yaw_deg| View {
        yaw_deg,
        pitch_deg: 0.0,
    });
    let renders = dir.join("renders_before_after.png");
    let sheet = qc::before_after(before, after, &views, &RenderOptions::default())?;
    qc::save_png(&sheet, &renders)?;
    let slices = dir.join("slices_removed_region.png");
    qc::save_png(&qc::mask_slices(before, &change.view())?, &slices)?;
    Ok(vec![renders, slices])
}

/// The region the method may change, as a uint8 NIfTI (1 = may change) on the input's grid.
fn write_mask(vol: &Volume, change: &ndarray::Array3<bool>, path: &Path) -> Result<()> {
    let data = change.mapv(|m| m as u8).insert_axis(ndarray::Axis(3));
    let mask = vol.on_same_grid(Voxels::U8(data), Scaling::IDENTITY);
    create_parent(path)?;
    let opts = SaveOptions {
        description: "defacer: voxels the method may change".into(),
        ..Default::default()
    };
    defacer_volume::save(&mask, path, &opts)?;
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    }
    Ok(())
}

/// Saves, replacing an existing output only when asked. Files are replaced by rename (atomic);
/// an existing output folder is moved aside first and restored if the save fails.
fn save_replacing(vol: &Volume, out: &Path, opts: &SaveOptions, overwrite: bool) -> Result<()> {
    if out.is_dir() && overwrite {
        let aside = out.with_file_name(format!(
            ".{}.defacer-old",
            out.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(out, &aside)
            .with_context(|| format!("{}: cannot replace", out.display()))?;
        return match defacer_volume::save(vol, out, opts) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&aside);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::rename(&aside, out);
                Err(e.into())
            }
        };
    }
    defacer_volume::save(vol, out, opts)?;
    Ok(())
}

fn write_report(path: &Path, args: &DefaceArgs, items: &[ItemReport]) -> Result<()> {
    let report = Report {
        tool: "defacer",
        version: env!("CARGO_PKG_VERSION"),
        method: args.method(),
        margin_mm: args.margin,
        ears: args.ears,
        remove_bone: args.remove_bone,
        items,
    };
    let json = serde_json::to_string_pretty(&report)?;
    defacer_volume::output::write_file_atomically(path, |w| w.write_all(json.as_bytes()))?;
    Ok(())
}
