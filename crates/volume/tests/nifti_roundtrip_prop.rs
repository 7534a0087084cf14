//! Properties of NIfTI writing and reading: any small volume of any supported type, with any
//! affine and scaling, comes back identical; and no corruption of a real header makes `load`
//! panic.

mod nifti_support;

use defacer_testkit::{real, scratch};
use defacer_volume::{nifti, Affine, Modality, SaveOptions, Scaling, Volume, Voxels};
use nalgebra::{Matrix4, UnitQuaternion, Vector3};
use proptest::prelude::*;

/// Builds voxels of datatype number `dt` (0..8) from raw random bits.
fn voxels(dt: usize, dims: [usize; 4], bits: &[u64]) -> Voxels {
    match dt {
        0 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as u8).collect()),
        1 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as i8).collect()),
        2 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as u16).collect()),
        3 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as i16).collect()),
        4 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as u32).collect()),
        5 => Voxels::from_file_order(dims, bits.iter().map(|&b| b as i32).collect()),
        6 => Voxels::from_file_order(
            dims,
            bits.iter().map(|&b| f32::from_bits(b as u32)).collect(),
        ),
        _ => Voxels::from_file_order(dims, bits.iter().map(|&b| f64::from_bits(b)).collect()),
    }
    .expect("shape matches")
}

/// A rotation × zoom (with optional flip) + translation affine whose entries are float32
/// values, as the NIfTI-1 sform stores them.
fn affine(q: [f64; 4], zooms: [f64; 3], flip: bool, t: [f64; 3]) -> Affine {
    let rot = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(q[0], q[1], q[2], q[3]));
    let mut z = Vector3::from(zooms);
    if flip {
        z[0] = -z[0];
    }
    let m3 = rot.to_rotation_matrix().into_inner() * nalgebra::Matrix3::from_diagonal(&z);
    let mut m = Matrix4::identity();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(&m3);
    for i in 0..3 {
        m[(i, 3)] = t[i];
    }
    Affine(m.map(|v| v as f32 as f64))
}

fn small_volume() -> impl Strategy<Value = Volume> {
    let dims = (1usize..6, 1usize..6, 1usize..6, 1usize..3);
    let geometry = (
        prop::array::uniform4(0.1f64..1.0),
        prop::array::uniform3(0.2f64..4.0),
        any::<bool>(),
        prop::array::uniform3(-300.0f64..300.0),
    );
    let scaling = (0.01f32..100.0, -1000.0f32..1000.0);
    (dims, 0usize..8, geometry, scaling).prop_flat_map(|(d, dt, g, s)| {
        let dims = [d.0, d.1, d.2, d.3];
        let n = dims.iter().product::<usize>();
        prop::collection::vec(any::<u64>(), n).prop_map(move |bits| {
            let scaling = Scaling {
                slope: s.0 as f64,
                intercept: s.1 as f64,
            };
            let a = affine(g.0, g.1, g.2, g.3);
            Volume::synthetic(voxels(dt, dims, &bits), a, scaling, Modality::Unknown)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn written_volumes_read_back_identical(vol in small_volume(), ext in 0usize..3) {
        let dir = scratch("nifti-prop");
        let name = ["a.nii", "a.nii.gz", "a.hdr"][ext];
        let first = dir.join(name);
        let opts = SaveOptions { description: "property test".into(), ..Default::default() };
        nifti::save(&vol, &first, &opts).unwrap();
        let back = nifti::load(&first).unwrap();
        prop_assert_eq!(back.dims(), vol.dims());
        prop_assert_eq!(back.datatype(), vol.datatype());
        prop_assert!(back.voxels.to_le_bytes() == vol.voxels.to_le_bytes());
        prop_assert_eq!(back.affine, vol.affine);
        prop_assert_eq!(back.scaling, vol.scaling);
        // Saving what was read writes the very same bytes again.
        let second = dir.join(format!("b{}", &name[1..]));
        nifti::save(&back, &second, &opts).unwrap();
        let files = |p: &std::path::Path| {
            let f = nifti::Files::from_path(p);
            (f.header_path().to_path_buf(), f.data_path().to_path_buf())
        };
        let (h1, d1) = files(&first);
        let (h2, d2) = files(&second);
        prop_assert!(std::fs::read(h1).unwrap() == std::fs::read(h2).unwrap());
        prop_assert!(std::fs::read(d1).unwrap() == std::fs::read(d2).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_headers_never_panic(
        hits in prop::collection::vec((0usize..352, any::<u8>()), 1..8),
        cut in prop::option::of(0usize..2000),
    ) {
        let mut bytes = nifti_support::raw_bytes(&real("templates/mni152/mniMask.nii.gz"));
        for (at, v) in hits {
            bytes[at] = v;
        }
        if let Some(c) = cut {
            bytes.truncate(c);
        }
        let dir = scratch("nifti-damaged");
        let p = dir.join("damaged.nii");
        std::fs::write(&p, &bytes).unwrap();
        // Either outcome is fine; a panic or abort fails the test.
        if let Err(e) = nifti::load(&p) {
            prop_assert!(e.to_string().contains("damaged.nii"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
