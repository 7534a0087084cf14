#!/usr/bin/env python3
"""Builds models/head_template.nii.gz and models/head_template.json from two public templates.

Usage: python3 models/build_template.py <templates-dir> [<out-dir>]
where <templates-dir> holds pydeface/{mean_reg2mean,facemask}.nii.gz and
mni152/{MNI152_T1_2mm,mniMask}.nii.gz (see models/README.md for where to get them).

Output: a uint8 label volume on a 2 mm grid in MNI152 world (RAS mm), bits:
  1 head (skin and everything inside it), 2 face region (incl. the air in front of the face),
  4 brain, 8 ears, 16 fit surface (head boundary used to register the template to a subject),
and a JSON file with landmarks in the same world.

Why two templates: the MNI152 2 mm image crops the nose and chin, while the pydeface mean head
has the whole face, chin and neck; the MNI152 mask gives the brain. The pydeface head is mapped
into MNI world by a 9-parameter fit (normalised correlation of the two T1 images).
"""
import json
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi
from scipy import optimize

src = sys.argv[1].rstrip("/") + "/"
out = (sys.argv[2] if len(sys.argv) > 2 else "models").rstrip("/") + "/"

pd = nib.load(src + "pydeface/mean_reg2mean.nii.gz")
P = np.asarray(pd.dataobj, dtype=np.float32)
F = np.asarray(nib.load(src + "pydeface/facemask.nii.gz").dataobj, dtype=np.float32)
mn = nib.load(src + "mni152/MNI152_T1_2mm.nii.gz")
M = np.asarray(mn.dataobj, dtype=np.float32)
BM = np.asarray(nib.load(src + "mni152/mniMask.nii.gz").dataobj) > 0


def matrix(p):
    t, r, s = p[:3], p[3:6], p[6:9]
    cx, cy, cz = np.cos(r)
    sx, sy, sz = np.sin(r)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = rz @ ry @ rx @ np.diag(s)
    T[:3, 3] = t
    return T


# --- 1. pydeface world <- MNI world, 9 parameters, correlation over the MNI head ---
mni_head = ndi.binary_dilation(M > 2500, iterations=3)
ijk = np.array(np.nonzero(mni_head), dtype=float)
W = mn.affine[:3, :3] @ ijk + mn.affine[:3, 3:4]
vals = M[mni_head]
pd_inv = np.linalg.inv(pd.affine)
Ps = ndi.gaussian_filter(P, 1.0)


def cost(p):
    T = matrix(p)
    v = pd_inv[:3, :3] @ (T[:3, :3] @ W + T[:3, 3:4]) + pd_inv[:3, 3:4]
    x = ndi.map_coordinates(Ps, v, order=1, cval=0)
    return -np.corrcoef(x, vals)[0, 1]


starts = [np.array([0, dy, dz, 0, 0, 0, 1, 1, 1.0]) for dy in (25, 35, 45) for dz in (-30, -20, -10)]
p0 = min(starts, key=cost)
fit = optimize.minimize(cost, p0, method="Powell", options={"xtol": 1e-3, "ftol": 1e-5, "maxfev": 4000})
mni_to_pd = matrix(fit.x)
print("pydeface<-MNI fit: correlation %.3f" % -fit.fun)

# --- 2. output grid: 2 mm, MNI world, large enough for the whole pydeface head + air in front ---
origin = np.array([-100.0, -140.0, -190.0])
shape = (101, 156, 151)  # x -100..100, y -140..170, z -190..110 (room below the chin)
aff = np.diag([2.0, 2.0, 2.0, 1.0])
aff[:3, 3] = origin
grid = np.indices(shape).reshape(3, -1).astype(float)
world = aff[:3, :3] @ grid + aff[:3, 3:4]
X, Y, Z = (world[i].reshape(shape) for i in range(3))


def sample(vol, vol_aff, T_world, order, cval):
    v = np.linalg.inv(vol_aff) @ T_world
    c = v[:3, :3] @ world + v[:3, 3:4]
    return ndi.map_coordinates(vol, c, order=order, cval=cval).reshape(shape)


