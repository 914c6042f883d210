//! `descry import`: a GGUF file or a Hugging Face checkpoint into a model folder.

use anyhow::Result;
use descry_onnx_build::import::{import, ImportOptions};
use std::{path::Path, time::Instant};

pub fn run(source: &Path, out: &Path, name: Option<String>, force: bool, external_data: bool) -> Result<()> {
    let started = Instant::now();
    eprintln!("importing {} into {} ...", source.display(), out.display());
    let manifest = import(source, out, &ImportOptions { name, force, external_data })?;
    eprintln!(
        "imported {} ({}, {} layers, vocabulary {}, chat template: {}) in {:.1}s",
        manifest.name,
        manifest.architecture,
        manifest.num_layers,
        manifest.vocab_size,
        if manifest.has_chat_template { "yes" } else { "no" },
        started.elapsed().as_secs_f64()
    );
    println!("{}", out.display());
    Ok(())
}
