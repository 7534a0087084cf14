#!/usr/bin/env python3
"""Write a NIfTI head CT (Hounsfield units, int16, axial, no rotation) as a CT DICOM series.

Usage: python3 nifti_to_ct_dicom.py [--check] invesalius_ct.nii.gz OUT_DIR

Produces OUT_DIR/CT0001.dcm ... one file per axial slice: CT Image Storage, explicit VR little
endian, signed 16-bit pixels with RescaleSlope 1 / RescaleIntercept 0 (HU), patient position
HFS, Image Orientation (Patient) 1\\0\\0\\0\\1\\0 (LPS). The voxels and geometry read back equal to
the NIfTI's. The header is made up (the source project has none): it says so in Series
Description. UIDs are derived from the voxels and the grid, so running this twice gives the
same files; they differ from the UIDs of any other copy of this series.
After writing, the series is read back and compared with the NIfTI; with --check nothing is
written and the exit status says whether OUT_DIR already holds such a series.
Needs numpy, nibabel and pydicom (2.2 or later).
"""

import hashlib
import os
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SERIES_DESCRIPTION = "DERIVED from InVesalius Cranium.inv3 (synthetic header)"


def float32_decimal(value):
    """The shortest decimal that reads back as the same float32 (0.9570312, not 0.95703119...).

    NIfTI stores spacing and origin as float32; DICOM stores them as decimal strings. Writing
    the shortest round-tripping decimal keeps the DICOM numbers those the volume was made from.
    """
    return float(np.format_float_positional(np.float32(value), unique=True))


def lps_geometry(affine, shape):
    """Check the NIfTI grid is axial, unrotated and LAS; return spacing and the LPS corner.

    DICOM rows run along NIfTI j reversed so that the row direction is +y in LPS (anterior to
    posterior), and columns along NIfTI i, which for LAS runs right to left, +x in LPS.
    """
    rotation = affine[:3, :3]
    if np.any(rotation - np.diag(np.diag(rotation)) != 0) or not (
        rotation[0, 0] < 0 < rotation[1, 1] and rotation[2, 2] > 0
    ):
        sys.exit("input: only an unrotated LAS grid (x spacing negative, y and z positive) is supported")
    spacing = [float32_decimal(abs(rotation[a, a])) for a in range(3)]
    # LPS position of voxel (i=0, j=ny-1, k=0): x_lps = -x_ras, y_lps = -y_ras.
    corner_ras = affine[:3, :3] @ np.array([0, shape[1] - 1, 0]) + affine[:3, 3]
    corner = [-corner_ras[0], -corner_ras[1], corner_ras[2]]
    # A volume centred on the origin has its corner at -spacing*(n-1)/2; computing that from the
    # decimal spacing gives the exact value the header's float32 was rounded from.
    for a in range(3):
        centred = -spacing[a] * (shape[a] - 1) / 2
        corner[a] = centred if np.float32(centred) == np.float32(corner[a]) else float32_decimal(corner[a])
    return spacing, corner


def check_series(vol, spacing, corner, out_dir):
    """Return a list of problems of the series in out_dir against the NIfTI voxels/geometry."""
    nx, ny, nz = vol.shape
    names = [f"CT{k + 1:04d}.dcm" for k in range(nz)]
    present = sorted(n for n in os.listdir(out_dir) if n.endswith(".dcm")) if os.path.isdir(out_dir) else []
    if present != names:
        return [f"{out_dir}: expected files CT0001.dcm..CT{nz:04d}.dcm, found {len(present)}"]
    problems = []
    for k, name in enumerate(names):
        path = os.path.join(out_dir, name)
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array.astype(np.int16) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            geometry = (
                [float(v) for v in ds.PixelSpacing] == [spacing[1], spacing[0]]
                and [float(v) for v in ds.ImagePositionPatient] == [corner[0], corner[1], corner[2] + spacing[2] * k]
                and [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            )
        except Exception as err:  # a damaged file is a problem to report, not a crash
            problems.append(f"{path}: unreadable ({err})")
            continue
        if not geometry:
            problems.append(f"{path}: geometry differs from the NIfTI's")
        if not np.array_equal(pixels, vol[:, ::-1, k].T):
            problems.append(f"{path}: voxels differ from the NIfTI's slice {k}")
    return problems


def write_series(vol, affine, spacing, corner, out_dir):
    (sx, sy, sz), (x0, y0, z0) = spacing, corner
    nx, ny, nz = vol.shape
    # UIDs from the voxels and grid, not the file's bytes, so another gzip gives the same UIDs.
    seed = hashlib.sha256(np.ascontiguousarray(vol).tobytes() + affine.tobytes()).hexdigest()
    study_uid = generate_uid(entropy_srcs=[seed, "study"])
    series_uid = generate_uid(entropy_srcs=[seed, "series"])
    frame_uid = generate_uid(entropy_srcs=[seed, "frame"])

    os.makedirs(out_dir, exist_ok=True)
    for k in range(nz):
        sop_uid = generate_uid(entropy_srcs=[seed, "slice", str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian

        ds = Dataset()
        ds.file_meta = meta
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.Modality = "CT"
        ds.SeriesDescription = SERIES_DESCRIPTION
        ds.PatientName = "InVesalius^0051"
        ds.PatientID = "INV0051"
        ds.BodyPartExamined = "HEAD"
        ds.SliceThickness = sz
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [x0, y0, z0 + sz * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.FrameOfReferenceUID = frame_uid
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.PixelSpacing = [sy, sx]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.WindowCenter = 40.0
        ds.WindowWidth = 400.0
        ds.RescaleIntercept = 0.0
        ds.RescaleSlope = 1.0
        ds.RescaleType = "HU"
        # DICOM row r is NIfTI j = ny-1-r; DICOM column c is NIfTI i.
        pixels = np.ascontiguousarray(vol[:, ::-1, k].T).astype("<i2")
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OW"

        path = os.path.join(out_dir, f"CT{k + 1:04d}.dcm")
        try:
            ds.save_as(path, enforce_file_format=True)  # pydicom 3
        except TypeError:
            ds.is_little_endian, ds.is_implicit_VR = True, False  # pydicom 2
            ds.save_as(path, write_like_original=False)


def main():
    args = sys.argv[1:]
    check_only = args[:1] == ["--check"]
    if check_only:
        args = args[1:]
    if len(args) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    src, out_dir = args
    img = nib.load(src)
    if img.get_data_dtype() != np.int16 or len(img.shape) != 3:
        sys.exit(f"{src}: expected a 3-D int16 volume, found {img.shape} {img.get_data_dtype()}")
    vol = np.asanyarray(img.dataobj)
    spacing, corner = lps_geometry(img.affine, vol.shape)
    if check_only:
        problems = check_series(vol, spacing, corner, out_dir)
        sys.exit("\n".join(problems[:5]) if problems else 0)
    write_series(vol, img.affine, spacing, corner, out_dir)
    problems = check_series(vol, spacing, corner, out_dir)
    if problems:
        sys.exit("series written does not read back as the NIfTI:\n" + "\n".join(problems[:5]))


if __name__ == "__main__":
    main()
