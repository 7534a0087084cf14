//! Geometric signs of a face that do not depend on a detector.
//!
//! What identifies a person in a 3-D render is the *relief* of the facial soft tissue: a nose
//! that stands out of the face, lips, eye sockets, a chin. What does not is a plain surface —
//! the smooth front that blur and reface leave, the flat or curved face of a cut, or facial bone
//! with no skin over it. So the residuals are measured on a height field of the skin seen from
//! the front of the face (the frame comes from the mapped landmarks: eyes give left–right, chin
//! to eyes gives up), against a *plain face*: the height field closed then opened (for what
//! stands out) or opened then closed (for hollows) with a flat disc of
//! [`ResidualOptions::plain_face_radius_mm`], within one continuous surface (a height jump
//! steeper than 72° separates surfaces, e.g. a chin from the neck behind it). Anything narrower
//! than the disc — a nose, lips, an eye socket — stands above or lies below it; a slope, a wide
//! curve or the step at the edge of a cut does not (a flat disc reproduces planes and steps).
//! Each landmark reports the relief of its own feature: eyes lie in hollows, nose, lips and chin
//! stand out. The other sense is what cuts leave (ridges between sinuses and orbits, the nasal
//! cavity behind the nose).
//!
//! Only soft tissue counts as skin: a surface point whose tissue 1–2 mm beneath it reaches the
//! bone level (CT, [`ResidualOptions::bone_level`]) is exposed bone, not a face, and is left out
//! of the height field, so facial bone kept after a soft-tissue removal is not measured.

use defacer_render::SkinScene;
use rayon::prelude::*;
use serde::Serialize;

/// A named point in world (RAS, mm) space where a facial feature is expected, e.g. from a
/// template fit mapped into the subject: `("nose_tip", [x, y, z])`. The names `eye_left`,
/// `eye_right`, `chin` and `nose_tip` orient the face frame and name the nose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landmark {
    pub name: String,
    pub world_mm: [f64; 3],
}

/// How residuals are measured and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualOptions {
    /// Skin within this distance (mm, in the face plane) of a landmark is measured.
    pub landmark_radius_mm: f64,
    /// Radius (mm) of the flat disc that defines the plain face: features narrower than about
    /// twice this (an adult nose is 30–35 mm wide at the alae, an orbit about 35 mm) are relief.
    pub plain_face_radius_mm: f64,
    /// Physical value at and above which tissue is bone, not skin (CT: 250 HU); `None` counts
    /// every surface above the skin level as skin (MRI, where cortical bone is dark anyway).
    pub bone_level: Option<f32>,
    /// A landmark whose relief reaches this (mm) still shows its feature: the volume has a
    /// large residual.
    pub large_relief_mm: f64,
    /// The relief of a landmark is the largest value that at least this much skin (mm², as seen
    /// from the front) reaches, so a stray voxel or a thin rim does not count as a feature.
    pub min_feature_area_mm2: f64,
    /// Whether two eye hollows alone count as a remaining face. They do on a head; but a bare
    /// (skull-stripped) brain shows two hollows where the eyes would be, the undersides of its
    /// frontal lobes, so a caller that found no skull around the brain turns this off. Noses,
    /// lips and chins count either way.
    pub eye_hollows_count: bool,
}

impl Default for ResidualOptions {
    fn default() -> Self {
        ResidualOptions {
            landmark_radius_mm: 20.0,
            plain_face_radius_mm: 15.0,
            bone_level: None,
            large_relief_mm: 6.0,
            min_feature_area_mm2: 20.0,
            eye_hollows_count: true,
        }
    }
}

