//! Deterministic draws from a volume's own background.
//!
//! Noise must look like the scanner's (Rician in magnitude MRI, not Gaussian), so values are
//! drawn from the empirical background rather than from a fitted distribution, and the draw is a
//! hash of the voxel position so that the output is the same whatever the thread count.

use defacer_volume::Volume;
use ndarray::Zip;

use crate::Region;

/// Stored background values per frame.
pub(crate) struct Pools(Vec<Vec<f64>>);

/// At most this many samples are kept per frame: plenty for a histogram, bounded memory.
const MAX_SAMPLES: usize = 1 << 20;

pub(crate) fn background_pools(vol: &Volume, region: &Region) -> Pools {
    let nt = vol.dims()[3];
    let outside = Zip::from(&region.head)
        .and(&region.change)
        .map_collect(|&h, &c| !h && !c);
    let n_out = outside.iter().filter(|&&m| m).count();
    let stride = n_out.div_ceil(MAX_SAMPLES).max(1);
    let pools = (0..nt)
        .map(|t| {
            let frame = vol.voxels.frame_f32(t);
            Zip::from(&frame)
                .and(&outside)
                .fold(Vec::new(), |mut acc, &v, &m| {
                    if m {
                        acc.push(v as f64);
                    }
                    acc
                })
                .into_iter()
                .step_by(stride)
                .collect()
        })
        .collect();
    Pools(pools)
}

impl Pools {
    /// A background value for voxel `ijk` of frame `t`; `None` when the volume has no background.
    pub(crate) fn draw(&self, t: usize, ijk: [usize; 3]) -> Option<f64> {
        let pool = self.0.get(t)?;
        if pool.is_empty() {
            return None;
        }
        Some(pool[(hash(t, ijk) % pool.len() as u64) as usize])
    }
}

/// splitmix64 over the voxel position: cheap, well mixed, reproducible.
pub(crate) fn hash(t: usize, ijk: [usize; 3]) -> u64 {
    let mut x =
        (t as u64) ^ ((ijk[0] as u64) << 16) ^ ((ijk[1] as u64) << 32) ^ ((ijk[2] as u64) << 48);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
