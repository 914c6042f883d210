//! The importer on damaged GGUF files: a small but complete llama GGUF (metadata, a
//! byte-level BPE vocabulary, every tensor) that imports, and a few hundred copies with
//! seeded random byte edits (flipped bytes, overwritten lengths, cuts, inserted and deleted
//! bytes) through [`import`]. None may panic or hang, and every error must name the file.
//! Fixed seed, so a failure reproduces; runs in seconds.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use descry_onnx_build::{import, ImportOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 12;
const MUTANTS: usize = 300;
/// Far above what one import of this model takes (milliseconds); only a hang gets here.
const PER_FILE: Duration = Duration::from_secs(20);

/// GGUF metadata values and tensors, written in the GGUF v3 layout.
#[derive(Default)]
struct Gguf {
    kv: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, Vec<f32>)>,
}

fn gguf_string(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

impl Gguf {
    fn kv(&mut self, key: &str, type_id: u32, value: Vec<u8>) {
        self.kv.push((key.into(), type_id, value));
    }
    fn string(&mut self, key: &str, v: &str) {
        self.kv(key, 8, gguf_string(v));
    }
    fn u32(&mut self, key: &str, v: u32) {
        self.kv(key, 4, v.to_le_bytes().to_vec());
    }
    fn f32(&mut self, key: &str, v: f32) {
        self.kv(key, 6, v.to_le_bytes().to_vec());
    }
    fn strings(&mut self, key: &str, items: &[String]) {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend((items.len() as u64).to_le_bytes());
        for s in items {
            b.extend(gguf_string(s));
        }
        self.kv(key, 9, b);
    }
    fn i32s(&mut self, key: &str, items: &[i32]) {
        let mut b = 5u32.to_le_bytes().to_vec();
        b.extend((items.len() as u64).to_le_bytes());
        for v in items {
            b.extend(v.to_le_bytes());
        }
        self.kv(key, 9, b);
    }
    /// An F32 tensor of row-major `shape` (stored with GGUF's innermost-first dims).
    fn tensor(&mut self, name: &str, shape: &[u64], seed: u64) {
        let n: u64 = shape.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = (0..n).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        self.tensors.push((name.into(), shape.iter().rev().copied().collect(), data));
    }
    /// The file, and where its numeric header fields are (offset, width: counts, lengths,
    /// type ids, scalar values, dims, data offsets), for edits that hit them squarely.
    fn bytes(&self) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut b = b"GGUF".to_vec();
        let mut fields = vec![(4, 4), (8, 8), (16, 8)];
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.kv.len() as u64).to_le_bytes());
        for (k, t, v) in &self.kv {
            fields.push((b.len(), 8));
            b.extend(gguf_string(k));
            fields.push((b.len(), 4));
            b.extend(t.to_le_bytes());
            // A scalar, a string's length, or an array's element type and count.
            match *t {
                9 => fields.extend([(b.len(), 4), (b.len() + 4, 8)]),
                _ => fields.push((b.len(), v.len().min(8))),
            }
            b.extend(v);
        }
        let mut data: Vec<u8> = Vec::new();
        for (name, dims, values) in &self.tensors {
            while !data.len().is_multiple_of(32) {
                data.push(0);
            }
            fields.push((b.len(), 8));
            b.extend(gguf_string(name));
            fields.push((b.len(), 4));
            b.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                fields.push((b.len(), 8));
                b.extend(d.to_le_bytes());
            }
            fields.push((b.len(), 4));
            b.extend(0u32.to_le_bytes()); // F32
            fields.push((b.len(), 8));
            b.extend((data.len() as u64).to_le_bytes());
            data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend(data);
        (b, fields)
    }
}

/// A two-layer llama with a byte-level BPE vocabulary: the 256 byte symbols, a few merges.
fn tiny_llama() -> (Vec<u8>, Vec<(usize, usize)>) {
    let (hidden, heads, kv_heads, ffn, layers) = (16u64, 4u64, 2u64, 24u64, 2u32);
    let head_dim = hidden / heads;
    // GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest above 255.
    let mut tokens: Vec<String> = Vec::new();
    let mut n = 0u32;
    for b in 0u32..256 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            char::from_u32(b).expect("char")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("char")
        };
        tokens.push(c.to_string());
    }
    let merges: Vec<String> =
        ["Ġ t", "h e", "Ġt he", "a n", "i n"].iter().map(|s| s.to_string()).collect();
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    tokens.push("<|endoftext|>".into());
    let vocab = tokens.len() as u64;
    let mut types = vec![1i32; tokens.len()];
    *types.last_mut().expect("a token") = 3;

    let mut g = Gguf::default();
    g.string("general.architecture", "llama");
    g.string("general.name", "tiny");
    g.u32("llama.block_count", layers);
    g.u32("llama.context_length", 64);
    g.u32("llama.embedding_length", hidden as u32);
    g.u32("llama.feed_forward_length", ffn as u32);
    g.u32("llama.attention.head_count", heads as u32);
    g.u32("llama.attention.head_count_kv", kv_heads as u32);
    g.f32("llama.rope.freq_base", 10_000.0);
    g.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    g.string("tokenizer.ggml.model", "gpt2");
    g.string("tokenizer.ggml.pre", "smollm");
    g.strings("tokenizer.ggml.tokens", &tokens);
    g.i32s("tokenizer.ggml.token_type", &types);
    g.strings("tokenizer.ggml.merges", &merges);
    g.u32("tokenizer.ggml.bos_token_id", vocab as u32 - 1);
    g.u32("tokenizer.ggml.eos_token_id", vocab as u32 - 1);
    g.string(
        "tokenizer.chat_template",
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}",
    );
    let mut seed = 0;
    let mut t = |g: &mut Gguf, name: &str, shape: &[u64]| {
        seed += 1;
        g.tensor(name, shape, seed);
    };
    t(&mut g, "token_embd.weight", &[vocab, hidden]);
    t(&mut g, "output_norm.weight", &[hidden]);
    for i in 0..layers {
        let p = |leaf: &str| format!("blk.{i}.{leaf}");
        t(&mut g, &p("attn_norm.weight"), &[hidden]);
        t(&mut g, &p("attn_q.weight"), &[heads * head_dim, hidden]);
        t(&mut g, &p("attn_k.weight"), &[kv_heads * head_dim, hidden]);
        t(&mut g, &p("attn_v.weight"), &[kv_heads * head_dim, hidden]);
        t(&mut g, &p("attn_output.weight"), &[hidden, heads * head_dim]);
        t(&mut g, &p("ffn_norm.weight"), &[hidden]);
        t(&mut g, &p("ffn_gate.weight"), &[ffn, hidden]);
        t(&mut g, &p("ffn_up.weight"), &[ffn, hidden]);
        t(&mut g, &p("ffn_down.weight"), &[hidden, ffn]);
    }
    g.bytes()
}