/// What remains of the face near one landmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandmarkResidual {
    pub name: String,
    pub world_mm: [f64; 3],
    /// Radius in the face plane around the landmark that was measured, mm.
    pub radius_mm: f64,
    /// Soft-tissue skin seen from the front within the radius in the face plane, from 10 mm
    /// behind the landmark to the radius in front of it, mm² of projected area. A refaced or
    /// blurred face has skin here too, only plain.
    pub skin_area_mm2: f64,
    /// How far skin stands in front of the plain face (a nose, lips, a chin), mm.
    pub protrusion_mm: f64,
    /// How far skin lies behind the plain face (an eye socket, the mouth slit), mm.
    pub depression_mm: f64,
    /// The landmark's residual, mm: its feature's relief — `depression_mm` for the eyes (eye
    /// sockets), `protrusion_mm` for the nose, lips and chin, the larger of the two for other
    /// names; 0 when less than a third of the disc around the landmark is skin (what a cut
    /// leaves near a landmark is patches, whose edges are no feature).
    pub relief_mm: f64,
    /// Part of the measured area (as `skin_area_mm2`, in the face plane) whose column, at the
    /// landmark's depth or within the measured depth range, lies in the scanned field of view.
    pub scanned_area_mm2: f64,
    /// At least a third of the landmark's disc was scanned. When it was not, the relief is 0
    /// because the scan does not reach the landmark (a field of view that ends above the chin,
    /// or a landmark mapped outside it), which says nothing about whether a face is there.
    pub in_view: bool,
}

/// Detector-independent measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Residuals {
    pub landmarks: Vec<LandmarkResidual>,
    /// Protrusion of the skin over the plain face at the mapped nose tip, mm: 15–25 mm for an
    /// intact nose, near 0 without one. `None` without a `nose_tip` landmark.
    pub nose_prominence_mm: Option<f64>,
    /// Largest landmark relief, mm (0 without landmarks).
    pub max_relief_mm: f64,
    /// The relief (mm) at and above which a landmark counts as a remaining feature.
    pub large_relief_mm: f64,
    /// A feature remains: a nose, lips or chin whose relief reaches `large_relief_mm`, or eye
    /// sockets that both reach it (when `eye_hollows_counted`). A face has two; one hollow alone
    /// is what a cut through the orbit or the underside of a bare brain's frontal lobe leaves.
    pub large_residual: bool,
    /// Whether eye hollows were counted (see [`ResidualOptions::eye_hollows_count`]).
    pub eye_hollows_counted: bool,
}

/// Measures the residuals of `scene` at `landmarks` (nothing without landmarks: the face frame
/// and the places to look come from them).
pub fn measure(scene: &SkinScene, landmarks: &[Landmark], opts: &ResidualOptions) -> Residuals {
    let Some(frame) = FaceFrame::from_landmarks(landmarks) else {
        return Residuals {
            large_relief_mm: opts.large_relief_mm,
            eye_hollows_counted: opts.eye_hollows_count,
            ..Residuals::default()
        };
    };
    let field = HeightField::cast(scene, &frame, landmarks, opts);
    let hoods = field.neighbourhoods(opts.plain_face_radius_mm);
    let open = |f: &[f32]| field.rank(&hoods, &field.rank(&hoods, f, false), true);
    let close = |f: &[f32]| field.rank(&hoods, &field.rank(&hoods, f, true), false);
    // Closing first fills the holes of a cut (sinuses, orbits, the nasal cavity behind it) to
    // the cut surface, so what stands above the opened result is skin standing out of a plain
    // surface; opening first removes the nose, so what lies below the closed result is a
    // hollow in skin.
    let opened = open(&close(&field.h));
    let closed = close(&open(&field.h));
    let landmarks: Vec<LandmarkResidual> = landmarks
        .iter()
        .map(|lm| field.landmark_residual(scene, lm, landmarks, &frame, &opened, &closed, opts))
        .collect();
    let nose_prominence_mm = landmarks
        .iter()
        .find(|l| l.name == "nose_tip")
        .map(|l| l.protrusion_mm);
    let max_relief_mm = landmarks.iter().map(|l| l.relief_mm).fold(0.0, f64::max);
    Residuals {
        nose_prominence_mm,
        max_relief_mm,
        large_relief_mm: opts.large_relief_mm,
        large_residual: large_residual(&landmarks, opts.large_relief_mm, opts.eye_hollows_count),
        eye_hollows_counted: opts.eye_hollows_count,
        landmarks,
    }
}

