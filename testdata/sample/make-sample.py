#!/usr/bin/env python3
"""Builds the bundled demo head `ch2_2mm.nii.gz` from Colin27 `ch2.nii.gz`.

Usage: make-sample.py CH2_NII_GZ OUT_NII_GZ

ch2 (1 mm, 181x217x181, uint8, MNI space) is averaged over 2x2x2 blocks to a 2 mm grid
(90x108x90) with the affine adjusted so each new voxel centre is the centre of its block. Block
averaging is exact and reproducible (no interpolation library choices involved).
"""
import sys

import nibabel as nib
import numpy as np

src, dst = sys.argv[1], sys.argv[2]
img = nib.load(src)
a = np.asarray(img.dataobj).astype(np.float64)
n = [s // 2 for s in a.shape]
a = a[: 2 * n[0], : 2 * n[1], : 2 * n[2]]
b = a.reshape(n[0], 2, n[1], 2, n[2], 2).mean(axis=(1, 3, 5))
aff = img.affine.copy()
aff[:3, :3] = img.affine[:3, :3] * 2.0
aff[:3, 3] = img.affine[:3, :3] @ np.array([0.5, 0.5, 0.5]) + img.affine[:3, 3]
out = nib.Nifti1Image(np.round(b).astype(np.uint8), aff)
out.header.set_sform(aff, code=4)
out.header.set_qform(aff, code=4)
out.header["descrip"] = b"Colin27 ch2, 2 mm block average (defacer demo)"
nib.save(out, dst)
