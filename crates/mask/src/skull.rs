//! Bone and the intracranial space.
//!
//! In CT both are plain to see: bone is bright in Hounsfield units.
//!
//! In MRI cortical bone gives almost no signal in any contrast (T1, T2, FLAIR, PD): it is a dark
//! band between the scalp and the brain. Marrow may be bright (fat), CSF is dark in T1 and FLAIR
//! and bright in T2, the eyes are dark in T1, the sinuses are air. So "dark" alone is not bone;
//! the band's shape decides:
//! - intensities are judged against the local level of the surrounding tissue, so a bias field,
//!   another scanner or another contrast does not move the cut;
//! - the skull is the dark ring that encloses the fitted template's brain in axial slices, and
//!   what it encloses next to that brain is the intracranial space;
//! - bone is thin: dark blobs thicker than a skull (the eyes in T1, the sinuses, wide CSF) are
//!   not bone.
//!
//! When the band is not found where a skull must be, bone is not claimed at all: facial bone is
//! then removed with the soft tissue (privacy first; the brain is protected regardless).

use crate::distance::{
    close, components_holding, dilate, distance_sq_within, erode, fill_holes, largest_component,
    reach_cells, reach_through,
};
use crate::filter::local_mean;
use crate::grid::{Field, WorkingImage};
use defacer_volume::Modality;
use rayon::prelude::*;

/// Cortical bone in CT is above this (soft tissue ≲ 100 HU, trabecular bone ≳ 300 HU).
pub const CT_BONE_HU: f64 = 250.0;
/// At 2 mm a 4 mm skull is partly averaged with soft tissue, so the working grid uses a lower cut.
const CT_BONE_HU_WORKING: f32 = 150.0;

/// MRI: a voxel is dark (bone, air, or CSF in T1) below this share of the local tissue level.
/// Scalp, fat, muscle and brain are well above half of it in every contrast; cortical bone is
/// near the noise floor.
pub const MRI_DARK: f32 = 0.4;
/// Radius (mm) of the neighbourhood whose tissue sets the local level: wide enough to hold scalp
/// and brain whatever the band's thickness, narrow enough to follow a coil's bias field.
const LEVEL_RADIUS_MM: f64 = 16.0;
/// Skin is partial-volumed with air on the working grid: no bone this close to it.
const MIN_DEPTH_MM: f64 = 3.0;
/// The skull lies within this distance (mm) of the fitted template brain.
const SKULL_REACH_MM: f64 = 25.0;
/// The intracranial space lies within this distance (mm) of the fitted template brain.
const INTRACRANIAL_REACH_MM: f64 = 15.0;
/// Dark blobs that hold a ball of this radius (mm) are too thick for bone (eyes, sinuses).
const THICK_MM: f64 = 5.0;
/// A valley narrower than about twice this (mm) and deeper than [`VALLEY_DEPTH`] of the local
/// level is dark too.
const VALLEY_MM: f64 = 4.0;
const VALLEY_DEPTH: f32 = 0.35;
/// How far (mm) the enclosed core is grown back into the closed ring's faint cells.
const REGROW_MM: f64 = 6.0;
/// CT: soft tissue that the outside air reaches within this path length (mm) without crossing
/// bone is outside the cranium (face, scalp, the front of the orbits): no brain is there,
/// wherever the template's brain lands. Deeper openings (the orbit's apex and optic canal, the
/// foramen magnum, a nasal cavity leading to a thin cribriform plate) lie beyond it.
const CT_EXTERIOR_MM: f64 = 30.0;
/// CT values soft tissue and fat take; air in sinuses and the nasal cavity is not a path.
const CT_SOFT_HU: std::ops::RangeInclusive<f32> = -200.0..=150.0;
/// Gaps of the dark ring bridged before its inside is filled (mm).
const RING_CLOSING_MM: f64 = 4.0;
/// Wider gaps bridged, one width after the other, in the slices where the ring still leaks
/// (see [`bridge_leaking_slices`]). Thick sagittal slices (4.8 mm) average the band at the
/// sides of the head with the scalp over a few cm; 16 mm bridges those gaps.
const BRIDGE_MM: [f64; 3] = [8.0, 12.0, 16.0];
/// CT's bridges. Wider gaps (defects of the skull) are closed by the hull (see
/// [`SkullSurface::find`]): bridges of 24 and 32 mm closed the InVesalius defect as well, at
/// about 0.1 s more.
const CT_BRIDGE_MM: [f64; 3] = [8.0, 12.0, 16.0];
/// CT: a part of the enclosed space holding this share of the template brain's interior is the
/// brain's (see [`SkullSurface::find`]).
const CRANIAL_PART_SHARE: f64 = 0.05;
/// The template brain's interior: deeper than this (mm) inside it. A skull found must enclose
/// at least [`HELD_SHARE`] of it.
const DEEP_BRAIN_MM: f64 = 8.0;
const HELD_SHARE: f64 = 0.9;
/// The space a skull found encloses is this share of the template brain (in view) or more ...
const MIN_INTERIOR_SHARE: f64 = 0.6;
/// ... and at most this share. A larger space is not a brain's: the ring took in the face.
const MAX_INTERIOR_SHARE: f64 = 1.6;

