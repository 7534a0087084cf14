//! # defacer-mask
//!
//! Finds, in world space, the part of a head scan that shows the face (and optionally the
//! ears), and the brain region that must never change, for any modality (T1/T2/FLAIR/PD MRI,
//! CT in Hounsfield units), any orientation and any field of view; the result is mapped back
//! onto the volume's own voxel grid.
//!
//! Principal types, in the order [`plan`] uses them:
//! - [`grid::WorkingImage`]: a 2 mm RAS-aligned copy of the volume where the work happens;
//! - [`head::HeadMask`]: tissue versus air, attachments (CT table, holders) cut away;
//! - [`template::Template`]: the embedded head template (head, face, brain, ears labels);
//! - [`registration::HeadFit`]: template → subject transform fitted on the skin surface (a
//!   head tilted beyond 25° is placed upright and fitted again; one the template does not fit
//!   as the header places it, or fits only loosely, is tried with its voxel axes turned by
//!   quarter turns, see [`WorkingPlan::new`]);
//! - [`skull::SkullSurface`], [`brain::ProtectedBrain`], [`face::FaceRegion`];
//! - [`DefaceMask`]: the native-grid masks, the fill value and a [`MaskReport`].
//!
//! ```
//! use defacer_mask::{phantom::{Contrast, Phantom}, plan, DefaceOptions};
//! let ph = Phantom::new(Contrast::T1).with_voxel_mm(2.5).build();
//! let mask = plan(&ph.volume, &DefaceOptions::default())?;
//! assert!(mask.report.removed_ml > 50.0);
//! // nothing in the phantom's brain is in the removal region
//! assert!(mask.face.iter().zip(ph.brain.iter()).all(|(&f, &b)| !(f && b)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod brain;
pub mod distance;
pub mod face;
pub mod filter;
pub mod grid;
pub mod head;
pub mod order;
pub mod phantom;
pub mod registration;
pub mod skull;
pub mod template;

use defacer_volume::{DataType, Modality, Volume, VoxelMap};
use nalgebra::{Matrix4, Vector4};
use ndarray::{Array3, Axis, ShapeBuilder};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

use brain::ProtectedBrain;
use face::FaceRegion;
use grid::{Field, NativeValues, Phase, WorkingGrid, WorkingImage};
use head::HeadMask;
use registration::{HeadFit, SubjectSurface};
use skull::SkullSurface;
use template::{label, Template};

/// Why no mask could be made. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: invalid geometry: {problem}")]
    Geometry { file: String, problem: String },
    #[error("{file}: no head found ({detail})")]
    NoHead { file: String, detail: String },
    #[error("{file}: head fit failed ({detail}); is this a head scan?")]
    HeadFitFailed { file: String, detail: String },
}

/// What to remove and how carefully.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaceOptions {
    /// Safety margin (mm) around the brain that is never changed.
    pub margin_mm: f64,
    /// Also remove the outer ears.
    pub ears: bool,
    /// Also remove facial bone (nose, orbital rims, maxilla, mandible); never intracranial.
    pub remove_bone: bool,
    /// Modality override; `None` uses the volume's, or guesses from intensities.
    pub modality: Option<Modality>,
    /// Working grid spacing (mm), at least [`MIN_WORKING_MM`].
    pub working_mm: f64,
    /// Largest acceptable mean skin distance (mm) of the template fit.
    pub max_fit_distance_mm: f64,
}

/// The finest working grid (mm): finer grids cost memory as the cube of the spacing and
/// resolve nothing the template's 1 mm labels do not (the fit's two-byte skin distance has
/// room for the distances of grids this fine: about 1450 of 32 767).
pub const MIN_WORKING_MM: f64 = 0.5;

impl Default for DefaceOptions {
    fn default() -> Self {
        DefaceOptions {
            margin_mm: 10.0,
            ears: false,
            remove_bone: false,
            modality: None,
            working_mm: 2.0,
            // Measured mean skin distances: intact heads 1.6-2.9 mm at 1 mm voxels and 3.0 mm for
            // the 2 mm demo head (coarser voxels, the field of view cut below the nose); things
            // that must be refused: a 90 mm ball 3.7 mm, a bare brain 5.3 mm.
            max_fit_distance_mm: 3.4,
        }
    }
}

impl DefaceOptions {
    pub fn margin_mm(mut self, mm: f64) -> Self {
        self.margin_mm = mm;
        self
    }
    pub fn ears(mut self, yes: bool) -> Self {
        self.ears = yes;
        self
    }
    pub fn remove_bone(mut self, yes: bool) -> Self {
        self.remove_bone = yes;
        self
    }
    pub fn modality(mut self, m: Modality) -> Self {
        self.modality = Some(m);
        self
    }
}

/// Numbers describing a plan, for reports and quality control.
#[derive(Debug, Clone, Serialize)]
pub struct MaskReport {
    pub modality: Modality,
    /// Volume (ml) of the face removal region on the native grid.
    pub removed_ml: f64,
    /// Volume (ml) of the ear region (0 without ears).
    pub ears_ml: f64,
    /// Smallest distance (mm) between the removal (face and ears) and the unmargined brain,
    /// conservative: from the removed voxels' centres to any point of the brain's working
    /// cells, never less than the margin. `None` when nothing is removed.
    pub min_distance_to_brain_mm: Option<f64>,
    /// Mean distance (mm) from the fitted template surface to the subject's skin.
    pub fit_mean_distance_mm: f64,
    /// Share of fitted template surface points within 5 mm of the skin.
    pub fit_inlier_fraction: f64,
    /// Share of the template surface inside the field of view.
    pub fit_in_fov_fraction: f64,
    /// The head fitted only with the wider scale range for heads smaller than an adult's (a
    /// child's; see the warnings). A bare, skull-stripped brain fits only this way too.
    pub small_head: bool,
    /// Template world → subject world (the header's), row-major.
    pub fit_matrix: [[f64; 4]; 4],
    pub head_threshold: f64,
    /// Set when the template fitted the head only with its voxel axes turned from the
    /// header's (a wrong header): how they fitted.
    pub turned_header: Option<TurnedHeader>,
    pub warnings: Vec<String>,
    pub timings_ms: Timings,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub resample: f64,
    pub head: f64,
    pub fit: f64,
    pub regions: f64,
    pub native: f64,
    pub total: f64,
}

/// How a head whose header places it wrongly was found: its voxel axes turned by quarter
/// turns about the centre of the field of view (see [`WorkingPlan::new`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnedHeader {
    /// The axis codes (as nibabel's `aff2axcodes`) of the turned affine, e.g. `"LPS"`; left
    /// and right may be swapped, which a face does not tell.
    pub axis_codes: String,
    /// The turned affine (voxel → world mm, row-major), with which the head lies as the
    /// template's does.
    pub affine: [[f64; 4]; 4],
}

impl TurnedHeader {
    /// A copy of `vol` whose header places its voxels as the head fitted (for views and
    /// measurements that must see the head upright, such as renders of its face).
    pub fn placed(&self, vol: &Volume) -> Volume {
        let mut placed = vol.clone();
        placed.affine = defacer_volume::Affine(Matrix4::from_fn(|r, c| self.affine[r][c]));
        placed
    }
}

/// The masks on the volume's native grid (shape `[nx, ny, nz]`, Fortran order like the voxels).
#[derive(Debug, Clone)]
pub struct DefaceMask {
    /// Voxels that may change (face; facial bone only with `remove_bone`).
    pub face: Array3<bool>,
    /// Outer ears, when asked for (disjoint from `face`).
    pub ears: Option<Array3<bool>>,
    /// Brain plus margin: never changed, disjoint from `face` and `ears` by construction.
    pub protected: Array3<bool>,
    /// The subject's head (tissue, not air).
    pub head: Array3<bool>,
    /// The fitted template head.
    pub template_head: Array3<bool>,
    /// Bone in the head, when the modality shows it (CT) or the skull was found (MRI); kept
    /// unless `remove_bone`.
    pub bone: Option<Array3<bool>>,
    /// The space the skull encloses next to the brain, when the skull was found: part of the
    /// protected brain.
    pub intracranial: Option<Array3<bool>>,
    /// Air in stored units (what a removed voxel is set to).
    pub fill_value_stored: f64,
    /// Air in physical units (HU for CT).
    pub air_physical: f64,
    pub report: MaskReport,
}

