//! The world grid knows which of its points the scan covers, also for a gantry-tilted DICOM
//! series with uneven slice spacing, whose field of view is a sheared slab that no single
//! affine describes. The reference is the series' own slice geometry (ImagePositionPatient,
//! ImageOrientationPatient, PixelSpacing, Rows, Columns of every file), read with pydicom.

use std::process::Command;

use defacer_render::world_grid::WorldGrid;

/// For points on a coarse world grid: RAS position, whether it lies between the first and the
/// last slice and inside the pixel matrix of the slab at that height, and its distance (mm) to
/// the nearest edge of that region (where a 1 mm grid may round either way).
const SLAB_REFERENCE: &str = r#"
import sys, glob, json, numpy as np, pydicom
ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in glob.glob(sys.argv[1] + '/*.dcm')]
iop = np.array(ds[0].ImageOrientationPatient, float)
row, col = iop[:3], iop[3:]
normal = np.cross(row, col)
ipp = np.array(sorted((np.array(d.ImagePositionPatient, float) for d in ds), key=lambda p: normal @ p))
offs = ipp @ normal
ps = np.array(ds[0].PixelSpacing, float)  # (between rows, between columns)
ncol, nrow = int(ds[0].Columns), int(ds[0].Rows)
out = []
for x in range(-130, 131, 9):
    for y in range(-130, 131, 9):
        for z in range(-80, 171, 9):
            q = np.array([-x, -y, z], float)  # RAS -> LPS
            d = normal @ q
            if d < offs[0] - 30 or d > offs[-1] + 30:
                continue
            t = np.clip(d, offs[0], offs[-1])
            k = np.searchsorted(offs, t, side='right') - 1
            k = min(max(k, 0), len(offs) - 2)
            f = (t - offs[k]) / (offs[k + 1] - offs[k])
            origin = ipp[k] + f * (ipp[k + 1] - ipp[k])
            i = row @ (q - origin) / ps[1]
            j = col @ (q - origin) / ps[0]
            margins = [d - offs[0], offs[-1] - d, i * ps[1], (ncol - 1 - i) * ps[1], j * ps[0], (nrow - 1 - j) * ps[0]]
            out.append([x, y, z, bool(min(margins) >= 0), float(min(abs(m) for m in margins))])
print(json.dumps(out))
"#;

#[test]
fn the_scanned_region_of_a_gantry_tilted_ct_is_its_sheared_slab() {
    let dir = defacer_testkit::real("ct/ge_tilted_ct");
    let vol = defacer_volume::load(std::slice::from_ref(&dir))
        .expect("the tilted series loads")
        .remove(0);
    let (origin, dims, spacing) = WorldGrid::geometry_for(&vol, 1.0, 320).unwrap();
    let grid = WorldGrid::resample(&vol, origin, dims, spacing).unwrap();

    let out = Command::new("python3")
        .args(["-c", SLAB_REFERENCE])
        .arg(&dir)
        .output()
        .expect("this test needs python3 with numpy and pydicom");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let points: Vec<(f64, f64, f64, bool, f64)> =
        serde_json::from_slice(&out.stdout).expect("reference JSON");

    // A grid point stands for the native point up to √3/2 grid steps away from it.
    let tolerance = spacing * 3f64.sqrt() / 2.0 + 0.1;
    let (mut inside, mut outside, mut wrong) = (0, 0, Vec::new());
    for &(x, y, z, scanned, margin) in &points {
        if margin <= tolerance {
            continue;
        }
        if grid.is_scanned([x, y, z]) != scanned {
            wrong.push((x, y, z, scanned, margin));
        }
        if scanned {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    eprintln!(
        "{inside} points inside the slab, {outside} outside, {} wrong",
        wrong.len()
    );
    assert!(wrong.is_empty(), "{wrong:?}");
    // The sample reaches both sides of the slab's tilted faces, not only the ones inside.
    assert!(inside > 1000 && outside > 1000, "{inside} {outside}");
    // The tilt matters: along the anterior-posterior line at one height, the scan starts at a
    // different place than an untilted slab would: some points at the same z are in, some out.
    let mixed_z = (-80..=170).step_by(9).any(|z| {
        let row: Vec<bool> = points
            .iter()
            .filter(|p| p.2 == z as f64 && p.0 == 5.0 && p.4 > tolerance)
            .map(|p| p.3)
            .collect();
        row.contains(&true) && row.contains(&false)
    });
    assert!(
        mixed_z,
        "no height where the tilted slab's edge crosses the sample"
    );
}
