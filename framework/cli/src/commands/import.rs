//! `descry import`: runs the importer, `descry-import`, installed beside this binary, with
//! the command's arguments. The importer builds an engine's artifacts, so it is its own
//! program (with its own options and help): the `descry` binary links no engine.

use anyhow::{bail, Context, Result};
use std::{ffi::OsString, os::unix::process::CommandExt};

/// The importer's file name.
const IMPORTER: &str = "descry-import";

pub fn run(args: &[OsString]) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the descry binary")?;
    let importer = exe.with_file_name(IMPORTER);
    if !importer.is_file() {
        bail!(
            "`descry import` runs the importer {}, which is not there; build it with `cargo \
             build --workspace` (it is built with the plugins)",
            importer.display()
        );
    }
    // The importer takes over this process: its output, messages and exit status are the
    // command's own.
    let error = std::process::Command::new(&importer).args(args).exec();
    Err(error).with_context(|| format!("could not run {}", importer.display()))
}
