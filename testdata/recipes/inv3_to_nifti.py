#!/usr/bin/env python3
"""Convert InVesalius' example project Cranium.inv3 to a NIfTI-1 head CT in Hounsfield units.

Usage: python3 inv3_to_nifti.py Cranium.inv3 invesalius_ct.nii.gz

An .inv3 file is a gzip'd tar holding main.plist (shape, dtype, spacing) and matrix.dat, the raw
volume in C order as [slice, row, column]. The project keeps no patient orientation and no
origin, so the header written here is a choice, recorded in `descrip`:
- column index -> x, row index -> y, slice index -> z, with x running right-to-left (LAS), the
  usual radiological storage of axial CT; the source cannot tell left from right.
- the origin is the centre of the volume, so world (0, 0, 0) falls inside the head.
With nibabel 5.x this gives a file byte-identical to the project's reference copy.
Needs numpy and nibabel.
"""

import plistlib
import sys
import tarfile

import nibabel as nib
import numpy as np

DESCRIP = b"InVesalius ProMED CT 0051, HU; L/R guessed"


def read_inv3(path):
    """Return (volume as [x, y, z] Fortran-ordered array, spacing [x, y, z]) from an .inv3."""
    with tarfile.open(path, "r:gz") as tar:
        members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        if "main.plist" not in members:
            sys.exit(f"{path}: no main.plist inside; not an InVesalius 3 project")
        main = plistlib.load(tar.extractfile(members["main.plist"]))
        matrix = main["matrix"]
        name = matrix["filename"]
        if name not in members:
            sys.exit(f"{path}: main.plist names {name}, which the archive lacks")
        raw = tar.extractfile(members[name]).read()
    dtype = np.dtype(matrix["dtype"]).newbyteorder("<")
    shape = tuple(int(n) for n in matrix["shape"])  # slices, rows, columns
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        sys.exit(f"{path}: {name} has {len(raw)} bytes, {shape} {dtype} needs {expected}")
    zyx = np.frombuffer(raw, dtype=dtype).reshape(shape)
    spacing = [float(s) for s in main["spacing"]]  # column, row, slice
    return np.asfortranarray(zyx.transpose(2, 1, 0)).astype(dtype.newbyteorder("="), copy=False), spacing


def centred_las_affine(shape, spacing):
    sx, sy, sz = spacing
    nx, ny, nz = shape
    affine = np.diag([-sx, sy, sz, 1.0])
    affine[:3, 3] = [sx * (nx - 1) / 2, -sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
    return affine


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    src, dest = sys.argv[1], sys.argv[2]
    vol, spacing = read_inv3(src)
    affine = centred_las_affine(vol.shape, spacing)
    img = nib.Nifti1Image(vol, affine)
    img.header.set_qform(affine, 1)
    img.header.set_sform(affine, 1)
    img.header["descrip"] = DESCRIP
    img.to_filename(dest)


if __name__ == "__main__":
    main()