Pt = sample(P, pd.affine, mni_to_pd, 1, 0.0)
Ft = sample(F, pd.affine, mni_to_pd, 0, 1.0)

# Head: Otsu-like split of the mean image, largest component, holes filled.
# The mean face is blurred; 90 sits at the skin of the sharp scalp and mid-way through the
# blurred facial edge (background ~8, scalp ~300).
thr = 90.0
head = Pt > thr
head = ndi.binary_opening(head, iterations=1)
lab, n = ndi.label(head)
head = lab == (1 + np.argmax(ndi.sum(head, lab, range(1, n + 1))))
head = ndi.binary_closing(head, iterations=2)
head = ndi.binary_fill_holes(head)
print("head threshold %.1f, head volume %.0f ml" % (thr, head.sum() * 8 / 1000))

# Brain: the MNI mask is an intracranial mask dilated by 12 mm (see its COPYING); eroding it by
# 12 mm gives the intracranial space. That closing also fills the concavity under the frontal
# lobes, down into the orbits, which would shield the eyes; so the brain is the brain tissue
# (T1 > 3500: grey and white matter) inside it, lightly closed (sulci filled) and hole-filled.
# The mask touches the bottom of its grid, so pad by replication before measuring distances.
pad = 10
BMp = np.pad(BM, pad, mode="edge")
inside = ndi.distance_transform_edt(BMp, sampling=2.0)[pad:-pad, pad:-pad, pad:-pad]
icv = inside > 12.0
tissue = icv & (M > 3500)
lab, n = ndi.label(tissue)
tissue = lab == (1 + np.argmax(ndi.sum(tissue, lab, range(1, n + 1))))
# Orbital fat is as bright as white matter in T1 and touches the orbitofrontal cortex through
# thin bridges: without cutting them the brain reaches 8 mm down into the right orbit and
# shields the eye. An opening cuts the bridges; reconstructing by one step restores the
# cortex the opening shaved off everywhere else.
opened = ndi.binary_opening(tissue, iterations=1)
lab, n = ndi.label(opened)
opened = lab == (1 + np.argmax(ndi.sum(opened, lab, range(1, n + 1))))
tissue = ndi.binary_dilation(opened, iterations=1, mask=tissue)
brain_mni = ndi.binary_closing(np.pad(tissue, 4), iterations=2)[4:-4, 4:-4, 4:-4]
brain_mni = ndi.binary_fill_holes(brain_mni)
brain = sample(brain_mni.astype(np.float32), mn.affine, np.eye(4), 1, 0.0) >= 0.5
print("brain volume %.0f ml" % (brain.sum() * 8 / 1000))

# Face region: pydeface's face wedge (0 in its mask; it stops below the eyes), extended upwards
# to the brows: everything in front of the brain (+10 mm) with -60 < z < 10 and y > 40 (the
# eyes start at y ~ 45; further back, beside the orbits, lie the temporal poles), laterally
# within the cheeks. The brain itself (brain + margin) is subtracted again after fitting.
brain_dist = ndi.distance_transform_edt(~brain, sampling=2.0)
front_of_brain = np.zeros(shape, bool)
# a voxel is "in front of the brain" when no brain voxel lies further anterior on its y-line
any_brain_ahead = np.flip(np.logical_or.accumulate(np.flip(brain, 1), 1), 1)
front_of_brain = ~any_brain_ahead
upper_face = front_of_brain & (Z < 10) & (Z > -60) & (Y > 40) & (np.abs(X) < 72) & (brain_dist > 10)
# Below the pydeface grid the wedge continues straight down (y > 30): long faces and open mouths
# put the chin lower than the average head's.
lower_face = (Z < -120) & (Y > 30) & (np.abs(X) < 72)
face = (Ft < 0.5) | upper_face | lower_face

# Ears: outside the brain + 10 mm, lateral, around the external ear. In MNI world the ear canal
# is near y = -20, z = -45; the auricle reaches ~35 mm above and below it and ~40 mm behind; heads vary, so the box is wider.
ears = (np.abs(X) > 60) & (Y > -75) & (Y < 35) & (Z > -110) & (Z < 0) & (brain_dist > 10)

