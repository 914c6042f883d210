//! `descry import`: runs the importer, `descry-import`, installed beside this binary. The
//! importer builds an engine's artifacts, so it is its own program: the `descry` binary
//! links no engine.

use anyhow::{bail, Context, Result};
use std::{os::unix::process::CommandExt, path::Path};

/// The importer's file name.
const IMPORTER: &str = "descry-import";

pub fn run(
    source: &Path,
    out: &Path,
    name: Option<&str>,
    force: bool,
    external_data: bool,
    dtype: &str,
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the descry binary")?;
    let importer = exe.with_file_name(IMPORTER);
    if !importer.is_file() {
        bail!(
            "`descry import` runs the importer {}, which is not there; build it with `cargo \
             build --workspace` (it is built with the plugins)",
            importer.display()
        );
    }
    let mut command = std::process::Command::new(&importer);
    command.arg(source).arg("--out").arg(out).args(["--dtype", dtype]);
    if let Some(name) = name {
        command.args(["--name", name]);
    }
    if force {
        command.arg("--force");
    }
    if external_data {
        command.arg("--external-data");
    }
    // The importer takes over this process: its output, messages and exit status are the
    // command's own.
    let error = command.exec();
    Err(error).with_context(|| format!("could not run {}", importer.display()))
}