#[derive(Debug, Clone)]
pub struct SkullSurface {
    pub modality: Modality,
    /// Bone on the working grid, when the modality shows it.
    pub bone: Option<Field<bool>>,
    /// The space enclosed by the skull (brain, CSF, vessels), when bone is seen.
    pub intracranial: Option<Field<bool>>,
    /// CT: soft tissue outside the cranium, reached from the outside air without crossing bone
    /// (see `CT_EXTERIOR_MM`: 30 mm).
    pub exterior: Option<Field<bool>>,
    /// MRI: the local tissue level of each working cell, and the cells next to bone; a native
    /// voxel there darker than [`MRI_DARK`] of the level is bone.
    pub mri_band: Option<(Field<f32>, Field<bool>)>,
    /// Why bone was not identified, when it was looked for and not found.
    pub problem: Option<String>,
    /// MRI where bone was not identified: the space the dark band encloses all the same, when
    /// it is no larger than a brain's (1.6 times the template brain in view). It is not taken
    /// for the cranium's interior, but it is protected with the template's brain: the
    /// plausibility checks judge the trace against the template, and a template fitted a few
    /// cm off (a slab of cranium without the face fits at many heights) fails a right trace,
    /// while its brain then lies where the subject's is not.
    pub unconfirmed_interior: Option<Field<bool>>,
}

impl SkullSurface {
    /// `brain_hint` is the template's brain mapped to the subject: only skull-enclosed space near
    /// it is intracranial (sinuses and orbits are also rings of bone in axial slices).
    /// `in_view`: the cells whose air is real air
    /// (see [`crate::registration::SubjectSurface::air_in_view`]).
    pub fn find(
        img: &WorkingImage,
        in_view: &Field<bool>,
        modality: Modality,
        head: &Field<bool>,
        brain_hint: &Field<bool>,
    ) -> Self {
        if modality == Modality::Ct {
            return Self::find_ct(img, in_view, head, brain_hint);
        }
        match MriSkull::find(img, in_view, head, brain_hint) {
            Ok(s) => SkullSurface {
                modality,
                bone: Some(s.bone),
                intracranial: Some(s.intracranial),
                exterior: None,
                mri_band: Some((s.level, s.near_bone)),
                problem: None,
                unconfirmed_interior: None,
            },
            Err((problem, traced)) => SkullSurface {
                modality,
                bone: None,
                intracranial: None,
                exterior: None,
                mri_band: None,
                problem: Some(problem),
                unconfirmed_interior: traced,
            },
        }
    }