impl DefaceMask {
    /// Face ∪ ears: everything that may change.
    pub fn removal(&self) -> Array3<bool> {
        match &self.ears {
            Some(e) => {
                let mut r = self.face.clone();
                r.zip_mut_with(e, |a, &b| *a = *a || b);
                r
            }
            None => self.face.clone(),
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Guesses CT from intensities when the file does not say: a twentieth of the view below
/// −500 and a tenth of it at air's −1000 HU.
fn guess_modality(img: &WorkingImage) -> Modality {
    let seen = &img.in_fov.data;
    let view = order::Ranks::new(&img.values.data, |c, _| seen[c]);
    let n = view.len();
    let Some(p5) = view.nth(n / 20) else {
        return Modality::Mr;
    };
    // CT's air is a mass of values at −1000 HU (27–62 % of the view on the test CTs, whose
    // padding lies elsewhere, at −1500 or below). An MRI in arbitrary units whose air noise is
    // zero-mean also reaches −500 and beyond, but spread out: a 200-wide window holds at most
    // 5 % of it, wherever it lies.
    let near_air = (img.values.data.par_iter().zip(seen))
        .filter(|&(&x, &ok)| ok && (x + 1000.0).abs() < 100.0)
        .count();
    if (p5 as f64) < -500.0 && near_air as f64 >= CT_AIR_SHARE * n as f64 {
        Modality::Ct
    } else {
        Modality::Mr
    }
}

/// Share of the field of view within 100 HU of air (−1000) above which a volume that does not
/// say its modality is taken for CT.
const CT_AIR_SHARE: f64 = 0.10;

fn dtype_range(dt: DataType) -> (f64, f64) {
    match dt {
        DataType::U8 => (0.0, 255.0),
        DataType::I8 => (-128.0, 127.0),
        DataType::U16 => (0.0, 65535.0),
        DataType::I16 => (-32768.0, 32767.0),
        DataType::U32 => (0.0, u32::MAX as f64),
        DataType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DataType::F32 => (f32::MIN as f64, f32::MAX as f64),
        DataType::F64 => (f64::MIN, f64::MAX),
    }
}

/// Computes the face (and ear) removal region and the protected brain of `vol`.
pub fn plan(vol: &Volume, opts: &DefaceOptions) -> Result<DefaceMask, Error> {
    Ok(WorkingPlan::new(vol, opts)?.native(opts.remove_bone))
}

/// The part of a plan done on the working grid (head, fit, skull, brain, face), before the
/// masks are mapped onto the volume's own grid. [`plan`] is `new` then `native`; planning
/// through it lets a caller decide on facial bone after seeing the modality and the skull
/// without doing the working-grid half twice.
pub struct WorkingPlan<'a> {
    vol: &'a Volume,
    map: VoxelMap<'a>,
    opts: DefaceOptions,
    started: Instant,
    modality: Modality,
    img: WorkingImage<'a>,
    head: HeadMask,
    fit: HeadFit,
    labels: Field<u8>,
    /// Subject world → template world (the fit's inverse).
    to_template: Matrix4<f64>,
    skull: SkullSurface,
    brain: ProtectedBrain,
    region: FaceRegion,
    timings: Timings,
    /// Where the plan was made in a world other than the header's (the head turned upright,
    /// [`upright`], or a wrong header's axes turned, [`turned_head`]): the way back to the
    /// header's world.
    back: Option<Matrix4<f64>>,
    /// Where the head fitted only with its axes turned from the header's: the axis codes the
    /// header would have had to give.
    wrong_header: Option<String>,
}

impl<'a> WorkingPlan<'a> {
    /// Everything of [`plan`] but the native masks (`opts.remove_bone` is not used here).
    ///
    /// A head the template does not fit where the header places it, or fits only loosely, is
    /// tried with its voxel axes turned by quarter turns; if one of them fits closely, the plan
    /// is made so, its masks (on the voxel grid) are right for the file as it is, and the
    /// report says the header is probably wrong ([`MaskReport::turned_header`]).
    pub fn new(vol: &'a Volume, opts: &DefaceOptions) -> Result<Self, Error> {
        working(vol, opts)
    }

    /// The modality planned for: the override, the volume's, or the guess from intensities.
    pub fn modality(&self) -> Modality {
        self.modality
    }

    /// Whether bone was identified (CT, or an MRI whose skull was found), and so can be kept.
    pub fn bone_found(&self) -> bool {
        self.skull.found()
    }

    /// The masks on the native grid: what [`plan`] gives with `opts.remove_bone` set to
    /// `remove_bone`.
    pub fn native(&self, remove_bone: bool) -> DefaceMask {
        finish(self, remove_bone)
    }
}

/// The head found with its voxels placed in the world by `map`: resampled, masked, its skin
/// surface measured; not fitted yet.
struct LocatedHead<'a> {
    map: VoxelMap<'a>,
    modality: Modality,
    img: WorkingImage<'a>,
    head: HeadMask,
    surface: SubjectSurface,
    timings: Timings,
}

/// The plan's first half: the head found and the template fitted to it.
struct FittedHead<'a> {
    located: LocatedHead<'a>,
    fit: HeadFit,
}

fn working<'a>(vol: &'a Volume, opts: &DefaceOptions) -> Result<WorkingPlan<'a>, Error> {
    let t_all = Instant::now();
    let file = vol.path().display().to_string();
    let geometry = |problem: String| Error::Geometry {
        file: file.clone(),
        problem,
    };
    vol.affine.validate().map_err(geometry)?;
    let map = vol
        .voxel_map()
        .ok_or_else(|| geometry("affine is singular".into()))?;
    if !(opts.working_mm >= MIN_WORKING_MM && opts.margin_mm >= 0.0) {
        return Err(geometry(format!(
            "the working grid spacing must be at least {MIN_WORKING_MM} mm and the margin \
             positive"
        )));
    }
    let fitted = fit_head(vol, locate_head(vol, map, opts)?)?;
    // A header that places the head wrongly is looked for wherever the head fits worse than a
    // plan accepts by default, also under looser options (`defacer check` on defaced heads),
    // and wherever a fit that passes is loose ([`loose`]).
    let strict = DefaceOptions {
        max_fit_distance_mm: opts
            .max_fit_distance_mm
            .min(DefaceOptions::default().max_fit_distance_mm),
        ..opts.clone()
    };
    let (fitted, back, searched) = if check_fit(&fitted.fit, &strict).is_ok() {
        // A head that fits but is tilted is placed upright before it is judged loose: a
        // head turned 60° about the vertical fits loosely as it lies and closely upright.
        let (fitted, back) = upright(vol, opts, fitted, None);
        let searched = loose(&fitted.fit).then(|| turned_head(vol, opts, &fitted, back));
        (fitted, back, searched.flatten())
    } else {
        let searched = turned_head(vol, opts, &fitted, None);
        if searched.is_none() {
            if let Err(detail) = check_fit(&fitted.fit, opts) {
                return Err(Error::HeadFitFailed { file, detail });
            }
        }
        let (fitted, back) = match searched {
            Some(_) => (fitted, None),
            None => upright(vol, opts, fitted, None),
        };
        (fitted, back, searched)
    };
    let (fitted, back, wrong_header) = match searched {
        Some((mut turned, turned_back, codes, search_ms)) => {
            // the search is part of the fit's time
            turned.located.timings.fit = fitted.located.timings.fit + search_ms;
            let (turned, turned_back) = upright(vol, opts, turned, Some(turned_back));
            (turned, turned_back, Some(codes))
        }
        None => (fitted, back, None),
    };
    let mut plan = regions_traced(vol, opts, fitted, t_all)?;
    plan.back = back;
    plan.wrong_header = wrong_header;
    Ok(plan)
}

/// A head fitted more than [`UPRIGHT_ABOVE_DEG`] from upright in the world it was placed in
/// is placed again, turned upright about the centre of the field of view by the fit's
/// rotation, and fitted again; taken if that fit passes and is more upright. Returns the head
/// to plan with, and the way back from its world to the header's (composed onto `back`,
/// the way back from the world `fitted` lies in).
///
/// Why: the skull is closed and filled slice by slice in the world's axial planes, and the
/// CT exterior is reached through them. Across a strongly tilted head an axial plane cuts an
/// orbit and the cranium together, and the orbit can join the space the skull encloses:
/// the InVesalius CT rolled by 30° kept its left eye (protected as brain, 1.5 mm from the
/// intracranial space that should lie 20 mm away). Upright, the planes lie as they do on
/// the heads the skull search was built on.
fn upright<'a>(
    vol: &'a Volume,
    opts: &DefaceOptions,
    fitted: FittedHead<'a>,
    back: Option<Matrix4<f64>>,
) -> (FittedHead<'a>, Option<Matrix4<f64>>) {
    let tilt = fitted.fit.tilt_deg();
    if tilt <= UPRIGHT_ABOVE_DEG {
        return (fitted, back);
    }
    let map = &fitted.located.map;
    let about = |m: Matrix4<f64>| about_centre(vol, map, m);
    let rotation = fitted.fit.rotation();
    // a rotation's inverse is its transpose
    let up = VoxelMap::new(
        &defacer_volume::Affine(about(rotation.transpose()) * map.affine().0),
        vol.slice_positions.as_ref(),
    )
    .and_then(|map| locate_head(vol, map, opts).ok())
    .and_then(|located| fit_head(vol, located).ok())
    .filter(|up| check_fit(&up.fit, opts).is_ok() && up.fit.tilt_deg() < tilt);
    match up {
        Some(mut up) => {
            // both fits are the fit's time
            up.located.timings.fit += fitted.located.timings.fit;
            let back = back.unwrap_or_else(Matrix4::identity) * about(rotation);
            (up, Some(back))
        }
        None => (fitted, back),
    }
}

/// `rotation` (an affine matrix) made to turn the world about the centre of `vol`'s field of
/// view as `map` places it.
fn about_centre(vol: &Volume, map: &VoxelMap, rotation: Matrix4<f64>) -> Matrix4<f64> {
    let [nx, ny, nz, _] = vol.dims();
    let centre =
        nalgebra::Vector3::from(map.to_world([nx, ny, nz].map(|n| (n as f64 - 1.0) / 2.0)));
    Matrix4::new_translation(&centre) * rotation * Matrix4::new_translation(&-centre)
}

/// Heads fitted more than this far (degrees) from upright are planned upright ([`upright`]):
/// the orientation tests' heads turned by 20° (and the GE CT, 18° chin-up) stay as they lie.
const UPRIGHT_ABOVE_DEG: f64 = 25.0;

/// Resampling, the head mask and the skin surface, with the voxels placed by `map`.
fn locate_head<'a>(
    vol: &'a Volume,
    map: VoxelMap<'a>,
    opts: &DefaceOptions,
) -> Result<LocatedHead<'a>, Error> {
    locate_head_at(vol, map, opts, Phase::Centred)
}

/// As [`locate_head`], on the working grid placed as `phase` says.
fn locate_head_at<'a>(
    vol: &'a Volume,
    map: VoxelMap<'a>,
    opts: &DefaceOptions,
    phase: Phase,
) -> Result<LocatedHead<'a>, Error> {
    let file = vol.path().display().to_string();
    let mut timings = Timings::default();

    let t = Instant::now();
    let img = WorkingImage::from_volume_at(vol, &map, opts.working_mm, phase);
    timings.resample = ms(t);
    let modality = match opts.modality.unwrap_or(vol.modality) {
        Modality::Unknown => guess_modality(&img),
        m => m,
    };

    let t = Instant::now();
    let head = HeadMask::find(&img, modality).ok_or_else(|| Error::NoHead {
        file: file.clone(),
        detail: "no tissue above the background".into(),
    })?;
    let cell_ml = img.grid.spacing.powi(3) / 1000.0;
    let head_ml = head.mask.count() as f64 * cell_ml;
    if head_ml < 500.0 {
        return Err(Error::NoHead {
            file,
            detail: format!("largest object is {head_ml:.0} ml"),
        });
    }
    timings.head = ms(t);

    let t = Instant::now();
    let surface = SubjectSurface::new(&head, img.grid, &img.in_fov);
    timings.fit = ms(t);
    Ok(LocatedHead {
        map,
        modality,
        img,
        head,
        surface,
        timings,
    })
}

