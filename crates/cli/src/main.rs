//! `defacer`: removes faces from CT and MRI head scans. This binary only parses arguments and
//! wires the library crates together; see `defacer-volume`, `defacer-mask`, `defacer-apply`.

mod check;
mod deface;
mod info;
mod inputs;
mod plan;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "defacer",
    version,
    about = "Remove faces from CT and MRI head scans (NIfTI, DICOM)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a file or DICOM series holds: format, dimensions, voxel size, orientation.
    Info(info::InfoArgs),
    /// Remove, blur or replace the face in head volumes (files, DICOM series, folders).
    Deface(deface::DefaceArgs),
    /// Render each volume's skin in 3-D and look for a face with a face detector.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version and 2 for usage errors, as we want.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let code = match cli.command {
        Command::Info(a) => info::run(&a),
        Command::Deface(a) => deface::run(&a),
        Command::Check(a) => check::run(&a),
    };
    ExitCode::from(code)
}

/// Exit codes shared by the commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Some inputs failed (deface), or a face was found (check).
    pub const SOME_FAILED: u8 = 1;
    /// Usage errors and unreadable input.
    pub const ERROR: u8 = 2;
}

/// Prints a one-line error to stderr.
pub fn report_error(e: &dyn std::fmt::Display) {
    eprintln!("defacer: error: {e}");
}