    fn find_ct(
        img: &WorkingImage,
        in_view: &Field<bool>,
        head: &Field<bool>,
        brain_hint: &Field<bool>,
    ) -> Self {
        let sp = img.grid.spacing;
        let bone = img.values.zip(head, |v, h| h && v > CT_BONE_HU_WORKING);
        // sutures, emissary foramina and partial volume leave gaps in the ring
        let ring = close(&bone, 4.0, sp);
        let enclosed = enclosed_in_axial_slices(&ring, head, in_view);
        // A defect of the skull (burr hole, craniotomy, fracture) or bone too thin for the
        // working grid opens the slice, and the outside would then reach in through it. Such
        // slices take wider bridges, as in MRI (the InVesalius head has a right frontal
        // defect about 14 mm wide below 150 HU at native resolution, 28 mm on the working
        // grid, where the thin bone at its edges is lost too: wider than these bridges).
        let deep = BrainInView::new(brain_hint, in_view, sp).deep;
        let (ring, enclosed) = bridge_leaking_slices(
            ring,
            enclosed,
            &bone,
            head,
            in_view,
            &deep,
            sp,
            &CT_BRIDGE_MM,
        );
        let near_brain = dilate(brain_hint, 20.0, sp);
        // A defect wider than the bridges (a craniectomy) leaves slices open still: there the
        // skull near the brain is closed by its convex hull, the gap's chord standing in for
        // the missing bone, so the brain under it stays inside.
        let skull_near_brain = ring.zip(&near_brain, |r, n| r && n);
        let (enclosed, hulled) = hull_leaking_slices(&skull_near_brain, enclosed, &deep, in_view);
        let soft = img.values.map(|v| (-100.0..=150.0).contains(&v));
        let mut inside = enclosed.zip(&ring, |e, r| e && !r);
        inside = inside
            .zip(&near_brain, |a, b| a && b)
            .zip(&soft, |a, b| a && b);
        // Slices whose ring stays open hold no inside and cut the space in two: every part
        // holding a good share of the brain's interior is the brain's (the largest alone lost
        // the whole cranium above a defect), while sinuses and orbits hold none of it.
        let intracranial = components_holding(&inside, &deep, CRANIAL_PART_SHARE);
        let air = head.zip(in_view, |h, seen| !h && seen);
        let path = Field::from_cells(head.dims, |c| {
            head.data[c]
                && !ring.data[c]
                && !intracranial.data[c]
                && CT_SOFT_HU.contains(&img.values.data[c])
        });
        let mut exterior = reach_through(&air, &path, CT_EXTERIOR_MM, sp);
        // Through a defect the outside reaches the brain beyond the hull's chord: in those
        // slices the template's brain is not taken for exterior (the brain wins).
        let plane = head.dims[0] * head.dims[1];
        exterior
            .data
            .par_chunks_mut(plane)
            .zip(brain_hint.data.par_chunks(plane))
            .zip(&hulled)
            .filter(|(_, &h)| h)
            .for_each(|((ext, brain), _)| {
                ext.iter_mut().zip(brain).for_each(|(e, &b)| *e = *e && !b);
            });
        SkullSurface {
            modality: Modality::Ct,
            bone: Some(bone),
            intracranial: Some(intracranial),
            exterior: Some(exterior),
            mri_band: None,
            problem: None,
            unconfirmed_interior: None,
        }
    }

    /// Whether a native voxel of physical `value`, whose nearest working cell is `cell`, is bone
    /// (kept unless bone removal is asked for).
    /// MRI judges `smoothed`, the voxel averaged with its neighbours: noise in a 2–3 voxel band
    /// would otherwise decide bone voxel by voxel, differently on every resampling of the scan.
    pub fn is_native_bone(
        &self,
        cell: Option<usize>,
        value: f32,
        smoothed: impl FnOnce() -> f32,
    ) -> bool {
        if self.modality == Modality::Ct {
            return value as f64 > CT_BONE_HU;
        }
        match (&self.mri_band, cell) {
            (Some((level, near)), Some(c)) => near.data[c] && smoothed() < MRI_DARK * level.data[c],
            _ => false,
        }
    }

    /// Whether [`Self::is_native_bone`] reads its `smoothed` value (MRI) or only the voxel's own
    /// (CT).
    pub fn judges_smoothed(&self) -> bool {
        self.modality != Modality::Ct
    }

    /// Whether a native voxel whose nearest working cell is `c` can be bone at all: false
    /// where [`Self::is_native_bone`] is false whatever the voxel's value. Lets the native pass
    /// skip the voxels of cells far from the MRI's dark band.
    pub fn may_hold_native_bone(&self, c: usize) -> bool {
        if self.modality == Modality::Ct {
            return true;
        }
        self.mri_band.as_ref().is_some_and(|(_, near)| near.data[c])
    }

    /// Whether bone was identified (and so can be kept).
    pub fn found(&self) -> bool {
        self.bone.is_some()
    }
}

/// The MRI skull on the working grid.
struct MriSkull {
    bone: Field<bool>,
    intracranial: Field<bool>,
    level: Field<f32>,
    near_bone: Field<bool>,
}