/// The template fitted to a located head; the fit's quality is not judged here
/// ([`check_fit`]).
fn fit_head<'a>(vol: &Volume, mut located: LocatedHead<'a>) -> Result<FittedHead<'a>, Error> {
    let t = Instant::now();
    let fit = registration::fit(Template::embedded(), &located.head, &located.surface).ok_or_else(
        || Error::HeadFitFailed {
            file: vol.path().display().to_string(),
            detail: "no head surface".into(),
        },
    )?;
    located.timings.fit += ms(t);
    Ok(FittedHead { located, fit })
}

/// A head the template does not fit as the header places it (or fits only loosely), fitted
/// with its axes turned instead: one of the 23 other quarter-turn orientations about the centre
/// of the field of view. Every orientation is ranked by a short search from the upright start
/// on `header`'s skin surface, looked at through each turn ([`registration::rough_costs`]);
/// `back` is the way from the world `header` lies in to the header's. Unless the header's
/// orientation ranks first, the [`TURNS_FITTED`] best are placed and fitted in full, and the
/// closest is taken if it fits closely ([`TURNED_FIT_MAX_MM`]), closer than `header`
/// ([`closer`]) and mostly in view ([`TURNED_FIT_MIN_IN_VIEW`]). Returns it with the way back
/// from its world to the header's, the axis codes (nibabel's) that the header would have had
/// to give, and the time the search took (ms).
///
/// Why: a header can be wrong while the voxels are a whole head (a NIfTI without qform and
/// sform whose voxels are not stored as RAS, a volume flipped by a converter). The face is
/// then where the voxels show it, and the masks, which are on the voxel grid, are right for
/// the file as it is. Only quarter turns are tried: the template fit itself takes obliques,
/// and a mirrored head (an odd number of flips) fits as well as the true one, since faces are
/// close to symmetric.
fn turned_head<'a>(
    vol: &'a Volume,
    opts: &DefaceOptions,
    header: &FittedHead,
    back: Option<Matrix4<f64>>,
) -> Option<(FittedHead<'a>, Matrix4<f64>, String, f64)> {
    let t = Instant::now();
    if vol.slice_positions.is_some() {
        // an uneven stack's slice positions are along the header's axis
        return None;
    }
    let as_stored = vol.voxel_map()?;
    let about = |turn: Matrix4<f64>| about_centre(vol, &as_stored, turn);
    let placed = |turn: Matrix4<f64>| {
        VoxelMap::new(&defacer_volume::Affine(about(turn) * vol.affine.0), None)
            .and_then(|map| locate_head(vol, map, opts).ok())
    };
    let template = Template::embedded();
    let turns = quarter_turns();
    let located = &header.located;
    let mut ranked: Vec<(f64, usize)> = registration::rough_costs(
        template,
        &located.head,
        &located.surface,
        // from the world `header` lies in, back to the header's, then turned
        &turns
            .iter()
            .map(|&t| about(t) * back.unwrap_or_else(Matrix4::identity))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .enumerate()
    .filter_map(|(n, c)| c.map(|c| (c, n)))
    .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let header = &header.fit;
    let mut best: Option<(FittedHead, Matrix4<f64>)> = None;
    // the orientations that rank above the header's (index 0, the identity)
    for &(_, n) in ranked.iter().take_while(|r| r.1 != 0).take(TURNS_FITTED) {
        let Some(fitted) = placed(turns[n]).and_then(|l| fit_head(vol, l).ok()) else {
            continue;
        };
        let f = &fitted.fit;
        let close = check_fit(f, opts).is_ok()
            && f.mean_distance_mm <= TURNED_FIT_MAX_MM.min(opts.max_fit_distance_mm)
            && closer(f, header)
            && f.in_fov_fraction >= TURNED_FIT_MIN_IN_VIEW;
        if close
            && best
                .as_ref()
                .is_none_or(|(b, _)| f.mean_distance_mm < b.fit.mean_distance_mm)
        {
            // a rotation's inverse is its transpose
            best = Some((fitted, about(turns[n].transpose())));
        }
    }
    best.map(|(b, back)| {
        let codes = b.located.map.affine().orientation_codes();
        (b, back, codes, ms(t))
    })
}

/// Whether a fit that passes is loose enough for the header to be doubted: farther from the
/// skin than [`TURN_SEARCH_ABOVE_MM`], or than [`PARTIAL_TURN_SEARCH_ABOVE_MM`] with less than
/// [`PARTIAL_IN_VIEW`] of the template in view. Heads whose headers are right fit at 1.5–2.5 mm
/// (noisy, ghosted or wrapped copies up to 3.0); a part of a head fits more orientations than a
/// whole one, and a header turned wrongly passed at 2.5–3.0 mm on heads with the top 35–50 mm
/// or the lower face out of view: the InVesalius CT without its top, its header turned or
/// mirrored (eyes and nose left on four of six copies), the T2 slab upside down (the removal
/// 2.8 mm from the frontal pole). Partial heads with right headers fit at 1.6–1.9 mm.
fn loose(fit: &HeadFit) -> bool {
    fit.mean_distance_mm > TURN_SEARCH_ABOVE_MM
        || (fit.in_fov_fraction < PARTIAL_IN_VIEW
            && fit.mean_distance_mm > PARTIAL_TURN_SEARCH_ABOVE_MM)
}

/// See [`loose`] (mm).
const TURN_SEARCH_ABOVE_MM: f64 = 2.8;

/// See [`loose`] (mm).
const PARTIAL_TURN_SEARCH_ABOVE_MM: f64 = 2.0;

/// See [`loose`]: the share of the template's surface in view below which a head is partial.
const PARTIAL_IN_VIEW: f64 = 0.7;

/// How many of the best-ranked turned orientations are fitted in full: the right one ranked
/// third on a head whose top was out of view (the ranking starts from the top of the head).
const TURNS_FITTED: usize = 3;

/// A head fitted only with its axes turned from the header's must fit at least this closely
/// (mm, mean distance to the skin): the heads whose headers are right fit at 1.5–2.9 mm, the
/// same heads turned wrongly at 4.2 mm or more.
const TURNED_FIT_MAX_MM: f64 = 3.0;

/// ... and this much closer than as the header places it (mm).
const TURNED_FIT_GAIN_MM: f64 = 1.0;

/// ... or closer by this share ...
const TURNED_FIT_GAIN_SHARE: f64 = 0.3;

/// ... or closer by this much (mm) with this share of its surface within 5 mm of the skin.
/// Every turned fit accepted on the test heads' copies had 0.96–0.99 within 5 mm, and every
/// wrong orientation fitted in full at most 0.92 (at 2.3 mm, a head cropped below the nose).
const TURNED_FIT_CLOSE_GAIN_MM: f64 = 0.5;
const TURNED_FIT_CLOSE_INLIERS: f64 = 0.95;

/// Whether the turned fit `f` is enough closer to the skin than the `header`'s.
fn closer(f: &HeadFit, header: &HeadFit) -> bool {
    let gain = header.mean_distance_mm - f.mean_distance_mm;
    gain >= TURNED_FIT_GAIN_MM
        || gain >= TURNED_FIT_GAIN_SHARE * header.mean_distance_mm
        || (gain >= TURNED_FIT_CLOSE_GAIN_MM && f.inlier_fraction >= TURNED_FIT_CLOSE_INLIERS)
}

/// ... and have at least this share of the template's surface in view: a part of a head (the
/// top of it alone) can fit closely in more than one orientation.
const TURNED_FIT_MIN_IN_VIEW: f64 = 0.5;

/// The 24 rotations of the axes by quarter turns (the identity first), as affine matrices.
fn quarter_turns() -> Vec<Matrix4<f64>> {
    let mut turns = Vec::new();
    for perm in [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [0, 2, 1],
        [2, 1, 0],
        [1, 0, 2],
    ] {
        for signs in 0..8u8 {
            let mut m = Matrix4::zeros();
            m[(3, 3)] = 1.0;
            for (row, &col) in perm.iter().enumerate() {
                m[(row, col)] = if signs >> row & 1 == 1 { -1.0 } else { 1.0 };
            }
            if m.fixed_view::<3, 3>(0, 0).determinant() > 0.0 {
                turns.push(m);
            }
        }
    }
    turns
}

/// [`regions`], and where no skull is found there, [`regions`] again on a working grid moved
/// by half a cell ([`Phase::HalfCell`]) with the same fit; the second is taken if it finds the
/// skull.
///
/// Why: on thick slices the MRI skull's dark band is a cell or two wide, and whether its
/// ring closes at the temporal bone and the vertex can hinge on where the cells fall. The
/// Siemens 2-D T1 (4.8 mm slices) cut 30 mm at the top lost its skull on one grid and kept
/// it on the grid moved by half a millimetre (cutting one more row flips it), and without
/// the skull the brain is kept by the template alone, 3 mm farther: one eye was then left.
/// The fit is in world mm and does not depend on the grid; only the head mask, the skin
/// surface and what follows are made again, and only for heads whose skull is not found.
fn regions_traced<'a>(
    vol: &'a Volume,
    opts: &DefaceOptions,
    fitted: FittedHead<'a>,
    t_all: Instant,
) -> Result<WorkingPlan<'a>, Error> {
    let (map, fit) = (fitted.located.map, fitted.fit);
    let first = regions(vol, opts, fitted, t_all);
    if first.as_ref().is_ok_and(|plan| plan.skull.found()) {
        return first;
    }
    let second = locate_head_at(vol, map, opts, Phase::HalfCell)
        .and_then(|located| regions(vol, opts, FittedHead { located, fit }, t_all));
    match (first, second) {
        (first, Ok(mut second)) if second.skull.found() => {
            // the first try's time is the plan's as well
            if let Ok(first) = first {
                let (a, b) = (&mut second.timings, &first.timings);
                a.resample += b.resample;
                a.head += b.head;
                a.fit += b.fit;
                a.regions += b.regions;
            }
            Ok(second)
        }
        (first, _) => first,
    }
}

