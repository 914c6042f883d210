//! Prints a GGUF file's metadata summary and tensor types, then dequantizes every tensor
//! and reports the time taken: `cargo run --release --example gguf_info -- FILE.gguf`.

use std::collections::BTreeMap;
use std::time::Instant;

use descry_onnx_build::{GgufFile, MetaValue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: gguf_info FILE.gguf [--hash]")?;
    // --hash: print the sha256 of each dequantized tensor (little-endian f32), to compare
    // with another implementation.
    let hash = std::env::args().nth(2).as_deref() == Some("--hash");
    let t0 = Instant::now();
    let g = GgufFile::open(&path)?;
    println!("{path}: GGUF v{}, opened in {:?}", g.version(), t0.elapsed());
    for (k, v) in g.metadata() {
        match v {
            MetaValue::Array(items) => println!(
                "  {k}: array of {} ({})",
                items.len(),
                items.first().map(|i| i.type_name()).unwrap_or("-")
            ),
            MetaValue::String(s) if s.len() > 80 => println!("  {k}: string of {} bytes", s.len()),
            other => println!("  {k}: {other:?}"),
        }
    }
    let t0 = Instant::now();
    let tok = descry_onnx_build::tokenizer::from_gguf(&g)?;
    println!(
        "tokenizer: {} tokens, {} merges, {} bytes of tokenizer.json, built in {:?}",
        tok.vocab_size,
        tok.num_merges,
        tok.tokenizer_json.len(),
        t0.elapsed()
    );
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for t in g.tensors() {
        *types.entry(t.ggml_type.name()).or_default() += 1;
    }
    println!("{} tensors, types: {types:?}", g.tensors().len());
    let mut spent = std::time::Duration::ZERO;
    let mut n = 0usize;
    let mut checksum = 0f64;
    for t in g.tensors() {
        let t0 = Instant::now();
        let x = g.tensor_f32(&t.name)?;
        spent += t0.elapsed();
        n += x.numel();
        if hash {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for v in &x.data {
                h.update(v.to_le_bytes());
            }
            println!("{} {:?} {} {:x}", t.name, x.shape, t.ggml_type.name(), h.finalize());
        }
        checksum += x.data.iter().map(|&v| v as f64).sum::<f64>();
    }
    println!("read + dequantized {n} elements in {spent:?} (sum {checksum:.6})");
    Ok(())
}
