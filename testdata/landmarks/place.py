#!/usr/bin/env python3
"""Ground-truth anatomical landmarks for the real head volumes used by the tests.

The landmarks are recorded in WORLD coordinates: RAS+ millimetres, the NIfTI/nibabel
convention (world = affine @ [i, j, k, 1]; +x = subject's Right, +y = Anterior,
+z = Superior).  World coordinates do not depend on the voxel grid, so a reader that
gets the geometry right finds the nose tip at the same world point whether it reads
the NIfTI file, the DICOM series, or a resampled copy.

How the landmarks were made (see README.md):

1. Every volume is loaded with its own geometry:
   - NIfTI: nibabel's affine (sform if sform_code > 0, else qform).
   - DICOM series with one regular grid: converted with dcm2niix, then nibabel's affine.
   - The gantry-tilted GE CT (uneven slice pitch, tilted slices): NO single affine
     describes it, so world coordinates are computed slice by slice from the DICOM
     ImagePositionPatient / ImageOrientationPatient / PixelSpacing (LPS -> RAS by
     negating x and y).  dcm2niix's affines for this series are compared and reported.
2. Each volume is resampled (trilinear) onto a 1 mm grid aligned with the world axes, so
   that "anterior" means +y and slices shown are true axial / coronal / sagittal planes.
3. Automatic proposals (`propose`): head mask (threshold + largest component + hole
   filling); nose tip = most anterior head voxel near the midline; chin = most
   anterior head voxel below the mouth; tragus = most lateral/anterior skin near the
   ear canal level; eye centres = centroid of the globe's vitreous (intensity window)
   grown from a seed; brain points from the brain mask (ch2bet) where one exists.
4. A person looked at slice images (`render`) through every landmark, with the point
   marked by a cross, and corrected the coordinates by hand.  The final, checked values
   are the table LANDMARKS below; `write` turns them into <name>.json and runs sanity
   checks (`check`).

Usage:
    python3 place.py --data DIR overview NAME          # mid-slice overview PNG
    python3 place.py --data DIR render NAME [LANDMARK]  # PNGs through landmark(s)
    python3 place.py --data DIR propose NAME            # automatic proposals
    python3 place.py --data DIR write [NAME ...]        # JSON + sanity checks
DIR is the folder of real volumes (default: $DEFACER_DATA, else testdata/real).
PNGs go to --out (default: a fresh temporary folder); they are not committed.

Needs: numpy, scipy, nibabel, pydicom, matplotlib; dcm2niix on PATH.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# Volumes
# ---------------------------------------------------------------------------

# kind: "nifti" = read the file; "dcm2niix" = convert the DICOM folder, read the NIfTI;
# "dicom_slices" = per-slice DICOM geometry (tilted / uneven stacks).
# head_threshold: intensity (stored * slope + inter) separating head from air, chosen
# from the histogram of each volume (air mode vs. soft-tissue mode) and checked on slices.
VOLUMES = {
    "ch2": {"path": "mri/ch2.nii.gz", "kind": "nifti", "head_threshold": 25},
    "t2w_partial_face": {"path": "mri/t2w_partial_face.nii.gz", "kind": "nifti",
                         "head_threshold": 100},
    "invesalius_ct": {"path": "ct/invesalius_ct.nii.gz", "kind": "nifti",
                      "head_threshold": -300},
    "philips_mprage_t1": {"path": "mri/philips_mprage_t1", "kind": "dcm2niix",
                          "head_threshold": 8000},
    "siemens_t1_2d_hfs": {"path": "mri/siemens_t1_2d_hfs", "kind": "dcm2niix",
                          "head_threshold": 150},
    "siemens_t1_2d_hfp": {"path": "mri/siemens_t1_2d_hfp", "kind": "dcm2niix",
                          "head_threshold": 150},
    "invesalius_ct_dicom": {"path": "ct/invesalius_ct_dicom", "kind": "dcm2niix",
                            "head_threshold": -300},
    "ge_tilted_ct": {"path": "ct/ge_tilted_ct", "kind": "dicom_slices",
                     "head_threshold": -300},
}

LANDMARK_NAMES = [
    "nose_tip", "eye_left", "eye_right", "upper_lip", "chin", "tragus_left",
    "tragus_right", "frontal_pole", "temporal_pole_left", "temporal_pole_right",
    "cerebellum",
]
# Points recorded only where a head has the structure (a defect of the skull); every other
# point is placed or marked absent on every head. Brain points: the removal keeps the margin.
OPTIONAL_NAMES = ["brain_under_defect"]
SKIN = {"nose_tip", "upper_lip", "chin", "tragus_left", "tragus_right"}
BRAIN = {"frontal_pole", "temporal_pole_left", "temporal_pole_right", "cerebellum"}


class Loaded:
    """A volume's intensities plus its exact voxel <-> world maps."""

    def __init__(self, name, data, vox2world, world2vox, used, note=""):
        self.name = name
        self.data = data  # float32, rescaled (HU for CT)
        self.vox2world = vox2world  # (N,3) voxel -> (N,3) RAS mm
        self.world2vox = world2vox  # (N,3) RAS mm -> (N,3) fractional voxel
        self.used = used  # which file the "voxel" indices refer to
        self.note = note


def _affine_maps(affine):
    inv = np.linalg.inv(affine)

    def v2w(ijk):
        ijk = np.atleast_2d(np.asarray(ijk, float))
        return ijk @ affine[:3, :3].T + affine[:3, 3]

    def w2v(xyz):
        xyz = np.atleast_2d(np.asarray(xyz, float))
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    return v2w, w2v


def _load_nifti(name, path, used):
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    v2w, w2v = _affine_maps(img.affine)
    return Loaded(name, data, v2w, w2v, used)


def _dcm2niix(folder, workdir):
    out = os.path.join(workdir, os.path.basename(folder.rstrip("/")))
    os.makedirs(out, exist_ok=True)
    if not glob.glob(os.path.join(out, "*.nii.gz")):
        subprocess.run(["dcm2niix", "-z", "y", "-f", "%s", "-o", out, folder],
                       check=True, stdout=subprocess.DEVNULL)
    files = sorted(glob.glob(os.path.join(out, "*.nii.gz")))
    # dcm2niix adds _Tilt / _Eq suffixes for corrected copies; the plain one keeps the
    # DICOM voxels untouched.
    plain = [f for f in files if "_Tilt" not in f and "_Eq" not in f]
    return plain[0], files


