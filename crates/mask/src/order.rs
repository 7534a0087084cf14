//! Order statistics of a working grid's values (a percentile, a median), exact, in parallel,
//! without copying or reordering the values.
//!
//! A value's rank is found by radix: a count of the values by the top 16 bits of their order
//! key, then, within the one bin that holds the rank, by the low 16 bits. Two passes over the
//! values, each split over the cores, where the standard library's `select_nth_unstable` takes
//! a copy of the values and reorders it on one core (on a 1.4-million-cell grid, a selection
//! took longer than the head mask's opening). Written here because what it needs is small and
//! particular: `f32` in [`f32::total_cmp`]'s order, a subset of the cells chosen by index, and
//! the very value `select_nth_unstable_by(n, f32::total_cmp)` gives, to the bit.
//!
//! ```
//! use defacer_mask::order::Ranks;
//! let values = [3.0f32, -1.0, 7.5, 0.0, 2.0];
//! // the cells other than the first
//! let ranks = Ranks::new(&values, |c, _| c > 0);
//! assert_eq!(ranks.len(), 4);
//! assert_eq!(ranks.nth(0), Some(-1.0));
//! assert_eq!(ranks.nth(2), Some(2.0));
//! assert_eq!(ranks.nth(4), None);
//! ```

use rayon::prelude::*;

/// Bins of each of the two counts (16 bits of the key).
const BINS: usize = 1 << 16;

/// The values of the cells `keep` takes, ready to be ranked: the first of the two counts done.
pub struct Ranks<'a, F> {
    values: &'a [f32],
    keep: F,
    /// Kept values by the top 16 bits of their key.
    high: Vec<u32>,
    len: usize,
}

impl<'a, F: Fn(usize, f32) -> bool + Sync> Ranks<'a, F> {
    /// The cells `c` of `values` for which `keep(c, values[c])` holds.
    pub fn new(values: &'a [f32], keep: F) -> Self {
        let high = counts(values, &keep, |k| Some((k >> 16) as usize));
        let len = high.iter().map(|&n| n as usize).sum();
        Ranks {
            values,
            keep,
            high,
            len,
        }
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kept value of rank `n` (0 the smallest) in [`f32::total_cmp`]'s order: the value
    /// `select_nth_unstable_by(n, f32::total_cmp)` puts at `n` in a copy of the kept values.
    /// `None` if fewer than `n + 1` are kept.
    pub fn nth(&self, n: usize) -> Option<f32> {
        let (high, rest) = locate(&self.high, n)?;
        let low = counts(self.values, &self.keep, |k| {
            ((k >> 16) as usize == high).then_some((k & 0xffff) as usize)
        });
        let (low, _) = locate(&low, rest)?;
        Some(value(((high as u32) << 16) | low as u32))
    }
}

/// The key of `x` whose unsigned order is [`f32::total_cmp`]'s order of the values: the sign
/// bit set on positive values, every bit flipped on negative ones (a larger magnitude is then a
/// smaller key).
#[inline(always)]
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The value whose [`key`] is `k`.
fn value(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// How many kept values fall in each bin (`bin` of their key; `None`: not counted). The values
/// are split into two parts per core, each counted on its own, and the counts added.
fn counts(
    values: &[f32],
    keep: &(impl Fn(usize, f32) -> bool + Sync),
    bin: impl Fn(u32) -> Option<usize> + Sync,
) -> Vec<u32> {
    let part = values
        .len()
        .div_ceil(2 * rayon::current_num_threads())
        .max(1 << 14);
    values
        .par_chunks(part)
        .enumerate()
        .map(|(p, chunk)| {
            let mut n = vec![0u32; BINS];
            for (c, &x) in (p * part..).zip(chunk) {
                if keep(c, x) {
                    if let Some(b) = bin(key(x)) {
                        n[b] += 1;
                    }
                }
            }
            n
        })
        .reduce(
            || vec![0u32; BINS],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, &b)| *a += b);
                a
            },
        )
}

/// The bin that holds rank `n`, and `n`'s rank among that bin's values.
fn locate(counts: &[u32], n: usize) -> Option<(usize, usize)> {
    let mut before = 0usize;
    for (b, &c) in counts.iter().enumerate() {
        let c = c as usize;
        if n < before + c {
            return Some((b, n - before));
        }
        before += c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys order every kind of value (signed zeros, infinities, NaNs of both signs,
    /// subnormals) as `total_cmp` does, and give back the value to the bit.
    #[test]
    fn keys_keep_total_order() {
        let specials = [
            f32::NEG_INFINITY,
            -f32::MAX,
            -1.5,
            -f32::MIN_POSITIVE,
            -1e-45,
            -0.0,
            0.0,
            1e-45,
            f32::MIN_POSITIVE,
            2.0,
            f32::MAX,
            f32::INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        for &a in &specials {
            assert_eq!(value(key(a)).to_bits(), a.to_bits());
            for &b in &specials {
                assert_eq!(key(a).cmp(&key(b)), a.total_cmp(&b), "{a} against {b}");
            }
        }
    }

    proptest! {
        /// Every rank of the kept values is the value the standard library's selection puts
        /// there, to the bit, with many repeated values (a background of zeros) and negatives.
        #[test]
        fn nth_is_select_nth(
            raw in proptest::collection::vec(
                prop_oneof![Just(0.0f32), Just(-0.0f32), -3000.0f32..3000.0, any::<f32>()],
                0..3000,
            ),
            every in 1usize..4,
        ) {
            let keep = |c: usize, _: f32| c.is_multiple_of(every);
            let ranks = Ranks::new(&raw, keep);
            let mut kept: Vec<f32> =
                raw.iter().enumerate().filter(|&(c, &x)| keep(c, x)).map(|(_, &x)| x).collect();
            prop_assert_eq!(ranks.len(), kept.len());
            let last = kept.len().checked_sub(1);
            for n in (0..kept.len()).step_by(kept.len() / 50 + 1).chain(last) {
                let expected = *kept.select_nth_unstable_by(n, |a, b| a.total_cmp(b)).1;
                prop_assert_eq!(ranks.nth(n).map(f32::to_bits), Some(expected.to_bits()));
            }
            prop_assert_eq!(ranks.nth(kept.len()), None);
        }
    }

    /// Many values in the one bin of the rank (a field of equal background values with small
    /// differences below them), and a grid large enough to be counted in several parts.
    #[test]
    fn large_grids_rank_across_parts() {
        let n = 300_000;
        let values: Vec<f32> = (0..n)
            .map(|c| {
                if c % 3 == 0 {
                    0.0
                } else {
                    1.0 + (c % 1000) as f32 * 1e-6
                }
            })
            .collect();
        let ranks = Ranks::new(&values, |_, _| true);
        let mut sorted = values.clone();
        sorted.sort_by(f32::total_cmp);
        for r in [0, n / 3 - 1, n / 3, n / 2, n * 995 / 1000, n - 1] {
            assert_eq!(ranks.nth(r), Some(sorted[r]), "rank {r}");
        }
    }
}