/// See [`Residuals::large_residual`].
fn large_residual(landmarks: &[LandmarkResidual], large_mm: f64, eyes_count: bool) -> bool {
    let (eyes, others): (Vec<_>, Vec<_>) = landmarks
        .iter()
        .partition(|l| matches!(Feature::of(&l.name), Feature::Hollow));
    let eyes_remain = match eyes.len() {
        _ if !eyes_count => false,
        0 => false,
        1 => eyes[0].relief_mm >= large_mm,
        _ => eyes.iter().all(|l| l.relief_mm >= large_mm),
    };
    eyes_remain || others.iter().any(|l| l.relief_mm >= large_mm)
}

/// An orthonormal frame on the face: `right` towards the subject's right eye, `up` from chin to
/// eyes, `forward` out of the face; `centre` is the landmarks' centroid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FaceFrame {
    centre: [f64; 3],
    right: [f64; 3],
    up: [f64; 3],
    forward: [f64; 3],
}

impl FaceFrame {
    /// From the eyes and the chin if present; otherwise the world's axes (RAS: right +x,
    /// up +z, forward +y), which is how a render's front view sees a head.
    fn from_landmarks(landmarks: &[Landmark]) -> Option<Self> {
        if landmarks.is_empty() {
            return None;
        }
        let n = landmarks.len() as f64;
        let centre = [0, 1, 2].map(|a| landmarks.iter().map(|l| l.world_mm[a]).sum::<f64>() / n);
        let find = |name: &str| {
            landmarks
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.world_mm)
        };
        let world = FaceFrame {
            centre,
            right: [1.0, 0.0, 0.0],
            up: [0.0, 0.0, 1.0],
            forward: [0.0, 1.0, 0.0],
        };
        let (Some(l), Some(r), Some(c)) = (find("eye_left"), find("eye_right"), find("chin"))
        else {
            return Some(world);
        };
        let right = normalize(sub(r, l));
        let eyes = [0, 1, 2].map(|a| 0.5 * (l[a] + r[a]));
        let up_raw = sub(eyes, c);
        let up = normalize(sub(up_raw, scale(right, dot(up_raw, right))));
        // RAS is right-handed: anterior = superior × right.
        let forward = cross(up, right);
        if [right, up, forward]
            .iter()
            .any(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Some(world);
        }
        Some(FaceFrame {
            centre,
            right,
            up,
            forward,
        })
    }

    /// (u, v, w): coordinates along right, up, forward relative to the centre.
    fn local(&self, p: [f64; 3]) -> [f64; 3] {
        let d = sub(p, self.centre);
        [dot(d, self.right), dot(d, self.up), dot(d, self.forward)]
    }

    fn world(&self, u: f64, v: f64, w: f64) -> [f64; 3] {
        [0, 1, 2].map(|a| self.centre[a] + u * self.right[a] + v * self.up[a] + w * self.forward[a])
    }
}

/// Steepest slope (height change per mm across the face plane) that still joins two points of
/// the skin into one surface: 3 (72°). A nose's flanks, lips and orbits are less steep; where a
/// surface hides another from the front the height jumps by far more.
const MAX_SLOPE: f64 = 3.0;

/// Per point, a bitset over the (2r+1)² window around it: its neighbourhood.
struct Neighbourhoods {
    r: isize,
    side: usize,
    words: usize,
    bits: Vec<u64>,
}

/// The skin's height `w` (mm, along the face frame's forward axis) on a square grid of the face
/// plane; NaN where the front ray meets no skin or meets bone.
struct HeightField {
    u0: f64,
    v0: f64,
    step: f64,
    nu: usize,
    nv: usize,
    h: Vec<f32>,
    /// The skin here faces the front of the face (see [`FACING_FRONT`]).
    front: Vec<bool>,
}

/// Skin is measured where its outward normal is within 50° of the face's forward axis (cos 50°):
/// the nose, lips, eye sockets and chin face forward; the sides of the head, and the skin left
/// beside a cut that falls away to them, face sideways.
const FACING_FRONT: f64 = 0.64;

