//! `descry-import`: a GGUF file or a Hugging Face checkpoint into a model folder. The
//! importer's command line; `descry import` runs it (same arguments, output and exit code).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Parser;
use descry_onnx_build::arch::WeightFormat;
use descry_onnx_build::import::{import, ImportOptions};

/// Build a scoring-ready model folder (ONNX graph, tokenizer, chat template, manifest)
/// from a GGUF file or a Hugging Face checkpoint folder. No network, no Python.
// Usage lines say `descry import`: that is how users run it (`descry` forwards to it).
#[derive(Parser, Debug)]
#[command(name = "descry-import", bin_name = "descry import")]
struct Args {
    /// A `.gguf` file, or a folder with `config.json` + `*.safetensors` + `tokenizer.json`.
    source: PathBuf,
    /// The model folder to write (written whole or not at all).
    #[arg(long)]
    out: PathBuf,
    /// Model name (default: from the source's file name).
    #[arg(long)]
    name: Option<String>,
    /// Replace an existing model folder.
    #[arg(long)]
    force: bool,
    /// Store weights in `model.onnx.data` even below 2 GB.
    #[arg(long)]
    external_data: bool,
    /// Linear-layer weights: `f32` (as imported; reproduces the golden log-probs) or
    /// `int8` (8-bit blocks, int8 arithmetic on CPU; faster, less exact: see the README).
    #[arg(long, default_value = "f32", value_parser = ["f32", "int8"])]
    dtype: String,
}

fn run(
    source: &Path,
    out: &Path,
    name: Option<String>,
    force: bool,
    external_data: bool,
    dtype: &str,
) -> Result<()> {
    let weights = WeightFormat::parse(dtype)
        .ok_or_else(|| anyhow!("--dtype {dtype}: expected f32 or int8"))?;
    let started = Instant::now();
    eprintln!("importing {} into {} ...", source.display(), out.display());
    let manifest = import(source, out, &ImportOptions { name, force, external_data, weights })?;
    eprintln!(
        "imported {} ({}, {} weights, {} layers, vocabulary {}, chat template: {}) in {:.1}s",
        manifest.name,
        manifest.architecture,
        manifest.dtype,
        manifest.num_layers,
        manifest.vocab_size,
        if manifest.has_chat_template { "yes" } else { "no" },
        started.elapsed().as_secs_f64()
    );
    println!("{}", out.display());
    Ok(())
}

fn main() -> std::process::ExitCode {
    descry_cli_support::run_main(|| {
        let args = Args::parse();
        run(&args.source, &args.out, args.name, args.force, args.external_data, &args.dtype)
    })
}