/// The plan's second half on the working grid: template labels, skull, brain and face.
fn regions<'a>(
    vol: &'a Volume,
    opts: &DefaceOptions,
    fitted: FittedHead<'a>,
    t_all: Instant,
) -> Result<WorkingPlan<'a>, Error> {
    let file = vol.path().display().to_string();
    let FittedHead {
        located:
            LocatedHead {
                map,
                modality,
                img,
                head,
                surface,
                mut timings,
            },
        fit,
    } = fitted;
    let template = Template::embedded();
    let t = Instant::now();
    let inv = fit
        .matrix
        .try_inverse()
        .ok_or_else(|| Error::HeadFitFailed {
            file: file.clone(),
            detail: "singular transform".into(),
        })?;
    let labels: Field<u8> = img.grid.build(|w| {
        let p = inv * Vector4::new(w[0], w[1], w[2], 1.0);
        template.labels_at([p[0], p[1], p[2]])
    });
    let template_brain = labels.map(|l| l & label::BRAIN != 0);
    let in_view = surface.air_in_view(&head.mask, &img.in_fov);
    let skull = SkullSurface::find(&img, &in_view, modality, &head.mask, &template_brain);
    // A bare (skull-stripped) brain fits a template shrunk as for a child's head. A child's
    // head has a skull around its brain, or at least skin that the smooth template lies on
    // closely; a brain's gyri keep it off (Colin27's brain: 3.6 mm; the heads scaled to 0.75
    // and 0.85 whose thinner skull is not found: 1.4–2.4 mm).
    if fit.small_head()
        && modality != Modality::Ct
        && !skull.found()
        && fit.mean_distance_mm > SMALL_HEAD_WITHOUT_SKULL_MAX_FIT_MM
    {
        return Err(Error::HeadFitFailed {
            file: file.clone(),
            detail: format!(
                "the head is smaller than an adult's, no skull was found around its brain and \
                 the template lies {:.1} mm from its surface (a skull-stripped brain?)",
                fit.mean_distance_mm
            ),
        });
    }
    // Where CT shows the template's brain lying outside the cranium (a fit a few mm off puts
    // it in the orbits), that part is not brain.
    let template_brain = match &skull.exterior {
        Some(ext) => template_brain.zip(ext, |b, e| b && !e),
        None => template_brain,
    };
    // The template's eyes inside or next to the space the skull encloses: the template lies
    // where the subject's brain is, and its brain where the subject's is not.
    if let Some(interior) = skull
        .intracranial
        .as_ref()
        .or(skull.unconfirmed_interior.as_ref())
    {
        let near = face::eyes_to(
            template,
            &fit.matrix,
            img.grid,
            interior,
            EYES_OFF_CRANIUM_MM,
        );
        if near.len() == 2 && near.iter().all(Option::is_some) {
            let d: Vec<String> = near.iter().flatten().map(|d| format!("{d:.1}")).collect();
            return Err(Error::HeadFitFailed {
                file: file.clone(),
                detail: format!(
                    "the template's eyes lie {} mm from the space the skull encloses, less \
                     than {EYES_OFF_CRANIUM_MM} mm: the template is misplaced",
                    d.join(" / ")
                ),
            });
        }
    }
    // Without the subject's skull the brain is known only from the template: it is kept
    // farther off (see [`TEMPLATE_BRAIN_ALLOWANCE_MM`]).
    let allowance = if skull.intracranial.is_none() {
        TEMPLATE_BRAIN_ALLOWANCE_MM
    } else {
        0.0
    };
    let brain = ProtectedBrain::new(
        &template_brain,
        skull
            .intracranial
            .as_ref()
            .or(skull.unconfirmed_interior.as_ref()),
        opts.margin_mm + allowance,
        img.grid.spacing,
    );
    let behind_face = match (&skull.exterior, &skull.bone) {
        (Some(ext), Some(bone)) => Some(behind_face(ext, bone, &img, template, &fit.matrix)),
        _ => None,
    };
    let region = FaceRegion::new(
        &labels,
        &brain,
        &img.in_fov,
        behind_face.as_ref(),
        img.grid.spacing,
        opts.ears,
    );
    timings.regions = ms(t);
    Ok(WorkingPlan {
        vol,
        map,
        opts: opts.clone(),
        started: t_all,
        modality,
        img,
        head,
        fit,
        labels,
        to_template: inv,
        skull,
        brain,
        region,
        timings,
        back: None,
        wrong_header: None,
    })
}

fn finish(plan: &WorkingPlan, remove_bone: bool) -> DefaceMask {
    let WorkingPlan {
        vol,
        map,
        opts,
        started: t_all,
        modality,
        img,
        head,
        fit,
        labels,
        to_template,
        skull,
        brain,
        region,
        ..
    } = plan;
    let (vol, modality, t_all) = (*vol, *modality, *t_all);
    let mut warnings = Vec::new();
    if let Some(codes) = &plan.wrong_header {
        warnings.push(format!(
            "the head does not lie as the header says ({}): it fits only with its voxel axes \
             read as {codes} (or that mirrored left to right: a face does not tell the sides \
             apart). The face was removed where the voxels show it, but the header's \
             orientation is probably wrong: check the QC pictures",
            vol.affine.orientation_codes()
        ));
    }
    let mut timings = plan.timings.clone();
    if fit.small_head() {
        let s = [6, 7, 8].map(|k| fit.params[k].exp());
        warnings.push(format!(
            "the head is smaller than an adult's (template scaled to {:.2} / {:.2} / {:.2}): \
             fitted with the range for children's heads; check the QC pictures",
            s[0], s[1], s[2]
        ));
    }
    let small = fit.axes_at_smallest_scale();
    if small >= 2 {
        warnings.push(format!(
            "the head is as small as the template fit allows on {small} axes: the template may \
             be misplaced and part of the face left; check the QC pictures"
        ));
    }
    if !skull.found() {
        let why = skull.problem.as_deref().unwrap_or("no bone model");
        let bone = if remove_bone {
            ""
        } else {
            ", and facial bone is removed with the soft tissue"
        };
        warnings.push(format!(
            "bone is not identified ({why}): the brain is placed by the template alone and \
             kept {TEMPLATE_BRAIN_ALLOWANCE_MM} mm farther than the margin{bone}"
        ));
    }

    let t = Instant::now();
    let keep_bone = skull.found() && !remove_bone;
    // CT bone is bone by its density; MRI's dark band may take in the dark vitreous
    let globes = (modality != Modality::Ct && skull.found())
        .then(|| face::globes(Template::embedded(), &fit.matrix, img.grid));
    let native = to_native(
        vol,
        map,
        img,
        labels,
        &head.mask,
        region,
        brain,
        skull,
        globes.as_ref(),
        opts.ears,
        keep_bone,
        to_template,
    );
    timings.native = ms(t);

    let removed_ml = volume_ml(map, &native.face);
    let ears_ml = native.ears.as_ref().map_or(0.0, |e| volume_ml(map, e));
    let min_distance = min_distance_to_brain(region, brain, opts.ears)
        .into_iter()
        .chain(native.nearest_to_brain_mm)
        .min_by(f64::total_cmp);
    if removed_ml < 1.0 {
        warnings.push("the face region lies outside the field of view: nothing to remove".into());
    }
    warnings.extend(kept_eyes(map, fit, &native, opts.margin_mm));

    let air_physical = match modality {
        Modality::Ct => -1000.0,
        _ => background_level(img, &head.mask),
    };
    let (lo, hi) = dtype_range(vol.datatype());
    let fill_value_stored = vol.scaling.to_stored(air_physical).clamp(lo, hi);
    timings.total = ms(t_all);
    // the report's world is the header's, also where the plan turned the head
    let fit_in_header = match &plan.back {
        Some(back) => back * fit.matrix,
        None => fit.matrix,
    };

    let report = MaskReport {
        modality,
        removed_ml,
        ears_ml,
        min_distance_to_brain_mm: min_distance,
        fit_mean_distance_mm: fit.mean_distance_mm,
        fit_inlier_fraction: fit.inlier_fraction,
        fit_in_fov_fraction: fit.in_fov_fraction,
        small_head: fit.small_head(),
        fit_matrix: std::array::from_fn(|r| std::array::from_fn(|c| fit_in_header[(r, c)])),
        head_threshold: head.threshold,
        turned_header: plan.wrong_header.as_ref().map(|codes| {
            let a = map.affine().0;
            TurnedHeader {
                axis_codes: codes.clone(),
                affine: std::array::from_fn(|r| std::array::from_fn(|c| a[(r, c)])),
            }
        }),
        warnings,
        timings_ms: timings,
    };
    DefaceMask {
        face: native.face,
        ears: native.ears,
        protected: native.protected,
        head: native.head,
        template_head: native.template_head,
        bone: native.bone,
        intracranial: native.intracranial,
        fill_value_stored,
        air_physical,
        report,
    }
}

/// How much farther (mm) than the margin the removal is kept from the fitted template's brain
/// where the subject's skull is not found (an MRI whose dark band is not traced, see
/// [`SkullSurface::problem`]). With the skull, the space it encloses is protected as well, and
/// that holds the subject's own brain; without it, the brain is only where a template fitted to
/// the skin puts it, and a brain may reach past the template's. The frontal pole, the part of
/// the brain nearest the face, lay 1.0–6.1 mm inside the fitted template's brain on the seven
/// real heads, but 2.5 mm outside it on the Philips T1 under a strong bias field (darker by a
/// factor of 3.3 from back to front; before the head mask allowed for such fields, its skull
/// was then not found), and the margin was short by 0.3 mm. With the skull taken as not found on the five MRI test volumes, 3 mm held every
/// landmark; 5 mm left both eyes of the 2-D Siemens T1 (supine) in place.
const TEMPLATE_BRAIN_ALLOWANCE_MM: f64 = 3.0;

