//! `descry`: measure how well language models predict what real people decide.
//!
//! A thin shell: parse the command line, call descry-core, print.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Command-line options shared by every command.
#[derive(Parser, Debug)]
#[command(
    name = "descry",
    version,
    about = "How well do language models predict real human decisions?"
)]
pub struct Cli {
    /// Plugin folder to scan instead of the folder of the `descry` binary (repeatable).
    /// A study's `plugins.paths` are scanned as well.
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of listing commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON on standard output.
    Json,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every loaded plugin and every library that failed to load, with its reason.
    Plugins {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the merged configuration of a study (defaults < file < DESCRY_* < --set).
    Config {
        /// The study file (TOML).
        study: PathBuf,
        /// Override a key: `--set backend.threads=4` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output format (the merged study as TOML, or JSON).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run a study: score every model pair on every game and variant, store the predictions
    /// (resumable), analyse them and write the report.
    Run {
        /// The study file (TOML).
        study: PathBuf,
        /// Override a key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (default: the study's `study.output`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Score each decision in its own sequence (the published method) instead of whole
        /// episodes; same predictions, more arithmetic.
        #[arg(long)]
        naive: bool,
    },
    /// Build a scoring-ready model folder (the engine's graph, tokenizer, chat template,
    /// manifest) from a GGUF file or a Hugging Face checkpoint folder. No network, no Python.
    /// Runs the importer `descry-import` installed beside this binary with these arguments;
    /// `descry import --help` lists them.
    #[command(disable_help_flag = true)]
    Import {
        /// SOURCE --out DIR [--name NAME] [--force] [--external-data] [--dtype f32|int8].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
    /// Score prompts with a model folder and print next-token log-probs as JSONL (the shape
    /// of the reference golden file): a low-level check of an import and a backend.
    Score {
        /// The model folder.
        #[arg(long)]
        model: PathBuf,
        /// JSONL input: {"id", "text" | "input_ids", "positions"?, "candidates"?} per line.
        #[arg(long)]
        input: PathBuf,
        /// How many most likely next tokens to list per position.
        #[arg(long, default_value_t = 10)]
        top: u32,
        /// Backend plugin (default: the one backend plugin loaded).
        #[arg(long)]
        backend: Option<String>,
        /// `cpu` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Intra-op threads (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Token budget of one forward batch.
        #[arg(long, default_value_t = 8192)]
        batch_tokens: usize,
        /// A setting of the backend's own table, as in a study's `[backend.PLUGIN]`
        /// (repeatable; the value parses as TOML, else it is a string), e.g.
        /// `--engine graph_optimization=basic`. `descry plugins` lists the backends.
        #[arg(long = "engine", value_name = "KEY=VALUE")]
        engine: Vec<String>,
        /// Prompts per scoring call.
        #[arg(long, default_value_t = 8)]
        batch: usize,
    },
    /// Human data sets.
    Data {
        /// What to do.
        #[command(subcommand)]
        action: DataAction,
    },
    /// Rebuild the report of a run folder from its stored predictions.
    Report {
        /// The run folder.
        run_dir: PathBuf,
    },
    /// Per game and variant: episodes, decision points, human outcomes, what was skipped and
    /// why, and one rendered sample prompt (also as each configured model reads it).
    Inspect {
        /// The study file (TOML).
        study: PathBuf,
        /// Override a key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// `descry data` actions.
#[derive(Subcommand, Debug)]
pub enum DataAction {
    /// Download the public Akata and choices13k releases at their pinned commits and verify
    /// their sha256 (for machines without `../shared/data`).
    Fetch {
        /// Destination folder (default: `$DESCRY_HOME/data`, where studies look when
        /// `../shared/data` does not exist).
        #[arg(long)]
        to: Option<PathBuf>,
        /// Base URL serving `REPOSITORY/COMMIT/PATH` (for mirrors and tests).
        #[arg(long, default_value = descry_core::fetch::DEFAULT_BASE_URL)]
        base_url: String,
    },
}

fn main() -> std::process::ExitCode {
    descry_cli_support::run_main(|| commands::run(&Cli::parse()))
}
