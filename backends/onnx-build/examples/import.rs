//! Imports a GGUF file or Hugging Face checkpoint folder into a model folder and prints the
//! manifest and the wall time. Usage: `import SOURCE OUT_DIR [--force] [--external-data]`.

use std::path::PathBuf;
use std::time::Instant;

use descry_onnx_build::{import, ImportOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [source, out] = paths.as_slice() else {
        return Err("usage: import SOURCE OUT_DIR [--force] [--external-data]".into());
    };
    let opts = ImportOptions {
        force: args.iter().any(|a| a == "--force"),
        external_data: args.iter().any(|a| a == "--external-data"),
        ..Default::default()
    };
    let t = Instant::now();
    let manifest = import(&PathBuf::from(source), &PathBuf::from(out), &opts)?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    eprintln!("imported in {:.2?}", t.elapsed());
    Ok(())
}