/// The template's eyes, fitted, lie farther than this (mm) from the space the subject's skull
/// encloses (found, or traced and refused: [`SkullSurface::unconfirmed_interior`]); both eyes
/// nearer, and the fit is refused. On the test heads they lie 16–22 mm from it. A slab of the
/// T2 head cut below the frontal poles (the eyes out of view, a band of cranium that fits at
/// many heights) fitted 20 mm too high at 1.6 mm from the skin: its eyes lay 4 and 7 mm from
/// the traced interior, its brain 20 mm above the subject's, and the removal came within
/// 3 mm of the frontal pole.
const EYES_OFF_CRANIUM_MM: f64 = 10.0;

/// A head fitted as smaller than an adult's, with no skull found, is taken for a bare brain
/// when the template lies farther than this from its surface on average.
const SMALL_HEAD_WITHOUT_SKULL_MAX_FIT_MM: f64 = 2.8;

/// How far (template mm) behind the fitted face region the facial soft tissue may reach.
const FACE_DEPTH_MM: f64 = 20.0;
/// The reach back is for the orbits' contents: within this distance (template mm) of the
/// midline, inside the lateral orbital rims. Further out lie the temporal muscles, in front of
/// the temporal poles.
const ORBITS_HALF_WIDTH_MM: f64 = 48.0;

/// Exterior soft tissue (CT: reached from the air without crossing bone) lying at most
/// [`FACE_DEPTH_MM`] behind the fitted face region along the template's forward axis, with no
/// bone on the way to it, between the lateral orbital rims. A fit a few mm off leaves the face
/// region short of the globes and lids; the facial bone, not the template, is where the face
/// ends. The bone on the way keeps out what lies behind the facial skeleton.
fn behind_face(
    exterior: &Field<bool>,
    bone: &Field<bool>,
    img: &WorkingImage,
    template: &Template,
    to_subject: &nalgebra::Matrix4<f64>,
) -> Field<bool> {
    const STEP_MM: f64 = 2.0;
    let steps = (FACE_DEPTH_MM / STEP_MM) as usize;
    let Some(to_template) = to_subject.try_inverse() else {
        return exterior.map(|_| false);
    };
    let forward = to_subject * Vector4::new(0.0, STEP_MM, 0.0, 0.0);
    Field::from_cells(exterior.dims, |c| {
        if !exterior.data[c] {
            return false;
        }
        let [i, j, k] = exterior.coords(c);
        let w = img.grid.world(i, j, k);
        let t = to_template * Vector4::new(w[0], w[1], w[2], 1.0);
        if t[0].abs() > ORBITS_HALF_WIDTH_MM {
            return false;
        }
        for s in 1..=steps {
            let at = [0, 1, 2].map(|a| w[a] + forward[a] * s as f64);
            if img.grid.nearest(at).is_some_and(|n| bone.data[n]) {
                return false;
            }
            let p = to_template * Vector4::new(at[0], at[1], at[2], 1.0);
            if template.labels_at([p[0], p[1], p[2]]) & label::FACE != 0 {
                return true;
            }
        }
        false
    })
}

/// A warning for each eye of which the removal keeps most: more than half of the points in view
/// within [`EYE_CORE_MM`] of its centre, where the fitted template puts it (an eye at least half
/// in view). The brain's margin wins over the face, and the top of a globe lies within 10 mm of
/// the orbital roof: on thick slices (the Philips head in 5 mm axial slabs, whose slab through
/// the eye holds the frontal lobe too) or a head pitched chin-down the margin may reach the
/// eye's centre. The removal stays as it is (the margin is the user's); the report says that an
/// eye may remain, which a render of the skin does not show a reviewer. On the test heads,
/// whose eyes are removed, at most a fifth of that core is kept (the top of the globe, within
/// the margin); the template's eye lies up to a few millimetres from the subject's, so the
/// warning asks for a look at the pictures rather than saying the eye is there.
fn kept_eyes(map: &VoxelMap, fit: &HeadFit, native: &NativeMasks, margin_mm: f64) -> Vec<String> {
    let (nx, ny, nz) = native.face.dim();
    let voxel_at = |w: [f64; 3]| {
        let v = map.to_voxel(w).map(f64::round);
        let inside = (0..3).all(|a| v[a] >= 0.0 && v[a] < [nx, ny, nz][a] as f64);
        inside.then(|| v.map(|x| x as usize))
    };
    // points 1 mm apart, whatever the voxels' size
    let r = EYE_CORE_MM as i32;
    let offsets: Vec<[f64; 3]> = (-r..=r)
        .flat_map(|z| (-r..=r).flat_map(move |y| (-r..=r).map(move |x| [x, y, z])))
        .filter(|[x, y, z]| x * x + y * y + z * z <= r * r)
        .map(|p| p.map(f64::from))
        .collect();
    face::named_eyes(Template::embedded(), &fit.matrix)
        .into_iter()
        .filter_map(|(side, w)| {
            let (mut seen, mut kept, mut protected) = (0usize, 0usize, 0usize);
            for d in &offsets {
                let Some(ijk) = voxel_at([w[0] + d[0], w[1] + d[1], w[2] + d[2]]) else {
                    continue;
                };
                seen += 1;
                if !native.face[ijk] {
                    kept += 1;
                    protected += native.protected[ijk] as usize;
                }
            }
            // an eye mostly out of view is not judged by the few points of it in view
            if 2 * seen < offsets.len() || 2 * kept <= seen {
                return None;
            }
            let why = if 2 * protected >= kept {
                format!("most of it within the {margin_mm} mm margin kept around the brain")
            } else {
                "most of it outside the face region".to_string()
            };
            Some(format!(
                "the {side} eye may remain: the removal keeps {:.0} % of the globe within \
                 {EYE_CORE_MM} mm of its centre as the fitted template places it ({why}); \
                 check the QC pictures",
                100.0 * kept as f64 / seen as f64
            ))
        })
        .collect()
}

/// Radius (mm) of the core of a globe (about 12 mm in radius) looked at by [`kept_eyes`].
const EYE_CORE_MM: f64 = 8.0;

fn check_fit(fit: &HeadFit, opts: &DefaceOptions) -> Result<(), String> {
    if fit.in_fov_fraction < 0.2 {
        return Err(format!(
            "only {:.0}% of the head template is in view",
            fit.in_fov_fraction * 100.0
        ));
    }
    if fit.mean_distance_mm > opts.max_fit_distance_mm || fit.inlier_fraction < 0.7 {
        return Err(format!(
            "template skin is {:.1} mm from the subject's on average, {:.0}% within 5 mm",
            fit.mean_distance_mm,
            fit.inlier_fraction * 100.0
        ));
    }
    Ok(())
}

/// The smallest distance from the removal's cells to the brain, for the cells whose voxels are
/// not looked at one by one ([`ProtectedBrain::near_margin`]): less half a diagonal for the
/// voxel within its cell and half for the point of the brain within its own.
fn min_distance_to_brain(region: &FaceRegion, brain: &ProtectedBrain, ears: bool) -> Option<f64> {
    brain
        .distance_to((0..region.face.data.len()).filter(|&c| {
            (region.face.data[c]
                || region.edge.data[c]
                || region.ear_edge.data[c]
                || (ears && region.ears.data[c]))
                && !brain.near_margin(c)
        }))
        .map(|d| (d - 2.0 * brain.half_diagonal()).max(0.0))
}

/// Air level of an MRI: the median of the field of view well outside the head.
fn background_level(img: &WorkingImage, head: &Field<bool>) -> f64 {
    let near = distance::dilate(head, 6.0, img.grid.spacing);
    let air = order::Ranks::new(&img.values.data, |c, _| img.in_fov.data[c] && !near.data[c]);
    air.nth(air.len() / 2).map_or(0.0, |m| m as f64)
}

/// Volume in ml of the voxels set in `mask` (slices of an uneven stack stand for different
/// thicknesses).
fn volume_ml(map: &VoxelMap, mask: &Array3<bool>) -> f64 {
    mask.axis_iter(Axis(2))
        .enumerate()
        .map(|(k, slice)| slice.iter().filter(|&&b| b).count() as f64 * map.voxel_ml(k))
        .sum()
}

struct NativeMasks {
    face: Array3<bool>,
    ears: Option<Array3<bool>>,
    protected: Array3<bool>,
    head: Array3<bool>,
    template_head: Array3<bool>,
    bone: Option<Array3<bool>>,
    intracranial: Option<Array3<bool>>,
    /// The smallest [`ProtectedBrain::distance_among`] of the removed voxels near the margin.
    nearest_to_brain_mm: Option<f64>,
}

/// The neighbours of index `at` along an axis of `n` voxels (clamped at its ends) with their
/// binomial weights 1-2-1.
#[inline(always)]
fn binomial_taps(at: usize, n: usize) -> [(usize, f32); 3] {
    [
        (at.saturating_sub(1), 1.0),
        (at, 2.0),
        ((at + 1).min(n - 1), 1.0),
    ]
}

/// The 3×3×3 binomial average (weights 1-2-1 per axis) around a native voxel, edges clamped;
/// `read(i, j, k)` is the voxel's value.
fn binomial(
    read: impl Fn(usize, usize, usize) -> f32,
    [nx, ny, nz]: [usize; 3],
    [i, j, k]: [usize; 3],
) -> f32 {
    let mut sum = 0.0f32;
    for (kk, wk) in binomial_taps(k, nz) {
        for (jj, wj) in binomial_taps(j, ny) {
            // the weights' products are small whole numbers, exact in f32
            let w = wk * wj;
            for (ii, wi) in binomial_taps(i, nx) {
                sum += w * wi * read(ii, jj, kk);
            }
        }
    }
    sum / 64.0
}

/// The native values of a slice and of its neighbours, converted from the volume a row at a
/// time where bone is judged (around the skull): the bone checks read them at native
/// resolution, and a converted copy of the whole volume would be the largest buffer of a
/// mask. Kept per worker and reused from slice to slice.
struct SliceRows {
    dims: [usize; 3],
    /// The slice whose rows are held (its neighbours at planes 0 and 2).
    k: usize,
    values: Vec<f32>,
    /// Whether row `plane · ny + j` is converted.
    ready: Vec<bool>,
}

