//! One module per command.

mod config;
mod data;
mod import;
mod inspect;
mod plugins;
mod run;
mod score;

use crate::{Cli, Command};
use anyhow::{Context, Result};
use descry_core::{
    config::{ConfigLoader, Study},
    registry::Registry,
};
use std::path::{Path, PathBuf};

/// Runs the command the user asked for.
pub fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Plugins { format } => plugins::run(cli, None, *format),
        Command::Config { study, set, format } => config::run(cli, study, set, *format),
        Command::Inspect { study, set, format } => inspect::run(cli, study, set, *format),
        Command::Run { study, set, out, naive } => {
            run::run(cli, study, set, out.as_deref(), *naive)
        }
        Command::Report { run_dir } => run::report(cli, run_dir),
        Command::Score {
            model,
            input,
            top,
            backend,
            device,
            threads,
            batch_tokens,
            engine,
            batch,
        } => score::run(
            cli,
            &score::ScoreArgs {
                model,
                input,
                top: *top,
                backend: backend.as_deref(),
                device,
                threads: *threads,
                batch_tokens: *batch_tokens,
                engine,
                batch: *batch,
            },
        ),
        Command::Import { args } => import::run(args),
        Command::Data { action: crate::DataAction::Fetch { to, base_url } } => {
            data::fetch(to.as_deref(), base_url)
        }
    }
}

/// Loads a study: layered config, validated.
pub fn load_study(path: &Path, set: &[String]) -> Result<Study> {
    let loader = ConfigLoader::new(Some(path), set)?;
    Ok(loader.study()?)
}

/// The plugin folders: `--plugin-dir` folders (else the folder of the running binary),
/// then the study's `plugins.paths`.
pub fn plugin_folders(cli: &Cli, study: Option<&Study>) -> Result<Vec<PathBuf>> {
    let mut folders = if cli.plugin_dirs.is_empty() {
        let exe = std::env::current_exe().context("cannot locate the descry binary")?;
        vec![exe.parent().map(Path::to_path_buf).unwrap_or_default()]
    } else {
        cli.plugin_dirs.clone()
    };
    if let Some(study) = study {
        folders.extend(study.plugins.paths.iter().map(|p| p.relative()));
    }
    Ok(folders)
}

/// Scans the plugin folders.
pub fn registry(cli: &Cli, study: Option<&Study>) -> Result<Registry> {
    Ok(Registry::scan(&plugin_folders(cli, study)?))
}

/// Plugins that did not load are reported, never fatal: the study may not need them.
pub fn warn_failures(registry: &Registry) {
    for failure in &registry.failures {
        eprintln!("warning: plugin {} not loaded: {}", failure.path.display(), failure.reason);
    }
}