impl HeightField {
    /// Casts one ray per grid point along −forward, over the landmarks' extent plus the
    /// measuring radius and the two disc passes of the plain face.
    fn cast(
        scene: &SkinScene,
        frame: &FaceFrame,
        landmarks: &[Landmark],
        opts: &ResidualOptions,
    ) -> Self {
        let step = scene.grid().spacing.max(1.0);
        let (mut lo, mut hi) = face_box(frame, landmarks, opts);
        let margin = 2.0 * opts.plain_face_radius_mm + step;
        for a in 0..2 {
            lo[a] -= margin;
            hi[a] += margin;
        }
        let nu = ((hi[0] - lo[0]) / step).ceil() as usize + 1;
        let nv = ((hi[1] - lo[1]) / step).ceil() as usize + 1;
        let framing = scene.framing();
        // Far enough out that every ray starts in front of the whole head.
        let start = 2.0 * framing.radius + norm(sub(framing.centre, frame.centre));
        let dir = scale(frame.forward, -1.0);
        let h = (0..nu * nv)
            .into_par_iter()
            .map(|n| {
                let (u, v) = (
                    lo[0] + (n % nu) as f64 * step,
                    lo[1] + (n / nu) as f64 * step,
                );
                let origin = frame.world(u, v, start);
                match scene.cast(origin, dir, 2.0 * start) {
                    Some(hit) if is_soft(scene, hit.point, hit.normal, opts.bone_level) => (
                        (start - hit.distance) as f32,
                        dot(hit.normal, frame.forward) >= FACING_FRONT,
                    ),
                    _ => (f32::NAN, false),
                }
            })
            .collect::<Vec<_>>();
        let front = h.iter().map(|x| x.1).collect();
        let h = h.into_iter().map(|x| x.0).collect();
        HeightField {
            u0: lo[0],
            v0: lo[1],
            step,
            nu,
            nv,
            h,
            front,
        }
    }

