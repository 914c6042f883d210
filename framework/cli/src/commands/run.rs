//! `descry run` and `descry report`.

use crate::Cli;
use anyhow::Result;
use descry_core::{
    pipeline::{rebuild_report, run_study, RunEvent, RunRequest},
    plan::Grouping,
};
use std::{io::IsTerminal, path::Path};

fn print_event(event: RunEvent) {
    eprintln!("{event}");
}

pub fn run(
    cli: &Cli,
    study_path: &Path,
    set: &[String],
    out: Option<&Path>,
    naive: bool,
) -> Result<()> {
    let study = super::load_study(study_path, set)?;
    let registry = super::registry(cli, Some(&study))?;
    super::warn_failures(&registry);
    let request = RunRequest {
        out: out.map(Path::to_path_buf).unwrap_or_else(|| study.study.output.relative()),
        grouping: if naive { Grouping::PerDecision } else { Grouping::Prefix },
        progress: std::io::stderr().is_terminal(),
    };
    let outcome = run_study(&study, &registry, &request, &mut print_event)?;
    println!("{}", outcome.report.display());
    Ok(())
}

pub fn report(cli: &Cli, run_dir: &Path) -> Result<()> {
    let registry = super::registry(cli, None)?;
    let report = rebuild_report(&registry, run_dir, &mut print_event)?;
    println!("{}", report.display());
    Ok(())
}