# Fit surface: head boundary voxels, above the neck (z > -100: necks and shoulders vary between
# people and are often cut off), not on the pydeface field-of-view edge.
boundary = head & ~ndi.binary_erosion(head)
valid_pd = sample(np.ones_like(P), pd.affine, mni_to_pd, 0, 0.0) > 0.5
edge = ~ndi.binary_erosion(valid_pd, iterations=2)
fit_surface = boundary & (Z > -100) & ~edge

labels = (head * 1 + face * 2 + brain * 4 + ears * 8 + fit_surface * 16).astype(np.uint8)
img = nib.Nifti1Image(labels, aff)
img.set_sform(aff, 2)
img.set_qform(aff, 2)
img.header["descrip"] = b"defacer head template labels"
nib.save(img, out + "head_template.nii.gz")


# --- 3. landmarks (MNI world mm), from the head surface profile ---
def front_y(x, z):
    i, k = int(round((x - origin[0]) / 2)), int(round((z - origin[2]) / 2))
    col = np.nonzero(head[i, :, k])[0]
    return float(origin[1] + 2 * col.max()) if len(col) else None


profile = [(z, front_y(0, z)) for z in np.arange(-120, 40, 2.0)]
profile = [(z, y) for z, y in profile if y is not None]
# the mean face is blurred: search each feature in its expected height band only
nose_z, nose_y = max([p for p in profile if -85 <= p[0] <= -40], key=lambda p: p[1])
below = [(z, y) for z, y in profile if -125 < z < nose_z - 30]
chin_z, chin_y = max(below, key=lambda p: p[1])
lips = [(z, y) for z, y in profile if chin_z + 8 <= z <= nose_z - 10]
lip_z, lip_y = max(lips, key=lambda p: p[1])
marks = {
    "nose_tip": [0.0, nose_y, nose_z],
    "upper_lip": [0.0, lip_y, lip_z],
    "chin": [0.0, chin_y, chin_z],
}
# Eyes: the blurred mean face has no eyes to read off, but the MNI152 T1 (the same world) shows
# the vitreous of both globes, darker (T1 ~2000-2500) than the orbital fat around it (5000-9000)
# and brighter than air (< 1000). Each eye is the centroid of the largest such blob in its orbit.
mni_world = mn.affine[:3, :3] @ np.indices(M.shape).reshape(3, -1) + mn.affine[:3, 3:4]
MX, MY, MZ = (mni_world[i].reshape(M.shape) for i in range(3))
for side, sx in (("left", -1), ("right", 1)):
    orbit = (sx * MX > 15) & (sx * MX < 50) & (MY > 35) & (MY < 80) & (MZ > -60) & (MZ < -20)
    vitreous = ndi.binary_opening(orbit & (M > 1500) & (M < 3000))
    lab, n = ndi.label(vitreous)
    globe = lab == (1 + np.argmax(ndi.sum(vitreous, lab, range(1, n + 1))))
    print("eye_%s: vitreous %.1f ml" % (side, globe.sum() * 8 / 1000))
    marks["eye_" + side] = [round(float(w[globe].mean()), 1) for w in (MX, MY, MZ)]
for side, sx in (("left", -1), ("right", 1)):
    k = int(round((-45 - origin[2]) / 2))
    j = int(round((-20 - origin[1]) / 2))
    xs = np.nonzero(head[:, j, k])[0]
    x = origin[0] + 2 * (xs.max() if sx > 0 else xs.min())
    marks["tragus_" + side] = [float(x), -20.0, -45.0]
meta = {
    "description": "defacer head template: landmarks in the template world (MNI152, RAS mm)",
    "fit_surface_min_z": -100.0,
    "landmarks": marks,
    "pydeface_from_mni": mni_to_pd.round(6).tolist(),
}
with open(out + "head_template.json", "w") as f:
    json.dump(meta, f, indent=1)
print(json.dumps(marks))