def _load_dicom_slices(name, folder, workdir):
    """Per-slice DICOM geometry; voxel indices are reported in dcm2niix's plain NIfTI.

    dcm2niix keeps the DICOM slice order here and flips the row axis (j_nifti =
    rows-1-row), which `load` verifies on the pixel data.
    """
    import pydicom

    dss = [pydicom.dcmread(f) for f in sorted(glob.glob(os.path.join(folder, "*")))]
    dss.sort(key=lambda d: int(d.InstanceNumber))
    iop = np.array([float(v) for v in dss[0].ImageOrientationPatient])
    xdir, ydir = iop[:3], iop[3:]
    normal = np.cross(xdir, ydir)
    for d in dss:
        if not np.allclose([float(v) for v in d.ImageOrientationPatient], iop, atol=1e-4):
            raise SystemExit(f"{folder}: slices differ in orientation")
    ps = np.array([float(v) for v in dss[0].PixelSpacing])  # row spacing, column spacing
    ipp = np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])
    rows, cols = int(dss[0].Rows), int(dss[0].Columns)
    # data[i=column, j_nifti, k]
    data = np.stack([(d.pixel_array.astype(np.float32) * float(d.RescaleSlope)
                      + float(d.RescaleIntercept)).T[:, ::-1] for d in dss], axis=2)
    s_of_slice = ipp @ normal
    if np.any(np.diff(s_of_slice) <= 0):
        raise SystemExit(f"{folder}: slices not ordered along the normal")
    lps2ras = np.array([-1.0, -1.0, 1.0])

    def v2w(ijk):
        ijk = np.atleast_2d(np.asarray(ijk, float))
        i, jn, k = ijk[:, 0], ijk[:, 1], ijk[:, 2]
        row = (rows - 1) - jn
        # in-plane position within a slice; the slice's IPP is interpolated linearly in
        # fractional k (exact at integer k, which is all the recorded voxels use).
        k0 = np.clip(np.floor(k).astype(int), 0, len(dss) - 2)
        f = (k - k0)[:, None]
        p0 = ipp[k0] * (1 - f) + ipp[k0 + 1] * f
        lps = p0 + i[:, None] * ps[1] * xdir + row[:, None] * ps[0] * ydir
        return lps * lps2ras

    def w2v(xyz):
        xyz = np.atleast_2d(np.asarray(xyz, float))
        lps = xyz * lps2ras
        s = lps @ normal
        k = np.interp(s, s_of_slice, np.arange(len(dss)), left=-1e9, right=1e9)
        k0 = np.clip(np.floor(k).astype(int), 0, len(dss) - 2)
        f = np.clip(k - k0, 0, 1)[:, None]
        p0 = ipp[k0] * (1 - f) + ipp[k0 + 1] * f
        d = lps - p0
        i = d @ xdir / ps[1]
        row = d @ ydir / ps[0]
        return np.stack([i, (rows - 1) - row, k], axis=1)

    plain, files = _dcm2niix(folder, workdir)
    ref = np.asarray(nib.load(plain).dataobj)
    raw = np.stack([d.pixel_array.T[:, ::-1] for d in dss], axis=2)
    if ref.shape != raw.shape or not np.array_equal(ref, raw):
        raise SystemExit(f"{plain}: dcm2niix voxels are not the DICOM voxels with rows flipped")
    note = compare_dcm2niix_tilt(v2w, data.shape, files)
    used = (f"dcm2niix plain output of the series ({os.path.basename(plain)}, same voxels "
            "as the DICOM files, row axis flipped); world from per-slice DICOM geometry")
    return Loaded(name, data, v2w, w2v, used, note)


def compare_dcm2niix_tilt(v2w, shape, files):
    """Report how far dcm2niix's affines put voxels from the DICOM-defined position."""
    lines = []
    for f in files:
        img = nib.load(f)
        if img.shape != shape:
            lines.append(f"{os.path.basename(f)}: resampled copy {img.shape}, not compared "
                         "voxel-by-voxel")
            continue
        g = np.stack(np.meshgrid(*[np.linspace(0, n - 1, 5) for n in shape],
                                 indexing="ij"), -1).reshape(-1, 3)
        truth = v2w(g)
        for label, aff in (("sform", img.get_sform()), ("qform", img.get_qform())):
            w = g @ aff[:3, :3].T + aff[:3, 3]
            err = np.linalg.norm(w - truth, axis=1)
            lines.append(f"{os.path.basename(f)} {label}: max {err.max():.1f} mm, "
                         f"median {np.median(err):.1f} mm from the DICOM geometry")
    return "; ".join(lines)


_CACHE = {}


def load(name, data_root, workdir):
    if name in _CACHE:
        return _CACHE[name]
    spec = VOLUMES[name]
    path = os.path.join(data_root, spec["path"])
    if spec["kind"] == "nifti":
        vol = _load_nifti(name, path, spec["path"])
    elif spec["kind"] == "dcm2niix":
        plain, _ = _dcm2niix(path, workdir)
        vol = _load_nifti(name, plain, f"dcm2niix -z y -f %s output ({os.path.basename(plain)})")
    else:
        vol = _load_dicom_slices(name, path, workdir)
    _CACHE[name] = vol
    return vol


# ---------------------------------------------------------------------------
# World grid
# ---------------------------------------------------------------------------

class WorldGrid:
    """The volume resampled onto a 1 mm grid aligned with RAS (index = world - origin)."""

    def __init__(self, vol, step=1.0):
        shp = np.array(vol.data.shape)
        corners = np.array([[a, b, c] for a in (0, shp[0] - 1) for b in (0, shp[1] - 1)
                            for c in (0, shp[2] - 1)], float)
        w = vol.vox2world(corners)
        self.origin = np.floor(w.min(0))
        self.step = step
        n = (np.ceil((w.max(0) - self.origin) / step) + 1).astype(int)
        axes = [self.origin[d] + step * np.arange(n[d]) for d in range(3)]
        g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        vox = vol.world2vox(g).T
        self.data = ndimage.map_coordinates(vol.data, vox, order=1, mode="constant",
                                            cval=np.nan).reshape(n).astype(np.float32)
        self.shape = tuple(n)

    def to_index(self, ras):
        return np.round((np.asarray(ras, float) - self.origin) / self.step).astype(int)

    def to_world(self, idx):
        return self.origin + self.step * np.asarray(idx, float)

    def value(self, ras):
        idx = self.to_index(ras)
        if np.any(idx < 0) or np.any(idx >= self.shape):
            return np.nan
        return float(self.data[tuple(idx)])


def head_mask(grid, thr):
    m = np.nan_to_num(grid.data, nan=-1e9) > thr
    m = ndimage.binary_opening(m, iterations=1)
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = ndimage.sum(m, lab, range(1, n + 1))
    m = lab == (1 + int(np.argmax(sizes)))
    # fill internal dark regions (sinuses, airway, CSF in T1) slice by slice
    for z in range(m.shape[2]):
        m[:, :, z] = ndimage.binary_fill_holes(m[:, :, z])
    return m