impl MriSkull {
    fn find(
        img: &WorkingImage,
        in_view: &Field<bool>,
        head: &Field<bool>,
        brain_hint: &Field<bool>,
    ) -> Result<Self, (String, Option<Field<bool>>)> {
        let sp = img.grid.spacing;
        let head = head.zip(in_view, |h, ok| h && ok);
        let r = (VALLEY_MM / sp).round().max(1.0) as usize;
        let level = tissue_level(&img.values, &head, sp);
        let depth = distance_sq_within(&head.map(|h| !h), sp, MIN_DEPTH_MM);
        // a thin band darker than both its sides, however dark in absolute terms (blurred by
        // the working grid, or crossed by a vein at the vertex)
        let closed_values = extreme_filter(&extreme_filter(&img.values, r, true), r, false);
        let to_brain =
            distance_sq_within(brain_hint, sp, SKULL_REACH_MM.max(INTRACRANIAL_REACH_MM));
        let brain_in_view = BrainInView::new(brain_hint, in_view, sp);
        let min_depth = (MIN_DEPTH_MM * MIN_DEPTH_MM) as f32;
        let dark = Field::from_cells(head.dims, |c| {
            head.data[c]
                && depth.data[c] >= min_depth
                && (img.values.data[c] < MRI_DARK * level.data[c]
                    || closed_values.data[c] - img.values.data[c] > VALLEY_DEPTH * level.data[c])
        });
        let enclosed_space = || {
            let near_brain = to_brain.map(|d| d <= (SKULL_REACH_MM * SKULL_REACH_MM) as f32);
            // single-cell gaps: foramina, partial volume with marrow or vessels
            let band = dark.zip(&near_brain, |d, n| d && n);
            let ring = close(&band, RING_CLOSING_MM.max(sp), sp);
            let enclosed = enclosed_in_axial_slices(&ring, &head, in_view);
            let (ring, enclosed) = bridge_leaking_slices(
                ring,
                enclosed,
                &band,
                &head,
                in_view,
                &brain_in_view.deep,
                sp,
                &BRIDGE_MM,
            );
            let close_to_brain =
                to_brain.map(|d| d <= (INTRACRANIAL_REACH_MM * INTRACRANIAL_REACH_MM) as f32);
            let inside = enclosed
                .zip(&ring, |e, r| e && !r)
                .zip(&close_to_brain, |a, b| a && b);
            let core = largest_component(&inside);
            // The closed ring reaches into sulci and the faint valleys of the cortex: give the
            // core back what it lost there, but not the truly dark band (bone, or CSF in T1),
            // whose inner part is not told apart from bone by intensity.
            // never into the outer part of the ring, where the skull is (partial volume there
            // is not dark)
            let regrow = dilate(&core, REGROW_MM.max(sp), sp)
                .zip(&erode(&enclosed, REGROW_MM.max(sp), sp), |a, b| a && b);
            let regrown = Field::from_cells(head.dims, |c| {
                core.data[c]
                    || (regrow.data[c]
                        && enclosed.data[c]
                        && img.values.data[c] >= MRI_DARK * level.data[c])
            });
            // ventricles (dark in T1) are holes in it; the skull is not
            fill_holes(&close(&regrown, 2.0 * sp, sp).zip(&enclosed, |a, b| a && b))
        };
        // the flood fills of the enclosed space are serial: thick blobs fill the other core
        let (intracranial, thick) = rayon::join(enclosed_space, || {
            dilate(&erode(&dark, THICK_MM, sp), THICK_MM + sp, sp)
        });
        // the vault around the cranium, and the facial bones under the face's soft tissue
        let bone = Field::from_cells(head.dims, |c| {
            dark.data[c] && !thick.data[c] && !intracranial.data[c]
        });
        let (plausible, near_bone) = rayon::join(
            || check_plausible(&brain_in_view, &head, brain_hint, &intracranial, &bone, sp),
            || dilate(&bone, sp, sp),
        );
        if let Err(problem) = plausible {
            // the trace refused, kept to protect where it is no larger than a brain
            let at_most_a_brain = intracranial.count() as f64
                <= MAX_INTERIOR_SHARE * brain_in_view.brain.count() as f64;
            return Err((problem, at_most_a_brain.then_some(intracranial)));
        }
        Ok(MriSkull {
            bone,
            intracranial,
            level,
            near_bone,
        })
    }
}

/// The template brain inside the field of view, and its interior (deeper than
/// [`DEEP_BRAIN_MM`]), which a skull found must hold.
struct BrainInView {
    brain: Field<bool>,
    deep: Field<bool>,
}

impl BrainInView {
    fn new(brain_hint: &Field<bool>, in_view: &Field<bool>, sp: f64) -> Self {
        let brain = brain_hint.zip(in_view, |b, ok| b && ok);
        let deep = erode(&brain, DEEP_BRAIN_MM, sp);
        BrainInView { brain, deep }
    }
}