impl SliceRows {
    fn new([nx, ny, nz]: [usize; 3]) -> Self {
        SliceRows {
            dims: [nx, ny, nz],
            k: 0,
            values: vec![0.0; 3 * nx * ny],
            ready: vec![false; 3 * ny],
        }
    }

    /// Starts on slice `k`: nothing converted yet.
    fn start(&mut self, k: usize) {
        self.k = k;
        self.ready.fill(false);
    }

    /// Converts rows `j − 1` to `j + 1` of the slice and its neighbours (those that exist),
    /// all that [`binomial`] reads around row `j`.
    fn convert_around(&mut self, native: &NativeValues, j: usize) {
        let [nx, ny, nz] = self.dims;
        let k = self.k;
        for p in 0..3 {
            if (p == 0 && k == 0) || (p == 2 && k + 1 >= nz) {
                continue;
            }
            let kk = k + p - 1;
            for jj in j.saturating_sub(1)..(j + 2).min(ny) {
                let r = p * ny + jj;
                if !self.ready[r] {
                    native.read_run(nx * (jj + ny * kk), &mut self.values[r * nx..(r + 1) * nx]);
                    self.ready[r] = true;
                }
            }
        }
    }

    /// [`binomial`] around voxels `first..first + out.len()` of row `j` of the held slice, its
    /// rows converted ([`Self::convert_around`]). The same numbers as voxel by voxel, to the
    /// bit: every voxel's sum takes its 27 terms in the same order, but the interior of the run
    /// is summed a term at a time across the voxels, in loops the compiler vectorises.
    fn binomial_run(&self, j: usize, first: usize, out: &mut [f32]) {
        let [nx, ny, nz] = self.dims;
        let k = self.k;
        // voxels with both neighbours along the row (the two ends clamp theirs)
        let lo = first.max(1);
        let hi = (first + out.len()).min(nx.saturating_sub(1));
        if lo < hi {
            let inner = &mut out[lo - first..hi - first];
            inner.fill(0.0);
            for (kk, wk) in binomial_taps(k, nz) {
                for (jj, wj) in binomial_taps(j, ny) {
                    let w = wk * wj;
                    let at = (kk + 1 - k) * nx * ny + jj * nx;
                    let row = &self.values[at..at + nx];
                    for (shift, wi) in [(0, 1.0f32), (1, 2.0), (2, 1.0)] {
                        let f = w * wi;
                        let from = &row[lo + shift - 1..hi + shift - 1];
                        for (o, &v) in inner.iter_mut().zip(from) {
                            *o += f * v;
                        }
                    }
                }
            }
            inner.iter_mut().for_each(|o| *o /= 64.0);
        }
        for (t, o) in out.iter_mut().enumerate() {
            let i = first + t;
            if i < lo || i >= hi {
                *o = binomial(|i, j, k| self.get(i, j, k), [nx, ny, nz], [i, j, k]);
            }
        }
    }

    /// The value of voxel (`i`, `j`, `k`), `k` within one slice of the held one, its row
    /// converted.
    #[inline(always)]
    fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        let [nx, ny, _] = self.dims;
        self.values[(k + 1 - self.k) * nx * ny + j * nx + i]
    }
}

/// World positions of the native voxels of one row (`j`, `k`), computed as
/// [`VoxelMap::to_world`] computes them, to the bit: the affine's columns times the index,
/// summed in column order (which is how nalgebra multiplies), slice `k` through the volume's
/// slice positions. The products that do not change along the row are taken once per row, so
/// every voxel lands on the same nearest working cell as through `to_world`, exact ties
/// included, at a fraction of the cost.
struct NativeRows<'a> {
    affine: [[f64; 4]; 3],
    slices: Option<&'a defacer_volume::SlicePositions>,
}

impl<'a> NativeRows<'a> {
    /// The rows of `vol` placed by `map` (the volume's own, or one that turns it).
    fn new(vol: &'a Volume, map: &VoxelMap) -> Self {
        let m = &map.affine().0;
        NativeRows {
            affine: std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)])),
            slices: vol.slice_positions.as_ref(),
        }
    }

    /// Calls `f(i, world)` for voxels `0..nx` of row (`j`, `k`).
    #[inline]
    #[cfg(test)]
    fn for_row(&self, nx: usize, j: usize, k: usize, mut f: impl FnMut(usize, [f64; 3])) {
        let (pj, pk) = self.row_offsets(j, k);
        for i in 0..nx {
            f(i, [0, 1, 2].map(|r| self.coordinate(r, i, pj, pk)));
        }
    }

    /// The products of row (`j`, `k`) that every voxel of it shares.
    #[inline]
    fn row_offsets(&self, j: usize, k: usize) -> ([f64; 3], [f64; 3]) {
        let k = k as f64;
        let kn = self.slices.map_or(k, |s| s.nominal(k));
        let a = &self.affine;
        (
            [0, 1, 2].map(|r| a[r][1] * j as f64),
            [0, 1, 2].map(|r| a[r][2] * kn),
        )
    }

    /// World coordinate `r` of voxel `i` of the row with offsets `pj`, `pk`.
    #[inline(always)]
    fn coordinate(&self, r: usize, i: usize, pj: [f64; 3], pk: [f64; 3]) -> f64 {
        self.affine[r][0] * i as f64 + pj[r] + pk[r] + self.affine[r][3]
    }

    /// Calls `f(i, cell)` for voxels `0..nx` of row (`j`, `k`), `cell` the index in `order`
    /// (see [`CellOrder`]) of `grid.nearest(world)`. A world
    /// coordinate that does not change along the row (two of them in an axis-aligned volume:
    /// `0 · i` adds the same zero for every `i`) is rounded to its cell once per row, which
    /// saves most of the divisions of this, the one per-voxel step of the mask.
    #[inline]
    fn for_row_nearest(
        &self,
        grid: &WorkingGrid,
        order: &CellOrder,
        nx: usize,
        j: usize,
        k: usize,
        mut f: impl FnMut(usize, Option<usize>),
    ) {
        let (pj, pk) = self.row_offsets(j, k);
        let along = |r: usize, i: usize| {
            grid.nearest_along(
                r,
                (self.coordinate(r, i, pj, pk) - grid.origin[r]) / grid.spacing,
            )
        };
        let mut varying = [false; 3];
        let mut fixed = [0usize; 3];
        for r in 0..3 {
            if self.affine[r][0] != 0.0 {
                varying[r] = true;
            } else if let Some(x) = along(r, 0) {
                fixed[r] = x;
            } else {
                // the whole row lies beyond the grid
                (0..nx).for_each(|i| f(i, None));
                return;
            }
        }
        // the cell of index 0 along the varying axes, and each axis's step between cells
        let mut ijk = fixed;
        for r in 0..3 {
            if varying[r] {
                ijk[r] = 0;
            }
        }
        let first = order.index(ijk);
        let stride = order.stride;
        // `along` for a chunk of the row at a time, axis by axis, in loops of arithmetic only,
        // which the compiler vectorises (their divisions are most of the cost of a voxel here);
        // -1 where the voxel's cell is beyond the grid
        const CHUNK: usize = 64;
        let mut index = [[0i32; CHUNK]; 3];
        for start in (0..nx).step_by(CHUNK) {
            let len = CHUNK.min(nx - start);
            for r in (0..3).filter(|&r| varying[r]) {
                let n = grid.dims[r] as i64 as f64;
                let [a0, a3] = [self.affine[r][0], self.affine[r][3]];
                let (o, s, pj) = (grid.origin[r], grid.spacing, pj[r]);
                let pk = pk[r];
                // `along`'s argument (`coordinate`, rounded as `WorkingGrid::nearest_along`
                // rounds)
                let at = |t: usize| (a0 * (start + t) as i32 as f64 + pj + pk + a3 - o) / s + 0.5;
                fill_monotone(&mut index[r][..len], n, &at);
            }
            // (the fixed axes' indices stay 0)
            let [xs, ys, zs] = &index;
            for (t, ((&x, &y), &z)) in xs[..len].iter().zip(ys).zip(zs).enumerate() {
                let inside = x >= 0 && y >= 0 && z >= 0;
                let cell = || {
                    first + stride[0] * x as usize + stride[1] * y as usize + stride[2] * z as usize
                };
                f(start + t, inside.then(cell));
            }
        }
    }
}

/// An order of the working grid's cells in memory whose fastest axis is the grid axis that moves
/// most along a native row, and whose next is the one that moves most along a native column.
///
/// Why: the native pass reads each voxel's cell, slice by native slice. In the grid's own
/// order a sagittal or coronal volume's slice crosses the grid's slowest axes, so every cell
/// it reads lies on a cache line of its own: a sagittal slice of the Philips series reads
/// 16k lines, 1 MB, for 32 kB of codes, and the native pass waited on those reads for most of
/// its time. In this order a native slice's cells lie together. An axial volume's order is the
/// grid's own.
struct CellOrder {
    /// The step in memory between neighbouring cells along each grid axis.
    stride: [usize; 3],
    /// The grid axes, fastest first.
    axes: [usize; 3],
    grid: WorkingGrid,
    /// Whether this is the grid's own order.
    own: bool,
}