# ---------------------------------------------------------------------------
# Checked landmark table (world RAS mm).  Filled in after looking at the PNGs.
# Each entry: {"ras": [x, y, z], "how": "..."} or {"absent": "reason"}.
# ---------------------------------------------------------------------------

LANDMARKS = {
    "ch2": {
        "nose_tip": {"absent": "the field of view ends on the nasal dorsum: tissue reaches "
                     "the anterior edge (y=+91) from z=-57 down to the inferior edge "
                     "(z=-71), so the pronasale lies outside"},
        "eye_left": {"ras": [-33.2, 59.3, -38.5],
                     "how": "centroid of the dark vitreous (T1 0..80) grown from a seed "
                            "within 14 mm; checked on axial/coronal/sagittal slices: the "
                            "globe spans x -46..-20, y 47..72, z -50..-27"},
        "eye_right": {"ras": [33.1, 59.4, -38.7],
                      "how": "as eye_left; globe spans x 20..46, y 47..72, z -50..-27"},
        "upper_lip": {"absent": "below the field of view (ends at z=-71 on the nose)"},
        "chin": {"absent": "below the field of view (ends at z=-71 on the nose)"},
        "tragus_left": {"ras": [-86.0, -21.0, -50.0],
                        "how": "skin of the tragus at the anterior rim of the ear-canal "
                               "opening (air of the concha/meatus posterior to it on "
                               "sagittal x=-86 and axial z=-50); the average head's "
                               "auricle is blurred and the lateral edge is x=-90"},
        "tragus_right": {"ras": [86.0, -19.0, -50.0],
                         "how": "as tragus_left, sagittal x=86, axial z=-50"},
        "frontal_pole": {"ras": [14.0, 73.0, 5.0],
                         "how": "most anterior voxel of ch2bet>0 (y=73 for x 12..17, "
                                "z 2..8; this one in the middle); on the cortical surface "
                                "under the frontal bone on axial/sagittal slices"},
        "temporal_pole_left": {"ras": [-36.0, 26.0, -30.0],
                               "how": "most anterior ch2bet>0 voxel of the temporal lobe "
                                      "(y=26 at z -28..-30, x -41..-35; z -40..-28, "
                                      "|x|>25, below the orbitofrontal cortex); tip "
                                      "checked on axial z=-32 and sagittal x=-37"},
        "temporal_pole_right": {"ras": [37.0, 26.0, -33.0],
                                "how": "as temporal_pole_left (y=26 at z -37..-28, "
                                       "x 33..45); axial z=-32, sagittal x=38"},
        "cerebellum": {"ras": [-25.0, -78.0, -42.0],
                       "how": "inside the left cerebellar hemisphere, inferior-posterior "
                              "part, ~6 mm inside its surface; checked on three planes"},
    },
    "philips_mprage_t1": {
        "nose_tip": {"ras": [-1.0, 120.0, -22.0],
                     "how": "most anterior head voxel (threshold 8000) for x -8..5, "
                            "z -40..0 (y=120 at x -2..1, z -23..-21); sagittal x=-1 and "
                            "axial z=-22"},
        "eye_left": {"ras": [-31.7, 65.5, 11.0],
                     "how": "centroid of the dark vitreous (2000..11000) grown from a "
                            "seed within 14 mm; globe x -43..-20, y 54..77, z 0..22 on "
                            "three planes"},
        "eye_right": {"ras": [29.0, 65.8, 10.0],
                      "how": "as eye_left; globe x 18..40, y 54..77, z -1..21"},
        "upper_lip": {"ras": [-2.0, 106.0, -52.0],
                      "how": "upper-lip vermilion above the stomion (z=-58) and in front "
                             "of the upper incisors; the lip profile is flat (y=106 "
                             "from z=-55 to -42), point taken 6 mm above the stomion; "
                             "sagittal x=-2, coronal y=106"},
        "chin": {"ras": [-2.0, 103.0, -95.0],
                 "how": "most anterior skin of the chin in front of the mandibular "
                        "symphysis (y=103 for z -102..-88, middle taken); faint signal "
                        "(coil edge); coronal y=103 and axial z=-95"},
        "tragus_left": {"ras": [-71.0, 4.0, -13.0],
                        "how": "posterior skin of the tragus at the ear-canal entrance "
                               "(air of the canal/concha at y<=2), lateral edge x=-73; "
                               "axial z=-13, sagittal x=-68"},
        "tragus_right": {"ras": [70.0, 4.0, -15.0],
                         "how": "as tragus_left: tissue edge y=4..5 for x 66..71, canal "
                                "air at y 1..3; axial z=-15, sagittal x=66"},
        "frontal_pole": {"ras": [8.0, 76.0, 38.0],
                         "how": "most anterior cortex: walking +y through brain tissue "
                                "(>22000) stops at y=76 for x 6..10, z 33..44 (left "
                                "hemisphere: 74); under the large frontal sinus; axial "
                                "z=38, sagittal x=8"},
        "temporal_pole_left": {"ras": [-39.0, 31.0, 1.0],
                               "how": "anterior tip of the temporal lobe in the middle "
                                      "cranial fossa (below the orbital roof, lateral to "
                                      "the orbit); sagittal x=-40..-36, axial z=1"},
        "temporal_pole_right": {"ras": [35.0, 33.0, 2.0],
                                "how": "as temporal_pole_left; sagittal x=34..38, "
                                       "coronal y=33"},
        "cerebellum": {"ras": [-25.0, -59.0, -11.0],
                       "how": "left cerebellar hemisphere, ~8 mm inside its "
                              "inferior-posterior surface (surface at y=-65, z=-17 on "
                              "sagittal x=-25)"},
    },
    "siemens_t1_2d_hfs": {
        "nose_tip": {"absent": "cut by the anterior edge of the field of view: the nose "
                     "reaches the last row (y=+129; the edge row y=+130 is zero) from "
                     "z=-62 to -90 on sagittal x=-4.8..4.8; from the prone scan of the "
                     "same man the tip would be near y=+134"},
        "eye_left": {"ras": [-32.7, 82.1, -38.7],
                     "how": "centroid of the dark vitreous (200..450) grown from a seed "
                            "within 14 mm; checked on three planes (x resolution 4.8 mm)"},
        "eye_right": {"ras": [31.2, 82.2, -40.1],
                      "how": "as eye_left"},
        "upper_lip": {"ras": [0.0, 119.0, -106.0],
                      "how": "upper-lip skin 6 mm above the stomion (profile notch at "
                             "z=-112) on the mid-sagittal slice x=0 (y=119 from z=-108 to "
                             "-92); coronal y=119"},
        "chin": {"absent": "below the field of view (ends at z=-129, just under the "
                           "lower lip)"},
        "tragus_left": {"ras": [-72.0, 16.0, -66.0],
                        "how": "anterior wall of the concha / ear-canal entrance on "
                               "sagittal x=-72 (air y 9..15, tissue from y=16); axial "
                               "z=-66. The auricle's lateral rim is cut at x=-81.6"},
        "tragus_right": {"ras": [72.0, 12.0, -70.0],
                         "how": "as tragus_left on sagittal x=72 (air y 5..10, tissue from "
                                "y=11..12); axial z=-70"},
        "frontal_pole": {"ras": [-9.6, 95.0, -4.0],
                         "how": "left frontal lobe: last voxel above 330 (half-way GM to "
                                "CSF) walking +y; the front of the brain is flat to 1 mm "
                                "over z -12..4 at x=-14.4..-4.8, so z is uncertain by about "
                                "8 mm; sagittal x=-9.6"},
        "temporal_pole_left": {"ras": [-38.4, 50.0, -42.0],
                               "how": "anterior tip of the temporal lobe against the "
                                      "sphenoid on sagittal x=-38.4 and axial z=-42"},
        "temporal_pole_right": {"ras": [38.4, 48.0, -42.0],
                                "how": "as temporal_pole_left, sagittal x=38.4"},
        "cerebellum": {"ras": [-24.0, -50.0, -62.0],
                       "how": "left cerebellar hemisphere, ~6 mm inside its "
                              "posterior-inferior surface on sagittal x=-24"},
    },
    "siemens_t1_2d_hfp": {
        "nose_tip": {"ras": [4.8, 87.0, -80.0],
                     "how": "most anterior head voxel (threshold 150) for x -5..20, "
                            "z -95..-60: y=87 for x 0..9, z -82..-77; sagittal x=4.8 "
                            "(the head's midline is x~7.5, between slices)"},
        "eye_left": {"ras": [-24.2, 33.6, -28.2],
                     "how": "centroid of the dark vitreous (200..450) grown from a seed "
                            "within 14 mm; checked on three planes"},
        "eye_right": {"ras": [39.3, 37.3, -30.6],
                      "how": "as eye_left (the head is turned ~3 degrees: right eye 4 mm "
                             "more anterior)"},
        "upper_lip": {"ras": [4.8, 68.0, -98.0],
                      "how": "upper-lip skin 6 mm above the stomion (profile notch at "
                             "z=-104), y=68 for z -100..-96; sagittal x=4.8, coronal y=68"},
        "chin": {"absent": "below the field of view (ends at z=-129, under the lower "
                           "lip)"},
        "tragus_left": {"ras": [-62.4, -39.0, -50.0],
                        "how": "anterior wall of the concha / ear-canal entrance on "
                               "sagittal x=-62.4 (air y -44..-41, tissue from y=-40); "
                               "axial z=-50"},
        "tragus_right": {"ras": [76.8, -33.0, -50.0],
                         "how": "as tragus_left on sagittal x=76.8 (air y -37..-35); the "
                                "auricle is cut by the lateral edge x=81.6"},
        "frontal_pole": {"ras": [-4.8, 51.0, 6.0],
                         "how": "left frontal lobe, as in the supine scan: last voxel "
                                "above 330 walking +y; flat to 1 mm over z 0..16, so z "
                                "is uncertain by about 8 mm; sagittal x=-4.8"},
        "temporal_pole_left": {"ras": [-28.8, 2.0, -31.0],
                               "how": "anterior tip of the temporal lobe against the "
                                      "sphenoid on sagittal x=-28.8, axial z=-31"},
        "temporal_pole_right": {"ras": [43.2, 3.0, -32.0],
                                "how": "as temporal_pole_left, sagittal x=43.2"},
        "cerebellum": {"ras": [-14.4, -99.0, -40.0],
                       "how": "NOT independent: the supine scan's cerebellum point mapped "
                              "by the rigid fit of the other 8 shared landmarks, then "
                              "checked to lie in the left cerebellar hemisphere, ~8 mm "
                              "inside its posterior-inferior surface (sagittal x=-14.4)"},
    },
    "t2w_partial_face": {
        "nose_tip": {"absent": "the oblique slab's inferior edge (z~-38 at y 105..118) "
                     "cuts the nasal dorsum; the pronasale lies below the field of view"},
        "eye_left": {"ras": [-30.8, 74.2, -20.8],
                     "how": "centroid of the bright vitreous (T2 900..4000) grown from a "
                            "seed within 14 mm; globe x -43..-18, y 62..88, z -31..-9"},
        "eye_right": {"ras": [29.3, 74.6, -18.0],
                      "how": "as eye_left; globe x 17..42, y 63..89, z -29..-8"},
        "upper_lip": {"absent": "below the field of view"},
        "chin": {"absent": "below the field of view"},
        "tragus_left": {"absent": "the ear-canal level is at the inferior edge of the "
                        "field of view (z~-50 at y~0); tragus not identifiable on the "
                        "2 mm slices"},
        "tragus_right": {"absent": "as tragus_left"},
        "frontal_pole": {"ras": [6.0, 85.0, 13.0],
                         "how": "most anterior cortex (grey matter ends at y=85, bright "
                                "CSF at 86..88 for x 4..8, z 10..15); axial z=13, "
                                "sagittal x=6"},
        "temporal_pole_left": {"ras": [-38.0, 42.0, -30.0],
                               "how": "bend of the temporal lobe's anterior boundary "
                                      "against the sphenoid on sagittal x=-40..-36; the "
                                      "boundary runs on up the sphenoid ridge, so +-5 mm"},
        "temporal_pole_right": {"ras": [38.0, 42.0, -30.0],
                                "how": "as temporal_pole_left, sagittal x=36..40"},
        "cerebellum": {"ras": [-25.0, -60.0, -34.0],
                       "how": "left cerebellar hemisphere, ~6 mm inside its "
                              "posterior-inferior surface (axial z=-38, sagittal x=-25)"},
    },
    "invesalius_ct": {
        "nose_tip": {"ras": [-1.5, 110.0, -45.0],
                     "how": "most anterior head voxel (HU > -300) for x -8..5, z -60..-35: "
                            "y=110 for x -3..0, z -48..-42; sagittal x=-3..0"},
        "eye_left": {"ras": [-30.3, 57.2, -20.4],
                     "how": "centroid of the vitreous (HU -30..45) grown from a seed "
                            "within 14 mm; soft-tissue window: globe x -43..-18, y 46..69, "
                            "z -32..-9"},
        "eye_right": {"ras": [27.8, 56.0, -21.0],
                      "how": "as eye_left, corrected by hand to the globe's extent "
                             "x 15..40, y 45..68, z -33..-9"},
        "upper_lip": {"absent": "the field of view ends (z=-80) on the upper lip: its "
                      "profile is flat at y=96..97 from the subnasale (z~-62) to the "
                      "edge, with no vermilion, so the labrale superius is not in view"},
        "chin": {"absent": "below the field of view (ends at z=-80)"},
        "tragus_left": {"ras": [-78.0, -8.0, -50.0],
                        "how": "posterior skin of the tragus over the ear-canal air "
                               "(canal at y -9..-10 running medially); lateral tip at "
                               "x=-79; axial z=-48..-52"},
        "tragus_right": {"ras": [71.0, -7.0, -50.0],
                         "how": "as tragus_left: tragus x 70..72 with air lateral and "
                                "posterior (canal x 64..69, y -7..-9); axial z=-50"},
        "frontal_pole": {"ras": [-12.0, 63.0, 16.0],
                         "how": "most anterior brain (smoothed HU 18..70 walking +y stops "
                                "at y 63..64 for x -15..-10, z 13..19; right hemisphere "
                                "63); against the inner table; brain window 0..80 HU"},
        "temporal_pole_left": {"ras": [-37.0, 28.0, -21.0],
                               "how": "tip of the temporal lobe in the middle cranial "
                                      "fossa: axial z=-25 (tip at y~28), coronal y=29 "
                                      "(last patch of lobe centred near z=-19), "
                                      "sagittal x=-38"},
        "temporal_pole_right": {"ras": [34.0, 28.0, -21.0],
                                "how": "as temporal_pole_left: axial z=-25, coronal "
                                       "y=27, sagittal x=38"},
        "cerebellum": {"ras": [-25.0, -60.0, -55.0],
                       "how": "left posterior fossa, ~12 mm above its bony floor and "
                              "well below the tentorium level; the cerebellum is not "
                              "separable from CSF spaces at CT contrast, so this is a "
                              "point inside the cerebellar hemisphere's territory"},
        "brain_under_defect": {"ras": [30.0, 56.0, 19.0],
                               "how": "intracranial, ~5 mm inside the inner surface under a "
                                      "defect of the right (header) frontal bone: the "
                                      "cortical bone stops for ~14 mm (below 150 HU at "
                                      "native resolution) at x 21..38, z 10..32, with "
                                      "hypodense (0..25 HU) brain beneath; axial z=19, "
                                      "sagittal x=30, brain window -20..120 HU"},
    },
    "ge_tilted_ct": {
        "nose_tip": {"absent": "the tilted field of view's inferior edge cuts the nose: "
                     "the dorsum reaches the edge at about (24, 104, -1); the head is "
                     "turned ~12 degrees to its right (nose at x~25)"},
        "eye_left": {"ras": [-20.3, 78.3, 10.1],
                     "how": "centroid of the vitreous (HU -30..45) grown from a seed "
                            "within 14 mm; soft-tissue window: globe x -33..-8, y 67..90, "
                            "z -1..21"},
        "eye_right": {"ras": [52.7, 62.9, 10.9],
                      "how": "as eye_left: globe x 40..66, y 51..75, z 0..22 (head "
                             "turned, so the right eye is 15 mm further back)"},
        "upper_lip": {"absent": "below the field of view"},
        "chin": {"absent": "below the field of view"},
        "tragus_left": {"ras": [-80.0, 15.0, -17.0],
                        "how": "posterior skin of the tragus in front of the ear-canal "
                               "air (air at y<=13, tissue from y=15, lateral edge x=-82); axial "
                               "z=-19..-15"},
        "tragus_right": {"ras": [87.0, -15.0, -17.0],
                         "how": "as tragus_left: tissue to y=-16, canal/concha air "
                                "below y=-17 for x>=87; axial z=-19..-15. The vertical bright bar at x~97 is the "
                                "head holder, not skin"},
        "frontal_pole": {"ras": [-5.0, 79.0, 46.0],
                         "how": "most anterior brain (smoothed HU 18..70 walking +y stops "
                                "at y=79 for x -10..0, z 40..52), the left frontal lobe "
                                "being ahead because the head is turned; brain window "
                                "0..80 HU, axial z=46"},
        "temporal_pole_left": {"ras": [-32.0, 47.0, 12.0],
                               "how": "tip of the temporal lobe behind the lateral orbit "
                                      "wall: axial z=12 (tip y~48), coronal y=47, "
                                      "sagittal x=-32"},
        "temporal_pole_right": {"ras": [41.0, 35.0, 10.0],
                                "how": "as temporal_pole_left: axial z=10, sagittal "
                                       "x=40 (15 mm further back: head turned)"},
        "cerebellum": {"ras": [-20.0, -60.0, -15.0],
                       "how": "left posterior fossa, ~10 mm above its bony floor and in "
                              "front of the occipital bone (sagittal x=-15..-20); CT "
                              "does not show the tentorium, so this is a point well "
                              "inside the cerebellar territory"},
    },
}

# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _window(sl, grid, a, b, c, half):
    """Display range from the part of the slice that is shown (faint skin stays visible)."""
    if getattr(grid, "window", None) is not None:
        return grid.window  # fixed window, e.g. CT soft tissue
    ia = slice(max(int((c[a] - half - grid.origin[a]) / grid.step), 0),
               max(int((c[a] + half - grid.origin[a]) / grid.step) + 1, 1))
    ib = slice(max(int((c[b] - half - grid.origin[b]) / grid.step), 0),
               max(int((c[b] + half - grid.origin[b]) / grid.step) + 1, 1))
    crop = sl[ia, ib]
    if crop.size == 0:
        crop = sl
    return np.percentile(crop, [1, 99])


def render(grid, ras, title, path, half=60, extra=()):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = grid.to_index(ras)
    d = np.nan_to_num(grid.data, nan=np.nanmin(grid.data))
    lo, hi = np.percentile(d, [1, 99.5])
    fig, axs = plt.subplots(1, 3, figsize=(15, 5.4))
    views = [
        ("axial z=%.0f" % ras[2], d[:, :, idx[2]], 0, 1, "x (R+)", "y (A+)"),
        ("coronal y=%.0f" % ras[1], d[:, idx[1], :], 0, 2, "x (R+)", "z (S+)"),
        ("sagittal x=%.0f" % ras[0], d[idx[0], :, :], 1, 2, "y (A+)", "z (S+)"),
    ]
    for ax, (lab, sl, a, b, xl, yl) in zip(axs, views):
        ext = [grid.origin[a], grid.origin[a] + (sl.shape[0] - 1) * grid.step,
               grid.origin[b], grid.origin[b] + (sl.shape[1] - 1) * grid.step]
        lo, hi = _window(sl, grid, a, b, ras, half)
        ax.imshow(sl.T, origin="lower", cmap="gray", vmin=lo, vmax=hi, extent=ext)
        ax.plot([ras[a]], [ras[b]], "r+", ms=18, mew=1.5)
        for p, c in extra:
            ax.plot([p[a]], [p[b]], "+", color=c, ms=12, mew=1.2)
        ax.set_xlim(ras[a] - half, ras[a] + half)
        ax.set_ylim(ras[b] - half, ras[b] + half)
        ax.set_title(lab)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def render_stack(grid, axis, levels, center, half, title, path, marks=()):
    """Several parallel slices (axis 0/1/2 = sagittal/coronal/axial) with a mm grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.nan_to_num(grid.data, nan=np.nanmin(grid.data))
    lo, hi = np.percentile(d, [1, 99.5])
    a, b = [x for x in range(3) if x != axis]
    n = len(levels)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.6 * rows), squeeze=False)
    for ax in axs.ravel():
        ax.axis("off")
    for ax, lev in zip(axs.ravel(), levels):
        ax.axis("on")
        idx = int(round((lev - grid.origin[axis]) / grid.step))
        sl = np.take(d, np.clip(idx, 0, d.shape[axis] - 1), axis=axis)
        ext = [grid.origin[a], grid.origin[a] + (sl.shape[0] - 1) * grid.step,
               grid.origin[b], grid.origin[b] + (sl.shape[1] - 1) * grid.step]
        lo, hi = _window(sl, grid, a, b, center, half)
        ax.imshow(sl.T, origin="lower", cmap="gray", vmin=lo, vmax=hi, extent=ext)
        ax.set_xlim(center[a] - half, center[a] + half)
        ax.set_ylim(center[b] - half, center[b] + half)
        ax.grid(True, color="yellow", alpha=0.35, lw=0.5)
        ax.set_xticks(np.arange(np.floor((center[a] - half) / 10) * 10, center[a] + half, 10))
        ax.set_yticks(np.arange(np.floor((center[b] - half) / 10) * 10, center[b] + half, 10))
        ax.tick_params(labelsize=6)
        for p, c in marks:
            if abs(p[axis] - lev) <= 2:
                ax.plot([p[a]], [p[b]], "+", color=c, ms=14, mew=1.5)
        ax.set_title("%s=%.0f" % ("xyz"[axis], lev), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def midline_profile(grid, mask, xmid, halfwidth=2):
    """Most anterior head y for each z on the mid-sagittal band (nan where no head)."""
    ix = int(round((xmid - grid.origin[0]) / grid.step))
    band = mask[max(ix - halfwidth, 0):ix + halfwidth + 1].any(axis=0)  # (y, z)
    prof = np.full(band.shape[1], np.nan)
    for z in range(band.shape[1]):
        ys = np.nonzero(band[:, z])[0]
        if len(ys):
            prof[z] = grid.origin[1] + grid.step * ys.max()
    return prof


def propose_face(grid, mask, xmid):
    """Nose tip, upper lip, chin from the mid-sagittal skin profile (world mm)."""
    prof = midline_profile(grid, mask, xmid)
    zs = grid.origin[2] + grid.step * np.arange(len(prof))
    ok = ~np.isnan(prof)
    sm = prof.copy()
    sm[ok] = ndimage.uniform_filter1d(prof[ok], 3)
    iz_nose = int(np.nanargmax(sm))
    out = {"nose_tip": [xmid, prof[iz_nose], zs[iz_nose]]}
    # walk down from the nose: subnasale (min), labrale superius (max), stomion (min),
    # labrale inferius (max), mentolabial sulcus (min), pogonion (max)
    seq, want_min, z = [], True, iz_nose
    while z > 1 and len(seq) < 6:
        z -= 1
        if np.isnan(sm[z]) or np.isnan(sm[z - 1]):
            break
        if want_min and sm[z - 1] > sm[z] + 0.5:
            seq.append(z)
            want_min = False
        elif not want_min and sm[z - 1] < sm[z] - 0.5:
            seq.append(z)
            want_min = True
    names = ["subnasale", "upper_lip", "stomion", "lower_lip", "sulcus", "chin"]
    for nm, z in zip(names, seq):
        out[nm] = [xmid, prof[z], zs[z]]
    return out, prof, zs


def globe_centroid(grid, seed, lo, hi, radius=14):
    """Centroid of the connected intensity window [lo, hi] around a seed, within radius."""
    idx = grid.to_index(seed)
    r = int(radius / grid.step)
    sl = tuple(slice(max(c - r, 0), c + r + 1) for c in idx)
    sub = np.nan_to_num(grid.data[sl], nan=-1e9)
    off = np.array([s.start for s in sl])
    g = np.stack(np.meshgrid(*[np.arange(s) for s in sub.shape], indexing="ij"), -1)
    inside = np.linalg.norm((g + off - idx) * grid.step, axis=-1) <= radius
    m = (sub >= lo) & (sub <= hi) & inside
    lab, _ = ndimage.label(m)
    s = tuple(idx - off)
    if not lab[s]:
        return None, 0
    comp = lab == lab[s]
    c = np.array(np.nonzero(comp)).mean(1) + off
    return grid.to_world(c), int(comp.sum())


# ---------------------------------------------------------------------------
# Checks and output
# ---------------------------------------------------------------------------

# Per-volume caveats, copied into the JSON.
CAVEATS = {
    "ch2": "MNI space (sform code 4); x<0 is the subject's left hemisphere.",
    "t2w_partial_face": "Left and right are as the header (LAS, qform = sform code 1) "
                        "defines them; the source gives no independent check of the "
                        "header's left-right, so 'left' means x<0 in the header's world.",
    "invesalius_ct": "The source records no left/right: the header's L-R (LAS) is a guess, "
                     "so eye_left etc. are 'left' in the header's world (x<0), which may "
                     "be the patient's right. A head holder is in view (not skin).",
    "ge_tilted_ct": "Gantry tilt 18.5 degrees and uneven slice pitch (4.2 mm, one 1.1 mm, "
                    "then 7.4 mm along z): world coordinates come from each slice's own "
                    "DICOM position; the 'voxel' k is fractional between slices. Slices "
                    "are 4-7 mm apart, so points are uncertain by a few mm along the "
                    "slice normal.",
    "invesalius_ct_dicom": "Same caveat as invesalius_ct: left/right follow the header, "
                           "which was written from a guessed orientation.",
}

# Which volumes record the same head in the same voxels (landmarks are reused after the
# geometry is shown to agree).
SAME_AS = {"invesalius_ct_dicom": "invesalius_ct"}


def _dcm2niix_version():
    try:
        out = subprocess.run(["dcm2niix", "-v"], capture_output=True, text=True).stdout
    except OSError:
        return "dcm2niix (version unknown)"
    for line in out.splitlines():
        if "version" in line:
            return line.strip()
    return "dcm2niix"


def landmarks_for(name):
    return LANDMARKS[SAME_AS.get(name, name)]


class Checks:
    def __init__(self):
        self.failures = []
        self.lines = []

    def ok(self, cond, msg):
        self.lines.append(("ok  " if cond else "FAIL") + " " + msg)
        if not cond:
            self.failures.append(msg)


def _sphere_offsets(radius, step):
    r = int(np.ceil(radius / step))
    g = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return g[np.linalg.norm(g * step, axis=1) <= radius] * step


def check_volume(name, vol, grid, lms, data_root, chk):
    thr = VOLUMES[name]["head_threshold"]
    pts = {k: np.array(v["ras"]) for k, v in lms.items() if "ras" in v}
    for k in LANDMARK_NAMES:
        chk.ok(k in lms and (("ras" in lms[k]) != ("absent" in lms[k])),
               f"{name}: {k} is either placed or marked absent")
    # every placed point lies inside the volume's field of view
    for k, p in pts.items():
        v = vol.world2vox(p)[0]
        inside = np.all(v >= -0.5) and np.all(v <= np.array(vol.data.shape) - 0.5)
        chk.ok(inside, f"{name}: {k} inside the field of view (voxel {np.round(v, 1)})")
    sph = _sphere_offsets(3.0, 1.0)
    for k in SKIN & set(pts):
        p = pts[k]
        near = np.array([grid.value(p + o) for o in _sphere_offsets(1.5, 1.0)])
        chk.ok(np.nanmax(near) > thr, f"{name}: {k} has head tissue within 1.5 mm "
               f"(max {np.nanmax(near):.0f} > {thr})")
        if k in ("nose_tip", "upper_lip", "chin"):
            ant = [grid.value(p + [0, d, 0]) for d in (1, 2, 3)]
            chk.ok(np.nanmin(ant) < thr if not np.all(np.isnan(ant)) else False,
                   f"{name}: {k} drops to air within 3 mm anteriorly {np.round(ant)}")
        else:
            ring = np.array([grid.value(p + o) for o in sph])
            chk.ok(np.nanmin(ring) < thr, f"{name}: {k} has air within 3 mm "
                   f"(min {np.nanmin(ring):.0f} < {thr})")
    if "eye_left" in pts and "eye_right" in pts:
        el, er = pts["eye_left"], pts["eye_right"]
        chk.ok(el[0] < er[0], f"{name}: eye_left has smaller x than eye_right (RAS)")
        iod = np.linalg.norm(el - er)
        chk.ok(50 <= iod <= 75, f"{name}: interocular distance {iod:.1f} mm in 50..75")
        # a turned head moves one eye back (y), so only height is compared
        chk.ok(abs(el[2] - er[2]) <= 8,
               f"{name}: eyes level within 8 mm (dz {el[2]-er[2]:.1f}; dy {el[1]-er[1]:.1f})")
        if "nose_tip" in pts:
            mid = (el + er) / 2
            n = pts["nose_tip"]
            chk.ok(abs(n[0] - mid[0]) <= 8, f"{name}: nose_tip within 8 mm of the eyes' "
                   f"midline in x ({n[0] - mid[0]:.1f})")
            chk.ok(20 <= n[1] - mid[1] <= 60, f"{name}: nose_tip {n[1] - mid[1]:.1f} mm "
                   "anterior to the eye centres (20..60)")
    for a, b in (("tragus_left", "tragus_right"), ("temporal_pole_left", "temporal_pole_right")):
        if a in pts and b in pts:
            chk.ok(pts[a][0] < pts[b][0], f"{name}: {a} has smaller x than {b}")
    if "nose_tip" in pts and "frontal_pole" in pts:
        d = pts["nose_tip"][1] - pts["frontal_pole"][1]
        dist = np.linalg.norm(pts["nose_tip"] - pts["frontal_pole"])
        # skin + bone + CSF put the frontal pole ~10-20 mm behind the forehead skin, and the
        # nose tip is ~20-35 mm ahead of the forehead and 50-80 mm below the pole
        chk.ok(60 <= dist <= 110, f"{name}: nose_tip to frontal_pole {dist:.1f} mm (60..110)")
        chk.ok(20 <= d <= 60, f"{name}: frontal_pole {d:.1f} mm posterior to nose_tip (20..60)")
    if "frontal_pole" in pts:
        for k in ("temporal_pole_left", "temporal_pole_right"):
            if k in pts:
                d = pts["frontal_pole"][1] - pts[k][1]
                chk.ok(25 <= d <= 70, f"{name}: {k} {d:.1f} mm posterior to frontal_pole (25..70)")
        if "cerebellum" in pts:
            d = pts["frontal_pole"][1] - pts["cerebellum"][1]
            chk.ok(120 <= d <= 190, f"{name}: cerebellum {d:.1f} mm posterior to frontal_pole "
                   "(120..190)")
    if name == "ch2":
        bet = nib.load(os.path.join(data_root, "mri/ch2bet.nii.gz"))
        m = np.asarray(bet.dataobj) > 0
        _, w2v = _affine_maps(bet.affine)
        for k in BRAIN & set(pts):
            v = np.round(w2v(pts[k])[0]).astype(int)
            chk.ok(bool(m[tuple(v)]), f"ch2: {k} inside ch2bet>0")
            if k != "cerebellum":
                ahead = v + np.array([0, 2, 0])
                chk.ok(not m[tuple(ahead)], f"ch2: {k} on the brain surface (2 mm anterior "
                       "is outside ch2bet)")


def world_agreement(a, b, shape):
    g = np.array([[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                  for k in (0, shape[2] - 1)], float)
    return float(np.max(np.linalg.norm(a.vox2world(g) - b.vox2world(g), axis=1)))


def write(names, data_root, workdir):
    chk = Checks()
    version = _dcm2niix_version()
    results = {}
    for name in names:
        vol = load(name, data_root, workdir)
        grid = WorldGrid(vol)
        lms = landmarks_for(name)
        if name in SAME_AS:
            other = load(SAME_AS[name], data_root, workdir)
            same_vox = vol.data.shape == other.data.shape and np.array_equal(vol.data, other.data)
            dist = world_agreement(vol, other, vol.data.shape)
            chk.ok(same_vox and dist < 0.01, f"{name}: same voxels as {SAME_AS[name]} and "
                   f"world coordinates agree (max corner difference {dist:.4f} mm)")
        check_volume(name, vol, grid, lms, data_root, chk)
        out = {"volume": VOLUMES[name]["path"],
               "space": "world RAS+ mm (+x subject's Right, +y Anterior, +z Superior); "
                        "voxel->world by the file's affine (sform if sform_code>0 else qform)"}
        kind = VOLUMES[name]["kind"]
        if kind == "dcm2niix":
            out["voxels_in"] = vol.used + f", converted with {version}; its affine is the "
            out["voxels_in"] += "world map used"
        elif kind == "dicom_slices":
            out["space"] = ("world RAS+ mm (+x subject's Right, +y Anterior, +z Superior) from "
                            "each slice's DICOM ImagePositionPatient/ImageOrientationPatient/"
                            "PixelSpacing (LPS with x and y negated); no single affine describes "
                            "this series")
            out["voxels_in"] = vol.used + f", converted with {version}"
            out["dcm2niix_geometry"] = vol.note
        else:
            out["voxels_in"] = VOLUMES[name]["path"]
        if name in SAME_AS:
            out["same_as"] = f"{SAME_AS[name]}.json: same voxels and world geometry, landmarks reused"
        if name in CAVEATS:
            out["caveats"] = CAVEATS[name]
        out["landmarks"] = {}
        for k in LANDMARK_NAMES + [k for k in OPTIONAL_NAMES if k in lms]:
            e = lms.get(k, {"absent": "not recorded"})
            if "ras" in e:
                v = vol.world2vox(e["ras"])[0]
                out["landmarks"][k] = {"ras": [round(float(x), 1) for x in e["ras"]],
                                       "voxel": [round(float(x), 2) for x in v],
                                       "how": e["how"]}
            else:
                out["landmarks"][k] = {"absent": e["absent"]}
        results[name] = out
        text = json.dumps(out, indent=2)
        # keep coordinate triples on one line
        text = re.sub(r"\[\s+([-0-9.e]+),\s+([-0-9.e]+),\s+([-0-9.e]+)\s+\]",
                      r"[\1, \2, \3]", text)
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            f.write(text + "\n")
    check_pairs(names, chk)
    print("\n".join(chk.lines))
    print(f"{len(chk.failures)} check(s) failed" if chk.failures else "all checks passed")
    return 1 if chk.failures else 0


def check_pairs(names, chk):
    """Same man scanned supine and prone: distances between landmarks must agree."""
    a, b = "siemens_t1_2d_hfs", "siemens_t1_2d_hfp"
    if a not in names or b not in names or a not in LANDMARKS or b not in LANDMARKS:
        return
    pa = {k: np.array(v["ras"]) for k, v in LANDMARKS[a].items() if "ras" in v}
    pb = {k: np.array(v["ras"]) for k, v in LANDMARKS[b].items() if "ras" in v}
    common = sorted(set(pa) & set(pb))
    diffs = []
    for i, k1 in enumerate(common):
        for k2 in common[i + 1:]:
            da = np.linalg.norm(pa[k1] - pa[k2])
            db = np.linalg.norm(pb[k1] - pb[k2])
            diffs.append((abs(da - db), k1, k2, da, db))
    diffs.sort(reverse=True)
    for d, k1, k2, da, db in diffs:
        chk.lines.append(f"     hfs/hfp {k1}-{k2}: {da:.1f} vs {db:.1f} mm (diff {d:.1f})")
    # rigid (Kabsch) fit hfs -> hfp on the independently placed points: per-point residuals
    indep = [k for k in common if k != "cerebellum"]
    P = np.array([pa[k] for k in indep])
    Q = np.array([pb[k] for k in indep])
    pc, qc = P.mean(0), Q.mean(0)
    u, _, vt = np.linalg.svd((P - pc).T @ (Q - qc))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    res = np.linalg.norm((P - pc) @ rot.T + qc - Q, axis=1)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
    chk.lines.append(f"     hfs->hfp rigid fit ({angle:.1f} deg): residuals "
                     + ", ".join(f"{k} {r:.1f}" for k, r in zip(indep, res)) + " mm")
    worst = diffs[0][0] if diffs else 0.0
    # 8 mm = one 4.8 mm slice step (x is sampled by sagittal slices 4.8 mm apart, so the
    # same point can land a slice apart in the two scans) + ~3 mm placement error
    chk.ok(worst <= 8.0, f"hfs vs hfp: {len(diffs)} inter-landmark distances agree within "
           f"8 mm (worst {worst:.1f} mm, median {np.median([d[0] for d in diffs]):.1f} mm)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("DEFACER_DATA", "testdata/real"))
    ap.add_argument("--out", default=None, help="folder for PNGs")
    ap.add_argument("--window", default=None, help="fixed display range lo,hi (e.g. "
                    "--window=-150,150 for CT soft tissue)")
    ap.add_argument("cmd", choices=["overview", "render", "propose", "write"])
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="landmarks-")
    out = args.out or tempfile.mkdtemp(prefix="landmarks-png-")
    os.makedirs(out, exist_ok=True)
    if args.cmd == "write":
        sys.exit(write(args.names or list(VOLUMES), args.data, workdir))
    name = args.names[0]
    vol = load(name, args.data, workdir)
    grid = WorldGrid(vol)
    if args.window:
        grid.window = tuple(float(v) for v in args.window.split(","))
    if args.cmd == "overview":
        m = head_mask(grid, VOLUMES[name]["head_threshold"])
        c = grid.to_world(np.array(np.nonzero(m)).mean(1))
        render(grid, c, f"{name} overview", os.path.join(out, f"{name}_overview.png"), half=110)
    elif args.cmd == "render":
        lms = landmarks_for(name)
        keys = args.names[1:] or [k for k in LANDMARK_NAMES if "ras" in lms.get(k, {})]
        for k in keys:
            p = lms[k]["ras"]
            render(grid, p, f"{name} {k} {p}", os.path.join(out, f"{name}_{k}.png"), half=30)
    elif args.cmd == "propose":
        m = head_mask(grid, VOLUMES[name]["head_threshold"])
        xs = np.nonzero(m.any(axis=(1, 2)))[0]
        xmid = float(grid.to_world([(xs.min() + xs.max()) / 2, 0, 0])[0])
        face, _, _ = propose_face(grid, m, xmid)
        for k, p in face.items():
            print(f"{k}: {np.round(p, 1).tolist()}")
    print(f"PNGs in {out}")


if __name__ == "__main__":
    main()