/// The leaking slices (see [`bridge_leaking_slices`]) whose space inside the convex hull of
/// `skull` (the ring near the brain) in that slice holds the brain: that space is enclosed
/// there. Other slices are left as they are. Also returns which slices took their hull.
fn hull_leaking_slices(
    skull: &Field<bool>,
    enclosed: Field<bool>,
    deep: &Field<bool>,
    in_view: &Field<bool>,
) -> (Field<bool>, Vec<bool>) {
    let [nx, ny, _] = skull.dims;
    let plane = nx * ny;
    let holds = |enclosed: &[bool], deep: &[bool]| {
        let n = deep.iter().filter(|&&d| d).count();
        let held = deep.iter().zip(enclosed).filter(|(&d, &e)| d && e).count();
        n == 0 || held as f64 >= HELD_SHARE * n as f64
    };
    let mut out = enclosed.data;
    let hulled = out
        .par_chunks_mut(plane)
        .zip(skull.data.par_chunks(plane))
        .zip(
            deep.data
                .par_chunks(plane)
                .zip(in_view.data.par_chunks(plane)),
        )
        .map(|((enclosed, skull), (deep, seen))| {
            if holds(enclosed, deep) {
                return false;
            }
            let points: Vec<[i64; 2]> = (0..plane)
                .filter(|&c| skull[c])
                .map(|c| [(c % nx) as i64, (c / nx) as i64])
                .collect();
            let hull = convex_hull(points);
            if hull.len() < 3 {
                return false;
            }
            let filled: Vec<bool> = (0..plane)
                .map(|c| {
                    enclosed[c]
                        || (seen[c] && inside_hull(&hull, [(c % nx) as i64, (c / nx) as i64]))
                })
                .collect();
            let adopted = holds(&filled, deep);
            if adopted {
                enclosed.copy_from_slice(&filled);
            }
            adopted
        })
        .collect();
    (
        Field {
            dims: skull.dims,
            data: out,
        },
        hulled,
    )
}

/// The convex hull of grid points, counter-clockwise, without collinear points (Andrew's
/// monotone chain: a dozen lines, where a geometry crate would bring a dependency tree).
fn convex_hull(mut points: Vec<[i64; 2]>) -> Vec<[i64; 2]> {
    points.sort_unstable();
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let half = |points: &mut dyn Iterator<Item = [i64; 2]>| {
        let mut chain: Vec<[i64; 2]> = Vec::new();
        for p in points {
            while chain.len() >= 2 && cross(chain[chain.len() - 2], chain[chain.len() - 1], p) <= 0
            {
                chain.pop();
            }
            chain.push(p);
        }
        chain.pop();
        chain
    };
    let mut hull = half(&mut points.iter().copied());
    hull.extend(half(&mut points.iter().rev().copied()));
    hull
}

/// `(a - o) × (b - o)`: positive when `o → a → b` turns counter-clockwise.
fn cross(o: [i64; 2], a: [i64; 2], b: [i64; 2]) -> i64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Whether `p` lies in the counter-clockwise convex polygon `hull` (edges included).
fn inside_hull(hull: &[[i64; 2]], p: [i64; 2]) -> bool {
    (0..hull.len()).all(|e| cross(hull[e], hull[(e + 1) % hull.len()], p) >= 0)
}

