//! # defacer-check