impl CellOrder {
    /// The order for the native rows of `rows` on `grid`.
    fn along(rows: &NativeRows, grid: &WorkingGrid) -> Self {
        let a = &rows.affine;
        // the grid axis that moves most along native axis `c` (the row's, then the column's),
        // among those not taken yet
        let mut axes: Vec<usize> = Vec::with_capacity(3);
        for c in [0, 1] {
            let r = (0..3)
                .filter(|r| !axes.contains(r))
                .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()).then(y.cmp(&x)))
                .unwrap_or(0);
            axes.push(r);
        }
        let last = (0..3).find(|r| !axes.contains(r)).unwrap_or(2);
        axes.push(last);
        let axes = [axes[0], axes[1], axes[2]];
        let mut stride = [0usize; 3];
        let mut step = 1;
        for r in axes {
            stride[r] = step;
            step *= grid.dims[r];
        }
        CellOrder {
            stride,
            axes,
            grid: *grid,
            own: axes == [0, 1, 2],
        }
    }

    /// The grid's own index of the cell of index `o` in this order.
    #[inline]
    fn own_index(&self, o: usize) -> usize {
        if self.own {
            return o;
        }
        let [fast, mid, _] = self.axes;
        let mut ijk = [0usize; 3];
        let dims = self.grid.dims;
        ijk[fast] = o % dims[fast];
        let rest = o / dims[fast];
        ijk[mid] = rest % dims[mid];
        ijk[self.axes[2]] = rest / dims[mid];
        self.grid.cell(ijk)
    }

    /// The index in this order of cell (`x`, `y`, `z`).
    #[inline(always)]
    fn index(&self, [x, y, z]: [usize; 3]) -> usize {
        self.stride[0] * x + self.stride[1] * y + self.stride[2] * z
    }

    /// `values` (in the grid's own order) in this order.
    fn reorder<T: Copy + Default + Send + Sync>(&self, values: Vec<T>) -> Vec<T> {
        if self.own {
            return values;
        }
        let dims = self.grid.dims;
        let mut out = vec![T::default(); values.len()];
        // the inverse of `index`: each output position's cell
        let [fast, mid, slow] = self.axes;
        let plane = dims[mid] * dims[fast];
        out.par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(s, chunk)| {
                for (m, line) in chunk.chunks_mut(dims[fast].max(1)).enumerate() {
                    let mut ijk = [0usize; 3];
                    ijk[slow] = s;
                    ijk[mid] = m;
                    for (f, o) in line.iter_mut().enumerate() {
                        ijk[fast] = f;
                        *o = values[self.grid.cell(ijk)];
                    }
                }
            });
        out
    }
}

/// Fills `out[t]` with the cell index of `g(t)` along an axis of `n` cells (`g` rounded down,
/// -1 beyond the grid; the index converted through i32: a row is far shorter than 2³¹
/// voxels, so it is the same number), where `g` never turns back (non-decreasing or
/// non-increasing in `t`). Reads `g` at few points where the cell rarely changes.
///
/// Every step of the native pass's cell position is rounded monotonically, so the cell never
/// turns back along a row: where both ends of a stretch fall in the same cell (or beyond the
/// same end of the grid) so do all voxels between. Along an axis that barely moves with the
/// row (a slight obliquity, round-off in a header's direction cosines) the row is then
/// bisected down to its few changes instead of converted voxel by voxel; an axis that moves
/// with the row is converted at every voxel, in a loop the compiler vectorises.
#[inline(always)]
fn fill_monotone(out: &mut [i32], n: f64, g: &impl Fn(usize) -> f64) {
    let cell = |g: f64| if g >= 0.0 && g < n { g as i32 } else { -1 };
    // the cell, or which end of the grid the point lies beyond
    let class = |g: f64| if g >= n { -2 } else { cell(g) };
    let dense = |out: &mut [i32], start: usize| {
        for (t, o) in out.iter_mut().enumerate() {
            *o = cell(g(start + t));
        }
    };
    let len = out.len();
    if len == 0 {
        return;
    }
    let (first, last) = (class(g(0)), class(g(len - 1)));
    // changes at least this dense are cheaper read at every voxel than bisected
    if first >= 0 && last >= 0 && first.abs_diff(last) as usize * 8 > len {
        dense(out, 0);
        return;
    }
    // the stretch `start..start + out.len()`, its ends' classes known, halved until each
    // half holds one class or is short
    fn bisect(
        out: &mut [i32],
        start: usize,
        [first, last]: [i32; 2],
        class: &impl Fn(usize) -> i32,
        dense: &impl Fn(&mut [i32], usize),
    ) {
        let len = out.len();
        if first == last {
            out.fill(first.max(-1));
        } else if len <= 8 {
            dense(out, start);
        } else {
            let mid = len / 2;
            let (left, right) = out.split_at_mut(mid);
            let ends = [class(start + mid - 1), class(start + mid)];
            bisect(left, start, [first, ends[0]], class, dense);
            bisect(right, start + mid, [ends[1], last], class, dense);
        }
    }
    bisect(out, 0, [first, last], &|t| class(g(t)), &dense);
}