/// Slices whose ring leaks: the flood from the outside reached most of the template brain's
/// interior in them. A vein crossing the band (the confluence of the sinuses at the occiput, an
/// emissary vein) or a band blurred by resampling leaves a gap wider than [`RING_CLOSING_MM`],
/// and one gap opens the whole slice; so do thick slices, which average the band with the
/// scalp where it runs across them. Those slices, and only those, take the ring closed with
/// wider bridges (`bridges`, radii in mm, narrowest first), when that one holds the brain. The
/// MRI skull found is still refused unless it passes every test of [`check_plausible`].
#[allow(clippy::too_many_arguments)]
fn bridge_leaking_slices(
    ring: Field<bool>,
    enclosed: Field<bool>,
    band: &Field<bool>,
    head: &Field<bool>,
    in_view: &Field<bool>,
    deep: &Field<bool>,
    sp: f64,
    bridges: &[f64],
) -> (Field<bool>, Field<bool>) {
    let [nx, ny, nz] = ring.dims;
    let plane = nx * ny;
    // whether slice k, enclosed as `slice` says, leaks
    let leaking = |slice: &[bool], k: usize| {
        let deep = &deep.data[k * plane..(k + 1) * plane];
        let n = deep.iter().filter(|&&d| d).count();
        let held = deep.iter().zip(slice).filter(|(&d, &e)| d && e).count();
        n > 0 && (held as f64) < HELD_SHARE * n as f64
    };
    let (mut ring, mut enclosed) = (ring, enclosed);
    for &bridge in bridges {
        let leaks: Vec<usize> = (0..nz)
            .filter(|&k| leaking(&enclosed.data[k * plane..(k + 1) * plane], k))
            .collect();
        let (Some(&first), Some(&last)) = (leaks.first(), leaks.last()) else {
            break;
        };
        // The closing is needed in the leaking slices only, and there it depends on the band
        // within two reaches of the radius: it is taken on that slab alone (a few slices where
        // one vein crosses the band, instead of the whole head), which gives those slices the
        // whole grid's closing exactly.
        let radius = bridge.max(2.0 * sp);
        let reach = reach_cells(radius, sp);
        let lo = first.saturating_sub(2 * reach + 1);
        let hi = (last + 2 * reach + 2).min(nz);
        let slab = Field {
            dims: [nx, ny, hi - lo],
            data: band.data[lo * plane..hi * plane].to_vec(),
        };
        let wide = close(&slab, radius, sp);
        let wide_slice = |k: usize| &wide.data[(k - lo) * plane..(k - lo + 1) * plane];
        // Each leaking slice is enclosed within the wider ring (the slab's other slices are
        // not looked at), and takes it where it then holds the brain.
        let bridged: Vec<(usize, Vec<bool>)> = leaks
            .into_par_iter()
            .filter_map(|k| {
                let to = k * plane..(k + 1) * plane;
                let mut slice = wide_slice(k).to_vec();
                enclose_slice(&mut slice, &head.data[to.clone()], &in_view.data[to], nx);
                (!leaking(&slice, k)).then_some((k, slice))
            })
            .collect();
        for (k, slice) in bridged {
            let to = k * plane..(k + 1) * plane;
            ring.data[to.clone()].copy_from_slice(wide_slice(k));
            enclosed.data[to].copy_from_slice(&slice);
        }
    }
    (ring, enclosed)
}

/// Refuses a skull that is not where one must be: the enclosed space must hold the template's
/// brain and not much more, and bone must cover the brain's upper surface.
fn check_plausible(
    brain_in_view: &BrainInView,
    head: &Field<bool>,
    brain_hint: &Field<bool>,
    intracranial: &Field<bool>,
    bone: &Field<bool>,
    sp: f64,
) -> Result<(), String> {
    let BrainInView {
        brain: brain_in_view,
        deep,
    } = brain_in_view;
    let brain_n = brain_in_view.count();
    if brain_n == 0 {
        return Err("the template brain is outside the field of view".into());
    }
    let ic_n = intracranial.count();
    let ratio = ic_n as f64 / brain_n as f64;
    // Below: slices where the ring stays open (thick slices, a vein at the vertex, a cut field
    // of view) add nothing, which is safe; the interior test below catches a missing ring.
    if !(MIN_INTERIOR_SHARE..=MAX_INTERIOR_SHARE).contains(&ratio) {
        return Err(format!(
            "the space enclosed by the dark band is {:.0}% of the template brain",
            ratio * 100.0
        ));
    }
    let deep_n = deep.count();
    let held = deep.zip(intracranial, |d, i| d && i).count();
    if deep_n > 0 && (held as f64) < HELD_SHARE * deep_n as f64 {
        return Err(format!(
            "the space enclosed by the dark band holds {:.0}% of the template brain's interior",
            100.0 * held as f64 / deep_n as f64
        ));
    }
    // the brain's surface under the scalp (not the skull base) must have bone outside it
    let near_bone = dilate(bone, 15.0, sp);
    let dims = brain_hint.dims;
    let levels = || {
        (0..brain_in_view.data.len())
            .into_par_iter()
            .filter(|&c| brain_in_view.data[c])
            .map(|c| brain_in_view.coords(c)[2])
    };
    let brain_top = levels().max().unwrap_or(0);
    let brain_bottom = levels().min().unwrap_or(0);
    let upper = brain_bottom + (brain_top - brain_bottom) / 2;
    let (surface, covered) = (0..brain_in_view.data.len())
        .into_par_iter()
        .filter(|&c| brain_in_view.data[c] && brain_in_view.coords(c)[2] >= upper)
        .filter(|&c| {
            crate::distance::neighbours6(dims, c).any(|nb| !brain_hint.data[nb] && head.data[nb])
        })
        .map(|c| (1usize, near_bone.data[c] as usize))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    if surface > 0 && (covered as f64) < 0.7 * surface as f64 {
        return Err(format!(
            "a dark band covers {:.0}% of the upper brain surface",
            100.0 * covered as f64 / surface as f64
        ));
    }
    Ok(())
}