/// A value that tends to break a length, count, type id or dimension.
fn telling_value(rng: &mut ChaCha8Rng, file_len: usize) -> u64 {
    match rng.random_range(0..6) {
        0 => 0,
        1 => u64::MAX,
        2 => 1 << rng.random_range(1..63),
        3 => file_len as u64,
        4 => rng.random_range(0..40),
        _ => rng.random(),
    }
}

/// One to four random edits: a header field overwritten with a telling value, or bytes
/// changed, cut, inserted or deleted, mostly in the header (metadata and tensor infos).
fn mutate(bytes: &[u8], fields: &[(usize, usize)], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let header_len = fields.iter().map(|&(at, w)| at + w).max().unwrap_or(0);
    for _ in 0..rng.random_range(1..=4) {
        if rng.random_bool(0.4) {
            let (at, width) = fields[rng.random_range(0..fields.len())];
            if at + width <= b.len() {
                let v = telling_value(rng, b.len()).to_le_bytes();
                b[at..at + width].copy_from_slice(&v[..width]);
            }
            continue;
        }
        let span = if rng.random_bool(0.8) { header_len.min(b.len()) } else { b.len() };
        if span == 0 {
            break;
        }
        let at = rng.random_range(0..span);
        match rng.random_range(0..6) {
            0 | 1 => b[at] = rng.random(),
            2 => b[at] ^= 1 << rng.random_range(0..8),
            3 => {
                // An 8-byte field overwritten with a telling value (lengths, counts, dims).
                let v = telling_value(rng, b.len());
                let end = (at + 8).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
            4 => b.truncate(at),
            _ => {
                if rng.random_bool(0.5) {
                    b.insert(at, rng.random());
                } else {
                    b.remove(at);
                }
            }
        }
    }
    b
}

/// The result of importing one file: `Ok(None)` imported, `Ok(Some(msg))` an error,
/// `Err(msg)` a panic.
type Outcome = Result<Option<String>, String>;

fn import_one(src: &Path, out: &Path) -> Outcome {
    let result = std::panic::catch_unwind(|| import(src, out, &ImportOptions::default()));
    let _ = std::fs::remove_dir_all(out);
    match result {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) => Ok(Some(e.to_string())),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()),
    }
}

#[test]
fn damaged_gguf_files_never_panic_or_hang_and_every_error_names_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (base, fields) = tiny_llama();
    let src = tmp.path().join("tiny.gguf");
    std::fs::write(&src, &base).expect("write");
    // The undamaged file imports: the mutants exercise the whole importer, not only the
    // first check.
    let out = tmp.path().join("out");
    assert_eq!(import_one(&src, &out), Ok(None), "the base file must import");

    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let files: Vec<(PathBuf, PathBuf)> = (0..MUTANTS)
        .map(|i| {
            let p = tmp.path().join(format!("mutant-{i:03}.gguf"));
            std::fs::write(&p, mutate(&base, &fields, &mut rng)).expect("write");
            (p, tmp.path().join(format!("out-{i:03}")))
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    let worker_files = files.clone();
    // A worker thread, so a hang shows as a timeout here instead of a stuck test.
    std::thread::spawn(move || {
        for (src, out) in worker_files {
            if tx.send(import_one(&src, &out)).is_err() {
                return;
            }
        }
    });
    let (mut imported, mut failed) = (0, 0);
    // What the errors said, by kind, for the log.
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for (src, _) in &files {
        let name = src.file_name().expect("name").to_string_lossy().into_owned();
        match rx.recv_timeout(PER_FILE) {
            Err(_) => {
                panic!("{name}: no result within {PER_FILE:?} (a hang); rerun with seed {SEED}")
            }
            Ok(Err(panic)) => panic!("{name}: the import panicked: {panic}"),
            Ok(Ok(None)) => imported += 1,
            Ok(Ok(Some(msg))) => {
                assert!(msg.contains(&name), "{name}: the error does not name the file: {msg}");
                failed += 1;
                let kind = [
                    "truncated",
                    "corrupt",
                    "quantization type",
                    "metadata key",
                    "tensor",
                    "tokenizer",
                ]
                .into_iter()
                .find(|k| msg.contains(k))
                .unwrap_or("other");
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    eprintln!(
        "{MUTANTS} damaged files: {imported} imported anyway, {failed} refused with an error naming the file ({kinds:?})"
    );
    assert!(failed > MUTANTS / 2, "most damage must be caught ({failed} of {MUTANTS})");
}