    /// For every point with skin, which points of the square window of half-size
    /// `radius_mm` belong to its neighbourhood: within `radius_mm` in the face plane *and*
    /// reachable over skin without a jump in height of more than [`MAX_SLOPE`] per mm. The jump
    /// is where one surface hides another from the front (a chin over the neck, the edge of a
    /// cut over what lies behind it): the plain face is made of one continuous surface, so the
    /// neck neither lowers the chin nor bone or air beside a patch of skin changes it.
    fn neighbourhoods(&self, radius_mm: f64) -> Neighbourhoods {
        let r = (radius_mm / self.step).floor() as isize;
        let side = (2 * r + 1) as usize;
        let r2 = (radius_mm / self.step).powi(2);
        let max_jump = (MAX_SLOPE * self.step) as f32;
        let (nu, nv) = (self.nu as isize, self.nv as isize);
        let words = (side * side).div_ceil(64);
        let bits: Vec<u64> = (0..self.nu * self.nv)
            .into_par_iter()
            .map_init(
                || (vec![0u64; words], Vec::new()),
                |(seen, queue), n| {
                    seen.iter_mut().for_each(|w| *w = 0);
                    if self.h[n].is_nan() {
                        return seen.clone();
                    }
                    let (u, v) = ((n % self.nu) as isize, (n / self.nu) as isize);
                    let bit = |du: isize, dv: isize| ((dv + r) as usize) * side + (du + r) as usize;
                    queue.clear();
                    queue.push((0isize, 0isize));
                    seen[bit(0, 0) / 64] |= 1 << (bit(0, 0) % 64);
                    while let Some((du, dv)) = queue.pop() {
                        let here = self.h[((v + dv) * nu + u + du) as usize];
                        for (eu, ev) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                            let (au, av) = (du + eu, dv + ev);
                            let (a, b) = (u + au, v + av);
                            if a < 0 || b < 0 || a >= nu || b >= nv {
                                continue;
                            }
                            if (au * au + av * av) as f64 > r2 {
                                continue;
                            }
                            let k = bit(au, av);
                            if seen[k / 64] >> (k % 64) & 1 == 1 {
                                continue;
                            }
                            let there = self.h[(b * nu + a) as usize];
                            if there.is_nan() || (there - here).abs() > max_jump {
                                continue;
                            }
                            seen[k / 64] |= 1 << (k % 64);
                            queue.push((au, av));
                        }
                    }
                    seen.clone()
                },
            )
            .flatten()
            .collect();
        Neighbourhoods {
            r,
            side,
            words,
            bits,
        }
    }

    /// Minimum (`take_max` false) or maximum of `f` over each point's neighbourhood; NaN
    /// without skin.
    fn rank(&self, hoods: &Neighbourhoods, f: &[f32], take_max: bool) -> Vec<f32> {
        let (r, side) = (hoods.r, hoods.side);
        (0..self.nu * self.nv)
            .into_par_iter()
            .map(|n| {
                let (u, v) = ((n % self.nu) as isize, (n / self.nu) as isize);
                let mut best = f32::NAN;
                let words = &hoods.bits[n * hoods.words..(n + 1) * hoods.words];
                for (w, &word) in words.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        let k = w * 64 + word.trailing_zeros() as usize;
                        word &= word - 1;
                        let (du, dv) = ((k % side) as isize - r, (k / side) as isize - r);
                        let x = f[((v + dv) * self.nu as isize + u + du) as usize];
                        if x.is_nan() {
                            continue;
                        }
                        if best.is_nan() || (take_max && x > best) || (!take_max && x < best) {
                            best = x;
                        }
                    }
                }
                best
            })
            .collect()
    }

    /// The residual of `lm`: relief of the skin within the landmark radius of it, in the face
    /// plane and in depth (the lowest landmark's area reaches [`LOWER_FACE_MM`] further down).
    #[allow(clippy::too_many_arguments)]
    fn landmark_residual(
        &self,
        scene: &SkinScene,
        lm: &Landmark,
        all: &[Landmark],
        frame: &FaceFrame,
        opened: &[f32],
        closed: &[f32],
        opts: &ResidualOptions,
    ) -> LandmarkResidual {
        let [lu, lv, lw] = frame.local(lm.world_mm);
        let lowest = all
            .iter()
            .map(|l| frame.local(l.world_mm)[1])
            .fold(f64::INFINITY, f64::min);
        let reach_down = if lv <= lowest { LOWER_FACE_MM } else { 0.0 };
        let radius = opts.landmark_radius_mm;
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let (mut near_skin, mut scanned) = (0usize, 0usize);
        for v in 0..self.nv {
            for u in 0..self.nu {
                let (pu, pv) = (
                    self.u0 + u as f64 * self.step,
                    self.v0 + v as f64 * self.step,
                );
                // Distance in the face plane to the segment from the landmark down by reach_down.
                let dv = if pv > lv {
                    pv - lv
                } else if pv < lv - reach_down {
                    lv - reach_down - pv
                } else {
                    0.0
                };
                if (pu - lu).powi(2) + dv * dv > radius * radius {
                    continue;
                }
                if [lw - BEHIND_MM, lw, lw + radius]
                    .iter()
                    .any(|&w| scene.grid().is_scanned(frame.world(pu, pv, w)))
                {
                    scanned += 1;
                }
                let n = v * self.nu + u;
                let h = self.h[n];
                // Skin of the face lies on or in front of the mapped feature (a nose tip, the
                // front of an eyeball); what a cut leaves lies behind it.
                if h.is_nan() || (h as f64) < lw - BEHIND_MM || (h as f64) > lw + radius {
                    continue;
                }
                near_skin += 1;
                if !self.front[n] {
                    continue;
                }
                up.push((h - opened[n]).max(0.0));
                down.push((closed[n] - h).max(0.0));
            }
        }
        let pixel_area = self.step * self.step;
        let keep = (opts.min_feature_area_mm2 / pixel_area).ceil().max(1.0) as usize;
        let disc_area = std::f64::consts::PI * radius * radius;
        let protrusion_mm = reached_by(&mut up, keep);
        let depression_mm = reached_by(&mut down, keep);
        let scanned_area_mm2 = scanned as f64 * pixel_area;
        LandmarkResidual {
            name: lm.name.clone(),
            world_mm: lm.world_mm,
            radius_mm: radius,
            skin_area_mm2: near_skin as f64 * pixel_area,
            protrusion_mm,
            depression_mm,
            // A face has skin all around its features; what a cut leaves near a landmark is a
            // few patches, whose edges are no feature.
            relief_mm: if (near_skin as f64 * pixel_area) < MIN_SKIN_FRACTION * disc_area {
                0.0
            } else {
                match Feature::of(&lm.name) {
                    Feature::Hollow => depression_mm,
                    Feature::Protruding => protrusion_mm,
                    Feature::Either => protrusion_mm.max(depression_mm),
                }
            },
            scanned_area_mm2,
            in_view: scanned_area_mm2 >= MIN_SKIN_FRACTION * disc_area,
        }
    }
}

