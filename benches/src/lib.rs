//! Benchmarks live in `benches/`; see `compare.sh` for whole-command comparisons.