/// The local level of bright tissue around each cell: the mean of the head's tissue within
/// [`LEVEL_RADIUS_MM`], leaving out the dark cells (bone, air, CSF in T1) that would drag it down.
fn tissue_level(values: &Field<f32>, head: &Field<bool>, spacing: f64) -> Field<f32> {
    let r = (LEVEL_RADIUS_MM / spacing).round().max(1.0) as usize;
    let first = local_mean(values, head, r);
    let bright = Field::from_cells(head.dims, |c| {
        head.data[c] && values.data[c] >= MRI_DARK * first.data[c]
    });
    local_mean(values, &bright, r)
}

/// `mask` with what it encloses in each axial (z) slice: a skull ring closes in axial slices
/// even where the skull base has openings in 3-D. The flood runs within the slice only.
///
/// The outside is what air reaches: the flood starts from air cells (not `head`) on the slice's
/// border or next to cells beyond the field of view, and runs through the field of view only.
/// So a skull cut by the edge of the field of view (a tilted or short scan) still encloses its
/// inside, and a field of view that does not reach the grid's border (an oblique scan) still
/// has an outside. Cells beyond the field of view are never enclosed.
fn enclosed_in_axial_slices(
    mask: &Field<bool>,
    head: &Field<bool>,
    in_fov: &Field<bool>,
) -> Field<bool> {
    let [nx, ny, _] = mask.dims;
    let plane = nx * ny;
    let mut out = mask.data.clone();
    out.par_chunks_mut(plane)
        .zip(head.data.par_chunks(plane))
        .zip(in_fov.data.par_chunks(plane))
        .for_each(|((slice, head), seen)| enclose_slice(slice, head, seen, nx));
    Field {
        dims: mask.dims,
        data: out,
    }
}

/// One axial slice of [`enclosed_in_axial_slices`]: `slice` (rows of `nx` cells) takes what it
/// encloses, given the slice's `head` and field of view `seen`.
fn enclose_slice(slice: &mut [bool], head: &[bool], seen: &[bool], nx: usize) {
    let plane = slice.len();
    let ny = plane / nx.max(1);
    let open = |slice: &[bool], c: usize| !slice[c] && seen[c];
    let mut outside = vec![false; plane];
    let mut stack = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let c = i + nx * j;
            if !open(slice, c) || head[c] {
                continue;
            }
            let border = i == 0 || j == 0 || i + 1 == nx || j + 1 == ny;
            let at_fov_edge =
                border || !seen[c - 1] || !seen[c + 1] || !seen[c - nx] || !seen[c + nx];
            if at_fov_edge {
                outside[c] = true;
                stack.push(c);
            }
        }
    }
    while let Some(c) = stack.pop() {
        let (i, j) = (c % nx, c / nx);
        let nbs = [
            (i > 0).then(|| c - 1),
            (i + 1 < nx).then(|| c + 1),
            (j > 0).then(|| c - nx),
            (j + 1 < ny).then(|| c + nx),
        ];
        for nb in nbs.into_iter().flatten() {
            if open(slice, nb) && !outside[nb] {
                outside[nb] = true;
                stack.push(nb);
            }
        }
    }
    for c in 0..plane {
        slice[c] = slice[c] || (seen[c] && !outside[c]);
    }
}

/// Running maximum (`max`) or minimum over a (2r+1)³ cube, separable. Along y and z whole x
/// rows are combined at a time (contiguous, and vectorised); the extremes are the same.
fn extreme_filter(f: &Field<f32>, r: usize, max: bool) -> Field<f32> {
    // one loop per extreme, free of the choice between them
    if max {
        extreme_by(f, r, f32::max)
    } else {
        extreme_by(f, r, f32::min)
    }
}