/// The face area measured, in face-plane coordinates (u, v): the landmarks' extent plus the
/// landmark radius, reaching [`LOWER_FACE_MM`] further below the lowest landmark.
fn face_box(
    frame: &FaceFrame,
    landmarks: &[Landmark],
    opts: &ResidualOptions,
) -> ([f64; 2], [f64; 2]) {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for l in landmarks {
        let p = frame.local(l.world_mm);
        for a in 0..2 {
            lo[a] = lo[a].min(p[a] - opts.landmark_radius_mm);
            hi[a] = hi[a].max(p[a] + opts.landmark_radius_mm);
        }
    }
    lo[1] -= LOWER_FACE_MM;
    (lo, hi)
}

/// The share of the landmark's disc (in the face plane) that must be skin for its relief to
/// count: intact faces show 50–100 % (less where the field of view or the coil ends), cuts
/// leave patches.
const MIN_SKIN_FRACTION: f64 = 1.0 / 3.0;

/// How far behind a landmark skin is still measured, mm: about the template fit's error in
/// depth (mapped eyes and nose tips land within about 10 mm of the real ones).
const BEHIND_MM: f64 = 10.0;

/// How far below the lowest landmark the face area reaches, mm. The template's lower face is an
/// average of many chins and mouths and comes out short: mapped into real heads its chin lands
/// up to about 40 mm above the real one, its upper lip about 20 mm.
const LOWER_FACE_MM: f64 = 40.0;

/// Which way a landmark's feature stands out of the plain face.
enum Feature {
    Hollow,
    Protruding,
    Either,
}

impl Feature {
    fn of(name: &str) -> Self {
        if name.starts_with("eye") {
            Feature::Hollow
        } else if ["nose", "lip", "chin"].iter().any(|f| name.contains(f)) {
            Feature::Protruding
        } else {
            Feature::Either
        }
    }
}

/// The largest value that at least `count` of `values` reach (0 if there are fewer).
fn reached_by(values: &mut [f32], count: usize) -> f64 {
    if values.len() < count {
        return 0.0;
    }
    values.sort_by(|a, b| b.total_cmp(a));
    values[count - 1] as f64
}

/// Whether the surface at `point` is skin over soft tissue rather than exposed bone: the tissue
/// 1 and 2 mm beneath it stays below `bone_level`.
fn is_soft(scene: &SkinScene, point: [f64; 3], normal: [f64; 3], bone_level: Option<f32>) -> bool {
    let Some(bone) = bone_level else {
        return true;
    };
    [1.0, 2.0]
        .iter()
        .all(|&d| scene.grid().sample(add(point, scale(normal, -d))) < bone)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    a.map(|x| x * s)
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
fn normalize(a: [f64; 3]) -> [f64; 3] {
    scale(a, 1.0 / norm(a))
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, relief_mm: f64) -> LandmarkResidual {
        LandmarkResidual {
            name: name.into(),
            world_mm: [0.0; 3],
            radius_mm: 20.0,
            skin_area_mm2: 500.0,
            protrusion_mm: 0.0,
            depression_mm: relief_mm,
            relief_mm,
            scanned_area_mm2: 1200.0,
            in_view: true,
        }
    }

    #[test]
    fn two_eye_hollows_are_a_face_only_when_they_count() {
        let eyes = [
            at("eye_left", 8.0),
            at("eye_right", 12.0),
            at("nose_tip", 0.0),
        ];
        assert!(large_residual(&eyes, 6.0, true));
        assert!(!large_residual(&eyes, 6.0, false));
        // one hollow alone never is
        let one = [at("eye_left", 8.0), at("eye_right", 2.0)];
        assert!(!large_residual(&one, 6.0, true));
        // a nose is, whether or not hollows count
        let nose = [at("eye_left", 0.0), at("nose_tip", 9.0)];
        assert!(large_residual(&nose, 6.0, false));
    }
}
