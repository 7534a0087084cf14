//! Running the real binary from integration tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `defacer` with `args`.
pub fn defacer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_defacer"))
        .args(args)
        .output()
        .expect("cannot run defacer")
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What the command printed on stderr.
#[allow(dead_code)] // not every test file uses every helper
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything the command printed.
#[allow(dead_code)]
pub fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
