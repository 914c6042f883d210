//! `descry import`: a GGUF file or a Hugging Face checkpoint into a model folder.

use anyhow::{anyhow, Result};
use descry_onnx_build::{
    arch::WeightFormat,
    import::{import, ImportOptions},
};
use std::{path::Path, time::Instant};

pub fn run(
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