/// [`extreme_filter`] by `pick`, the larger or the smaller of two values.
fn extreme_by(f: &Field<f32>, r: usize, pick: impl Fn(f32, f32) -> f32 + Sync) -> Field<f32> {
    let [nx, ny, nz] = f.dims;
    // window extremes over `len` rows of `width` (row t at t * width)
    let rows = |src: &[f32], dst: &mut [f32], width: usize, len: usize| {
        for t in 0..len {
            let out = &mut dst[width * t..width * (t + 1)];
            let lo = t.saturating_sub(r);
            out.copy_from_slice(&src[width * lo..width * (lo + 1)]);
            for u in lo + 1..(t + r + 1).min(len) {
                for (o, &v) in out.iter_mut().zip(&src[width * u..width * (u + 1)]) {
                    *o = pick(*o, v);
                }
            }
        }
    };
    // along x, each row with itself shifted by 1..=r cells either way (the same extremes),
    // slab by slab
    let mut along_x = f.data.clone();
    along_x
        .par_chunks_mut(nx * ny)
        .zip(f.data.par_chunks(nx * ny))
        .for_each(|(o, slab)| {
            for (o, line) in o.chunks_mut(nx).zip(slab.chunks(nx)) {
                for s in 1..=r.min(nx.saturating_sub(1)) {
                    for (o, &v) in o[..nx - s].iter_mut().zip(&line[s..]) {
                        *o = pick(*o, v);
                    }
                    for (o, &v) in o[s..].iter_mut().zip(line) {
                        *o = pick(*o, v);
                    }
                }
            }
        });
    let mut along_y = vec![0f32; f.data.len()];
    along_y
        .par_chunks_mut(nx * ny)
        .zip(along_x.par_chunks(nx * ny))
        .for_each(|(o, slab)| rows(slab, o, nx, ny));
    let plane = nx * ny;
    let src = &along_y;
    along_x
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, out)| {
            let lo = k.saturating_sub(r);
            out.copy_from_slice(&src[plane * lo..plane * (lo + 1)]);
            for u in lo + 1..(k + r + 1).min(nz) {
                for (o, &v) in out.iter_mut().zip(&src[plane * u..plane * (u + 1)]) {
                    *o = pick(*o, v);
                }
            }
        });
    Field {
        dims: f.dims,
        data: along_x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hull of a filled square with a notch is its four corners, counter-clockwise; the
    /// notch and the edges are inside it, points beyond an edge are not.
    #[test]
    fn convex_hull_closes_a_notched_square() {
        let points: Vec<[i64; 2]> = (0..=10)
            .flat_map(|x| (0..=10).map(move |y| [x, y]))
            .filter(|&[x, y]| !(4..=6).contains(&x) || y < 7)
            .collect();
        let hull = convex_hull(points);
        assert_eq!(hull, vec![[0, 0], [10, 0], [10, 10], [0, 10]]);
        for p in [[5, 9], [0, 5], [10, 10], [5, 5]] {
            assert!(inside_hull(&hull, p), "{p:?}");
        }
        for p in [[-1, 5], [5, 11], [11, 0]] {
            assert!(!inside_hull(&hull, p), "{p:?}");
        }
        assert!(convex_hull(vec![[1, 1], [2, 2]]).len() < 3);
    }

    /// The separable running extremes against the extreme over each clipped window, for both
    /// kinds, every axis length below, at and above the window.
    #[test]
    fn extreme_filter_is_the_extreme_of_each_clipped_window() {
        let dims = [6, 9, 4];
        let mut seed = 777u64;
        let data: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) % 1000) as f32 - 500.0
            })
            .collect();
        let f = Field { dims, data };
        for r in [1, 2, 5] {
            for max in [true, false] {
                let fast = extreme_filter(&f, r, max);
                for c in 0..f.data.len() {
                    let [i, j, k] = f.coords(c);
                    let span = |x: usize, n: usize| x.saturating_sub(r)..(x + r + 1).min(n);
                    let mut best = if max { f32::MIN } else { f32::MAX };
                    for kk in span(k, dims[2]) {
                        for jj in span(j, dims[1]) {
                            for ii in span(i, dims[0]) {
                                let v = f.get(ii, jj, kk);
                                best = if max { best.max(v) } else { best.min(v) };
                            }
                        }
                    }
                    assert_eq!(fast.data[c], best, "r {r} max {max} at {:?}", [i, j, k]);
                }
            }
        }
    }
}