/// Maps the working-grid masks onto the native grid: each native voxel centre takes the value
/// of its nearest working cell. One pass, parallel over native slices, each voxel computed
/// independently (the result does not depend on the thread count); every mask is written in
/// that pass.
#[allow(clippy::too_many_arguments)]
fn to_native(
    vol: &Volume,
    map: &VoxelMap,
    img: &WorkingImage,
    labels: &Field<u8>,
    head: &Field<bool>,
    region: &FaceRegion,
    brain: &ProtectedBrain,
    skull: &SkullSurface,
    globes: Option<&Field<bool>>,
    ears: bool,
    keep_bone: bool,
    to_template: &Matrix4<f64>,
) -> NativeMasks {
    const FACE: u16 = 1;
    const EARS: u16 = 2;
    const PROTECTED: u16 = 4;
    const HEAD: u16 = 8;
    const TEMPLATE_HEAD: u16 = 16;
    const BONE: u16 = 32;
    const INTRACRANIAL: u16 = 64;
    // not a mask of its own: where no voxel is taken for bone
    const GLOBE: u16 = 128;
    // Nor are these: what a voxel of the cell must be looked at for beyond its cell's code. They
    // are gathered into the code so that the voxels of most cells (far from every edge, from
    // the brain and from bone) take one read of it and nothing else.
    // an edge of the face or ear label: the voxel takes the template's label at its own position
    const LABEL_EDGE: u16 = 256;
    // a protected cell that may hold voxels beyond the margin (`FaceRegion::protected_edge`)
    const PROTECTED_EDGE: u16 = 512;
    // a cell of the head whose voxels may be bone (`SkullSurface::may_hold_native_bone`)
    const MAY_BE_BONE: u16 = 1024;
    // an open cell near the margin: its voxels are measured to the brain (`surface_near`)
    const NEAR_BRAIN: u16 = 2048;
    let [nx, ny, nz, _] = vol.dims();
    let phys: Option<&NativeValues> = skull.found().then_some(&img.native);
    let mut cell: Vec<u16> = (0..labels.data.len())
        .into_par_iter()
        .map(|c| {
            let bit = |on: bool, b: u16| if on { b } else { 0 };
            bit(region.face.data[c], FACE)
                | bit(ears && region.ears.data[c], EARS)
                | bit(brain.protected.data[c], PROTECTED)
                | bit(head.data[c], HEAD)
                | bit(labels.data[c] & label::HEAD != 0, TEMPLATE_HEAD)
                | bit(
                    skull.intracranial.as_ref().is_some_and(|f| f.data[c]),
                    INTRACRANIAL,
                )
                | bit(globes.is_some_and(|g| g.data[c]), GLOBE)
                | bit(region.edge.data[c] || region.ear_edge.data[c], LABEL_EDGE)
                | bit(region.protected_edge.data[c], PROTECTED_EDGE)
                | bit(
                    phys.is_some() && head.data[c] && skull.may_hold_native_bone(c),
                    MAY_BE_BONE,
                )
        })
        .collect();
    // Bone is kept at native resolution, where it is sharp (`phys`, above).
    let grid = img.grid;
    let rows = NativeRows::new(vol, map);
    let bits = [
        FACE,
        EARS,
        PROTECTED,
        HEAD,
        TEMPLATE_HEAD,
        BONE,
        INTRACRANIAL,
    ];
    let wanted = [
        true,
        ears,
        true,
        true,
        true,
        skull.found(),
        skull.intracranial.is_some(),
    ];
    let mut masks: Vec<Option<Vec<bool>>> = wanted
        .iter()
        .map(|&w| w.then(|| vec![false; nx * ny * nz]))
        .collect();
    // one slab of every wanted mask per native slice
    let plane = nx * ny;
    let mut slabs: Vec<Vec<Option<&mut [bool]>>> = (0..nz).map(|_| Vec::new()).collect();
    for m in masks.iter_mut() {
        match m {
            Some(v) => {
                for (s, chunk) in slabs.iter_mut().zip(v.chunks_mut(plane)) {
                    s.push(Some(chunk));
                }
            }
            None => slabs.iter_mut().for_each(|s| s.push(None)),
        }
    }
    // the brain's surface near each open cell within reach of the margin
    let surface = brain.surface_near(&grid, |c| {
        cell[c] & (FACE | EARS | LABEL_EDGE | PROTECTED_EDGE) != 0
    });
    for &c in surface.keys() {
        cell[c] |= NEAR_BRAIN;
    }
    // the codes in the order the native slices read them
    let order = CellOrder::along(&rows, &grid);
    let cell = order.reorder(cell);
    let template = Template::embedded();
    // FACE or EARS (or neither) by the template's label at native voxel (i, j, k) itself
    let own_label = |i: usize, j: usize, k: usize| {
        let w = map.to_world([i as f64, j as f64, k as f64]);
        let t = to_template * Vector4::new(w[0], w[1], w[2], 1.0);
        let l = template.labels_at([t[0], t[1], t[2]]);
        if l & label::FACE != 0 {
            FACE
        } else if ears && l & label::EARS != 0 {
            EARS
        } else {
            0
        }
    };
    // The protected cells keep the margin from the brain cells' centres; here it is kept from
    // every point of them. The code of voxel (i, j, k), and its distance to the brain where it
    // stays removed.
    let keep_margin = |code: u16, full: u16, near: Option<usize>, [i, j, k]: [usize; 3]| {
        let Some(s) = near
            .filter(|_| full & NEAR_BRAIN != 0 && code & (FACE | EARS) != 0)
            .and_then(|c| surface.get(&c))
        else {
            return (code, None);
        };
        let w = map.to_world([i as f64, j as f64, k as f64]);
        let d = brain.distance_among(w, s);
        if d <= brain.margin_mm {
            ((code & !(FACE | EARS)) | PROTECTED, None)
        } else {
            (code, Some(d))
        }
    };
    let smooths = skull.judges_smoothed();
    let nearest_to_brain = slabs
        .into_par_iter()
        .enumerate()
        .map_init(
            || {
                let rows = phys.map(|_| SliceRows::new([nx, ny, nz]));
                (rows, Vec::new(), Vec::new())
            },
            |(around, pending, smoothed), (k, out)| {
                if let Some(a) = around.as_mut() {
                    a.start(k);
                }
                let mut codes = vec![0u16; plane];
                let mut nearest = f64::INFINITY;
                for j in 0..ny {
                    let row = &mut codes[nx * j..nx * (j + 1)];
                    // the voxels whose bone is judged once the row's values are converted
                    pending.clear();
                    rows.for_row_nearest(&grid, &order, nx, j, k, |i, cells| {
                        let full = cells.map_or(0, |o| cell[o]);
                        let mut code = full;
                        if full & (LABEL_EDGE | PROTECTED_EDGE | MAY_BE_BONE | NEAR_BRAIN) == 0 {
                            row[i] = code;
                            return;
                        }
                        let near = cells.map(|o| order.own_index(o));
                        if full & LABEL_EDGE != 0 {
                            // (edge cells away from the margin are in the report's distance through
                            // `min_distance_to_brain`; those near it are measured below)
                            code = (code & !(FACE | EARS)) | own_label(i, j, k);
                        }
                        if full & PROTECTED_EDGE != 0 {
                            // taken here only if the brain check below finds it beyond the margin
                            let own = own_label(i, j, k);
                            if own != 0 {
                                code = (code & !PROTECTED) | own;
                            }
                        }
                        row[i] = code;
                        if phys.is_some() && full & MAY_BE_BONE != 0 {
                            pending.push((i, near, full));
                            return;
                        }
                        let (code, d) = keep_margin(code, full, near, [i, j, k]);
                        row[i] = code;
                        nearest = d.map_or(nearest, |d| nearest.min(d));
                    });
                    let (Some(v), Some(a), Some(&(first, ..)), Some(&(last, ..))) =
                        (phys, around.as_mut(), pending.first(), pending.last())
                    else {
                        continue;
                    };
                    a.convert_around(v, j);
                    let a = &*a;
                    smoothed.clear();
                    if smooths {
                        smoothed.resize(last + 1 - first, 0.0);
                        a.binomial_run(j, first, smoothed);
                    }
                    for &(i, near, full) in pending.iter() {
                        let mut code = row[i];
                        if code & (HEAD | GLOBE) == HEAD
                            && skull.is_native_bone(near, a.get(i, j, k), || smoothed[i - first])
                        {
                            code |= BONE;
                            if keep_bone {
                                code &= !(FACE | EARS);
                            }
                        }
                        let (code, d) = keep_margin(code, full, near, [i, j, k]);
                        row[i] = code;
                        nearest = d.map_or(nearest, |d| nearest.min(d));
                    }
                }
                for (o, &bit) in out.into_iter().zip(&bits) {
                    if let Some(o) = o {
                        o.iter_mut()
                            .zip(&codes)
                            .for_each(|(o, &c)| *o = c & bit != 0);
                    }
                }
                nearest
            },
        )
        .reduce(|| f64::INFINITY, f64::min);
    let mut arrays = masks.into_iter().map(|m| {
        m.map(|v| {
            Array3::from_shape_vec((nx, ny, nz).f(), v)
                .unwrap_or_else(|_| Array3::from_elem((nx, ny, nz).f(), false))
        })
    });
    let mut next = || arrays.next().flatten();
    let (face, ears, protected, head, template_head, bone, intracranial) =
        (next(), next(), next(), next(), next(), next(), next());
    let empty = || Array3::from_elem((nx, ny, nz).f(), false);
    NativeMasks {
        face: face.unwrap_or_else(empty),
        ears,
        protected: protected.unwrap_or_else(empty),
        head: head.unwrap_or_else(empty),
        template_head: template_head.unwrap_or_else(empty),
        bone,
        intracranial,
        nearest_to_brain_mm: nearest_to_brain.is_finite().then_some(nearest_to_brain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`SliceRows::binomial_run`] gives [`binomial`] voxel by voxel, to the bit, on values whose
    /// sums round (so that the order of the additions shows): runs of every start and length,
    /// ends of rows, first and last slices and rows, and a grid one voxel wide.
    #[test]
    fn binomial_runs_are_each_voxels_average() {
        for dims in [[9usize, 4, 3], [1, 3, 2], [2, 2, 1], [17, 5, 4]] {
            let [nx, ny, nz] = dims;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let values: Vec<f32> = (0..nx * ny * nz)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 40) as f32 / 977.3 - 3000.0
                })
                .collect();
            let native = NativeValues::Converted(values.clone());
            let at = |i: usize, j: usize, k: usize| values[i + nx * (j + ny * k)];
            let mut rows = SliceRows::new(dims);
            for k in 0..nz {
                rows.start(k);
                for j in 0..ny {
                    rows.convert_around(&native, j);
                    for first in 0..nx {
                        for len in 1..=nx - first {
                            let mut out = vec![f32::NAN; len];
                            rows.binomial_run(j, first, &mut out);
                            for (t, &o) in out.iter().enumerate() {
                                let one = binomial(at, dims, [first + t, j, k]);
                                assert_eq!(
                                    o.to_bits(),
                                    one.to_bits(),
                                    "{dims:?} voxel {:?}, run from {first} of {len}",
                                    [first + t, j, k]
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`fill_monotone`] gives every value of a monotone step function, rising or falling,
    /// changing densely or rarely, with values below zero.
    #[test]
    fn monotone_fill_is_every_value() {
        for len in [1, 2, 3, 7, 8, 9, 16, 33, 64] {
            for slope in [0.0, 0.001, 0.03, 0.2, 0.5, 1.0, 3.0, -0.04, -0.6, -2.0] {
                for offset in [-5.3, -0.2, 0.0, 0.7, 4.5] {
                    let g = |t: usize| offset + slope * t as f64;
                    let mut out = vec![99; len];
                    fill_monotone(&mut out, 6.0, &g);
                    let expected: Vec<i32> = (0..len)
                        .map(|t| match g(t) {
                            x if (0.0..6.0).contains(&x) => x as i32,
                            _ => -1,
                        })
                        .collect();
                    assert_eq!(out, expected, "len {len} slope {slope} offset {offset}");
                }
            }
        }
    }

    /// The native grid's nearest working cells depend on every bit of the world positions
    /// (ties between two cells are common on axis-aligned grids), so the row-wise positions
    /// must be `VoxelMap::to_world`'s exactly, an uneven stack's included.
    #[test]
    fn native_rows_are_to_world_to_the_bit() {
        for rel in ["ct/ge_tilted_ct", "mri/siemens_t1_2d_hfp", "mri/ch2.nii.gz"] {
            let path = defacer_testkit::real(rel);
            let vol = defacer_volume::load(&[path]).unwrap().remove(0);
            let map = vol.voxel_map().unwrap();
            let rows = NativeRows::new(&vol, &map);
            let [nx, ny, nz, _] = vol.dims();
            let mut checked = 0;
            for k in (0..nz).step_by(nz.div_ceil(16)) {
                for j in (0..ny).step_by(3) {
                    rows.for_row(nx, j, k, |i, w| {
                        let expected = map.to_world([i as f64, j as f64, k as f64]);
                        assert_eq!(w.map(f64::to_bits), expected.map(f64::to_bits), "{rel}");
                        checked += 1;
                    });
                }
            }
            assert!(checked > 10_000, "{rel}: {checked}");
        }
    }

    /// The nearest working cell of every native voxel as the mask takes it (a fixed coordinate
    /// rounded once per row) is `grid.nearest(to_world(voxel))`, for an axis-aligned volume,
    /// a permuted one, an oblique uneven stack and a grid that does not cover the volume.
    #[test]
    fn nearest_cells_by_row_are_those_of_each_voxel() {
        for rel in [
            "mri/ch2.nii.gz",
            "mri/philips_mprage_t1",
            "ct/ge_tilted_ct",
            "mri/siemens_t1_2d_hfp",
        ] {
            let path = defacer_testkit::real(rel);
            let vol = defacer_volume::load(&[path]).unwrap().remove(0);
            let map = vol.voxel_map().unwrap();
            let rows = NativeRows::new(&vol, &map);
            let [nx, ny, nz, _] = vol.dims();
            let full = WorkingGrid::covering(&map, [nx, ny, nz], 2.0);
            // a grid a third smaller, shifted: many voxels have no cell
            let part = WorkingGrid {
                dims: full.dims.map(|n| n * 2 / 3),
                origin: full.origin.map(|o| o + 7.3),
                spacing: 2.0,
            };
            for grid in [full, part] {
                let order = CellOrder::along(&rows, &grid);
                // a sagittal series (PIR) reads its cells in an order of its own, an axial
                // volume (RAS) in the grid's
                match rel {
                    "mri/philips_mprage_t1" => assert!(!order.own, "{rel}"),
                    "mri/ch2.nii.gz" => assert!(order.own, "{rel}"),
                    _ => {}
                }
                // each cell's own index, in the order
                let ordered = order.reorder((0..grid.len()).collect::<Vec<usize>>());
                let (mut checked, mut outside) = (0usize, 0usize);
                for k in (0..nz).step_by(nz.div_ceil(12)) {
                    for j in (0..ny).step_by(5) {
                        rows.for_row_nearest(&grid, &order, nx, j, k, |i, cell| {
                            let w = map.to_world([i as f64, j as f64, k as f64]);
                            let near = cell.map(|o| order.own_index(o));
                            assert_eq!(near, grid.nearest(w), "{rel} voxel {i},{j},{k}");
                            // the order holds the cell's values where the pass reads them
                            assert_eq!(cell.map(|o| ordered[o]), near, "{rel} voxel {i},{j},{k}");
                            checked += 1;
                            outside += near.is_none() as usize;
                        });
                    }
                }
                assert!(checked > 10_000, "{rel}: {checked}");
                if grid == part {
                    assert!(outside > 1000, "{rel}: {outside} voxels outside");
                }
            }
        }
    }
}
