//! Builds Hugging Face tokenizer files (`tokenizer.json`, `tokenizer_config.json`, the chat
//! template) from a GGUF file's `tokenizer.ggml.*` metadata, the way transformers' GGUF
//! loader does, so that token ids match the ones the reference model was evaluated with.
//!
//! Two vocabulary kinds are supported:
//! - `tokenizer.ggml.model = gpt2`: byte-level BPE with the file's merges and a
//!   pre-tokenizer chosen by `tokenizer.ggml.pre`;
//! - `tokenizer.ggml.model = llama`: a SentencePiece vocabulary with scores and no merges,
//!   converted to BPE with merges derived from the scores (see [`spm_merges`]).

use std::collections::HashMap;
use std::path::Path;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::ImportError;
use crate::gguf::GgufFile;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;

/// The tokenizer files of a model folder, ready to write.
#[derive(Debug, Clone)]
pub struct TokenizerFiles {
    /// The `tokenizer.json` text (Hugging Face `tokenizers` format, compact JSON).
    pub tokenizer_json: String,
    /// The `tokenizer_config.json` content.
    pub tokenizer_config: Value,
    /// The chat template (Jinja), when the model has one.
    pub chat_template: Option<String>,
    /// Whether encoding prepends the BOS token.
    pub add_bos_token: bool,
    /// The BOS token text, if the vocabulary names one.
    pub bos_token: Option<String>,
    /// The EOS token text, if the vocabulary names one.
    pub eos_token: Option<String>,
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Number of BPE merges in `tokenizer.json`.
    pub num_merges: usize,
}

impl TokenizerFiles {
    /// Writes `tokenizer.json`, `tokenizer_config.json` and (when there is a chat template)
    /// `chat_template.jinja` into `dir`, which must exist.
    pub fn write_to(&self, dir: &Path) -> Result<(), ImportError> {
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| ImportError::io(path, e))
        };
        write("tokenizer.json", self.tokenizer_json.as_bytes())?;
        let config = serde_json::to_string_pretty(&self.tokenizer_config)
            .map_err(|e| ImportError::io(dir.join("tokenizer_config.json"), e.into()))?;
        write("tokenizer_config.json", config.as_bytes())?;
        if let Some(template) = &self.chat_template {
            write("chat_template.jinja", template.as_bytes())?;
        }
        Ok(())
    }
}

/// Builds the tokenizer files from a GGUF file's metadata.
pub fn from_gguf(gguf: &GgufFile) -> Result<TokenizerFiles, ImportError> {
    let path = gguf.path();
    let model = gguf.get_str("tokenizer.ggml.model")?;
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
    if tokens.is_empty() {
        return Err(tok_err(gguf, "tokenizer.ggml.tokens is empty".into()));
    }
    let token_types = match gguf.get("tokenizer.ggml.token_type") {
        Some(_) => {
            let types = gguf.get_i64_array("tokenizer.ggml.token_type")?;
            if types.len() != tokens.len() {
                return Err(ImportError::BadMetadata {
                    path: path.to_path_buf(),
                    key: "tokenizer.ggml.token_type".into(),
                    reason: format!("has {} entries for {} tokens", types.len(), tokens.len()),
                });
            }
            Some(types)
        }
        None => None,
    };
    let token_id = |key: &str| -> Result<Option<usize>, ImportError> {
        match gguf.opt_u64(key)? {
            None => Ok(None),
            Some(id) if (id as usize) < tokens.len() => Ok(Some(id as usize)),
            Some(id) => Err(ImportError::BadMetadata {
                path: path.to_path_buf(),
                key: key.to_string(),
                reason: format!("token id {id} is outside the vocabulary of {}", tokens.len()),
            }),
        }
    };
    let bos = token_id("tokenizer.ggml.bos_token_id")?;
    let eos = token_id("tokenizer.ggml.eos_token_id")?;
    let unk = token_id("tokenizer.ggml.unknown_token_id")?;
    let pad = token_id("tokenizer.ggml.padding_token_id")?;
    let chat_template = gguf.opt_str("tokenizer.chat_template")?.map(str::to_string);

    let (spec, default_add_bos) = match model {
        "gpt2" => {
            let merges = gguf.get_str_array("tokenizer.ggml.merges")?;
            let merges = merges
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    m.split_once(' ').ok_or_else(|| ImportError::BadMetadata {
                        path: path.to_path_buf(),
                        key: "tokenizer.ggml.merges".into(),
                        reason: format!("merge #{i} {m:?} is not two tokens separated by a space"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let pre = gguf.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
            let pre_tokenizer = byte_level_pre_tokenizer(pre).ok_or_else(|| {
                tok_err(gguf, format!("byte-level pre-tokenizer \"{pre}\" (tokenizer.ggml.pre) is not supported (supported: default, gpt2, smollm, llama3, llama-bpe, qwen2)"))
            })?;
            let merges: Vec<(String, String)> =
                merges.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            let spec = Spec {
                normalizer: Value::Null,
                pre_tokenizer,
                decoder: json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}),
                tokens: tokens.iter().map(|t| t.to_string()).collect(),
                merges,
                unk_token: None,
                fuse_unk: false,
                byte_fallback: false,
            };
            // llama.cpp's default for byte-level vocabularies: no BOS unless the file says so.
            (spec, false)
        }
        "llama" => {
            let scores = gguf.get_f32_array("tokenizer.ggml.scores")?;
            if scores.len() != tokens.len() {
                return Err(ImportError::BadMetadata {
                    path: path.to_path_buf(),
                    key: "tokenizer.ggml.scores".into(),
                    reason: format!("has {} entries for {} tokens", scores.len(), tokens.len()),
                });
            }
            if gguf.get("tokenizer.ggml.merges").is_some() {
                return Err(tok_err(gguf, "a SentencePiece (llama) vocabulary with tokenizer.ggml.merges is not supported".into()));
            }
            // Gemma's GGUF spells whitespace-run tokens with spaces where SentencePiece
            // writes `▁`; with spaces they could never match the normalized text.
            let tokens: Vec<String> = tokens
                .iter()
                .map(|t| if !t.is_empty() && t.chars().all(|c| c == ' ') { "▁".repeat(t.chars().count()) } else { t.to_string() })
                .collect();
            let merges = {
                let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
                spm_merges(&refs, &scores)
            };
            let add_space_prefix = gguf.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
            let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
            let normalizer = if add_space_prefix {
                json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, replace]})
            } else {
                replace
            };
            let mut decoders = vec![
                json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if add_space_prefix {
                decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            let spec = Spec {
                normalizer,
                pre_tokenizer: json!({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}),
                decoder: json!({"type": "Sequence", "decoders": decoders}),
                tokens,
                merges,
                unk_token: unk,
                fuse_unk: true,
                byte_fallback: true,
            };
            (spec, true)
        }
        other => {
            return Err(tok_err(gguf, format!("tokenizer model \"{other}\" (tokenizer.ggml.model) is not supported (supported: gpt2, llama)")))
        }
    };

    let add_bos = gguf.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos);
    let add_eos = gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let text = |id: Option<usize>| id.map(|i| spec.tokens[i].clone());
    if add_bos && bos.is_none() {
        return Err(ImportError::MissingMetadata {
            path: path.to_path_buf(),
            key: "tokenizer.ggml.bos_token_id".into(),
        });
    }
    if add_eos && eos.is_none() {
        return Err(ImportError::MissingMetadata {
            path: path.to_path_buf(),
            key: "tokenizer.ggml.eos_token_id".into(),
        });
    }

    // Control tokens are matched before normalization and never split, as in the
    // reference conversion; without token types, fall back to the named special tokens.
    let special_ids: Vec<usize> = match &token_types {
        Some(types) => (0..spec.tokens.len()).filter(|&i| types[i] == TOKEN_TYPE_CONTROL).collect(),
        None => {
            let mut ids: Vec<usize> = [unk, bos, eos].into_iter().flatten().collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    };
    let added_tokens: Vec<Value> = special_ids
        .iter()
        .map(|&i| {
            json!({"id": i, "content": spec.tokens[i], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();

    // Checked above: when a token is added, its id is known.
    let bos_added = bos.filter(|_| add_bos).map(|i| (spec.tokens[i].as_str(), i));
    let eos_added = eos.filter(|_| add_eos).map(|i| (spec.tokens[i].as_str(), i));
    let post_processor = if bos_added.is_some() || eos_added.is_some() {
        template_processing(bos_added, eos_added)
    } else if model == "gpt2" {
        json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})
    } else {
        Value::Null
    };

    let file = TokenizerJson {
        version: "1.0",
        truncation: (),
        padding: (),
        added_tokens: &added_tokens,
        normalizer: &spec.normalizer,
        pre_tokenizer: &spec.pre_tokenizer,
        post_processor: &post_processor,
        decoder: &spec.decoder,
        model: BpeModel {
            kind: "BPE",
            dropout: (),
            unk_token: spec.unk_token.map(|i| spec.tokens[i].as_str()),
            continuing_subword_prefix: (),
            end_of_word_suffix: (),
            fuse_unk: spec.fuse_unk,
            byte_fallback: spec.byte_fallback,
            ignore_merges: false,
            vocab: Vocab(&spec.tokens),
            merges: Merges(&spec.merges),
        },
    };
    let tokenizer_json = serde_json::to_string(&file)
        .map_err(|e| tok_err(gguf, format!("serializing tokenizer.json: {e}")))?;

    let mut config = serde_json::Map::new();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    config.insert("add_bos_token".into(), json!(add_bos));
    config.insert("add_eos_token".into(), json!(add_eos));
    config.insert("bos_token".into(), json!(text(bos)));
    config.insert("eos_token".into(), json!(text(eos)));
    config.insert("unk_token".into(), json!(text(unk)));
    config.insert("pad_token".into(), json!(text(pad)));
    config.insert("clean_up_tokenization_spaces".into(), json!(false));
    if let Some(t) = &chat_template {
        config.insert("chat_template".into(), json!(t));
    }

    Ok(TokenizerFiles {
        tokenizer_json,
        tokenizer_config: Value::Object(config),
        chat_template,
        add_bos_token: add_bos,
        bos_token: text(bos),
        eos_token: text(eos),
        vocab_size: spec.tokens.len(),
        num_merges: spec.merges.len(),
    })
}

fn tok_err(gguf: &GgufFile, reason: String) -> ImportError {
    ImportError::Tokenizer { path: gguf.path().to_path_buf(), reason }
}

/// The parts that differ between vocabulary kinds.
struct Spec {
    normalizer: Value,
    pre_tokenizer: Value,
    decoder: Value,
    tokens: Vec<String>,
    merges: Vec<(String, String)>,
    unk_token: Option<usize>,
    fuse_unk: bool,
    byte_fallback: bool,
}

/// The pre-tokenizer for a byte-level vocabulary, by `tokenizer.ggml.pre`.
fn byte_level_pre_tokenizer(pre: &str) -> Option<Value> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |regex: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            byte_level(false)]})
    };
    Some(match pre {
        "default" | "gpt2" => byte_level(true),
        // SmolLM's own tokenizer.json (and llama.cpp's "smollm"): one token per digit,
        // then GPT-2's split.
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama3" | "llama-v3" | "llama-bpe" => split(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ),
        "qwen2" => split(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ),
        _ => return None,
    })
}

/// A `TemplateProcessing` post-processor adding BOS and/or EOS around each sequence.
fn template_processing(bos: Option<(&str, usize)>, eos: Option<(&str, usize)>) -> Value {
    let seq = |type_id: u32, id: &str| {
        let mut items = Vec::new();
        if let Some((b, _)) = bos {
            items.push(json!({"SpecialToken": {"id": b, "type_id": type_id}}));
        }
        items.push(json!({"Sequence": {"id": id, "type_id": type_id}}));
        if let Some((e, _)) = eos {
            items.push(json!({"SpecialToken": {"id": e, "type_id": type_id}}));
        }
        items
    };
    let single = seq(0, "A");
    let mut pair = single.clone();
    pair.extend(seq(1, "B"));
    let mut special = serde_json::Map::new();
    for (t, id) in [bos, eos].into_iter().flatten() {
        special.insert(t.to_string(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special})
}

/// BPE merges derived from a SentencePiece vocabulary's scores, as transformers'
/// `GGUFTokenizerSkeleton` derives them for GGUF files without merges:
///
/// - for every token (in vocabulary order) and every split into two non-empty pieces at a
///   character boundary where both pieces are in the vocabulary, a merge `(left, right)`
///   ranked by the merged token's score;
/// - the splits of one token are ordered by (score of left, score of right), highest first;
/// - all merges are then stably sorted by the merged token's score, highest first.
pub fn spm_merges(tokens: &[&str], scores: &[f32]) -> Vec<(String, String)> {
    // Python's dict keeps the last id of a duplicated token; do the same.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        index.insert(t, i);
    }
    // Python compares 0.0 and -0.0 as equal; total_cmp would not.
    let score = |i: usize| if scores[i] == 0.0 { 0.0 } else { scores[i] };
    // (merged token, left piece, right piece), built in the reference's iteration order.
    let mut merges: Vec<(usize, usize, usize)> = Vec::new();
    let mut local: Vec<(usize, usize, usize)> = Vec::new();
    let mut seen = vec![false; tokens.len()];
    for token in tokens {
        // A duplicated token is visited once, at its first position, with its last id.
        let id = index[token];
        if seen[id] {
            continue;
        }
        seen[id] = true;
        local.clear();
        for (split, _) in token.char_indices().skip(1) {
            let (l, r) = token.split_at(split);
            if let (Some(&li), Some(&ri)) = (index.get(l), index.get(r)) {
                local.push((id, li, ri));
            }
        }
        local.sort_by(|a, b| {
            score(b.1).total_cmp(&score(a.1)).then(score(b.2).total_cmp(&score(a.2)))
        });
        merges.extend_from_slice(&local);
    }
    merges.sort_by(|a, b| score(b.0).total_cmp(&score(a.0)));
    merges.into_iter().map(|(_, l, r)| (tokens[l].to_string(), tokens[r].to_string())).collect()
}

#[derive(Serialize)]
struct TokenizerJson<'a> {
    version: &'static str,
    truncation: (),
    padding: (),
    added_tokens: &'a [Value],
    normalizer: &'a Value,
    pre_tokenizer: &'a Value,
    post_processor: &'a Value,
    decoder: &'a Value,
    model: BpeModel<'a>,
}

#[derive(Serialize)]
struct BpeModel<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    dropout: (),
    unk_token: Option<&'a str>,
    continuing_subword_prefix: (),
    end_of_word_suffix: (),
    fuse_unk: bool,
    byte_fallback: bool,
    ignore_merges: bool,
    vocab: Vocab<'a>,
    merges: Merges<'a>,
}

/// Serializes token → id, keeping the last id of a duplicated token (as a Python dict
/// built from the list would) and writing each token once.
struct Vocab<'a>(&'a [String]);

impl Serialize for Vocab<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(self.0.len());
        for (i, t) in self.0.iter().enumerate() {
            last.insert(t, i);
        }
        let mut map = s.serialize_map(Some(last.len()))?;
        for (i, t) in self.0.iter().enumerate() {
            if last[t.as_str()] == i {
                map.serialize_entry(t, &i)?;
            }
        }
        map.end()
    }
}

/// Merges as `[left, right]` pairs: tokens may contain spaces, which the older
/// `"left right"` form cannot express.
struct Merges<'a>(&'a [(String, String)]);

impl Serialize for Merges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (l, r) in self.0 {
            seq.serialize_element(&[l, r])?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::gguf::tests::Builder;

    #[test]
    fn merges_from_scores() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc", "ca"];
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -1.0];
        let merges = spm_merges(&tokens, &scores);
        let merges: Vec<(&str, &str)> =
            merges.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        // By merged score, highest first; "ab" before "ca" (same score, vocabulary order);
        // within "abc", a|bc (left score 0) before ab|c (left score -1).
        assert_eq!(merges, [("a", "b"), ("c", "a"), ("b", "c"), ("a", "bc"), ("ab", "c")]);
    }

    fn spm_vocab() -> Builder {
        let tokens =
            ["<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "c", "ab", "▁", "▁c", "  ", "<0x41>"];
        let scores = [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -1000.0, 0.0];
        let types = [3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 4, 6];
        Builder::default()
            .string("tokenizer.ggml.model", "llama")
            .str_array("tokenizer.ggml.tokens", &tokens)
            .f32_array("tokenizer.ggml.scores", &scores)
            .i32_array("tokenizer.ggml.token_type", &types)
            .u32("tokenizer.ggml.bos_token_id", 2)
            .u32("tokenizer.ggml.eos_token_id", 1)
            .u32("tokenizer.ggml.unknown_token_id", 3)
            .u32("tokenizer.ggml.padding_token_id", 0)
            .kv("tokenizer.ggml.add_space_prefix", 7, vec![0])
    }

    #[test]
    fn sentencepiece_vocab_becomes_bpe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = GgufFile::open(spm_vocab().write(dir.path(), "spm.gguf")).expect("open");
        let files = from_gguf(&g).expect("tokenizer");
        assert!(files.add_bos_token);
        assert_eq!(files.bos_token.as_deref(), Some("<bos>"));
        assert_eq!(files.tokenizer_config["eos_token"], "<eos>");
        assert_eq!(files.tokenizer_config["add_bos_token"], true);
        let tok = tokenizers::Tokenizer::from_str(&files.tokenizer_json).expect("parse");
        // "ab c" -> "ab▁c": merges a+b and ▁+c; <bos> prepended; "A" falls back to its byte.
        let ids = tok.encode("ab cA<eos>", true).expect("encode").get_ids().to_vec();
        assert_eq!(ids, [2, 7, 9, 11, 1]);
        // The whitespace-run token is respelled so that it is reachable.
        let v: Value = serde_json::from_str(&files.tokenizer_json).expect("json");
        assert_eq!(v["model"]["vocab"]["▁▁"], 10);
        assert_eq!(tok.decode(&[7, 9], false).expect("decode"), "ab c");
    }

    #[test]
    fn byte_level_vocab_with_merges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Builder::default()
            .string("tokenizer.ggml.model", "gpt2")
            .string("tokenizer.ggml.pre", "smollm")
            .str_array(
                "tokenizer.ggml.tokens",
                &["<|endoftext|>", "h", "i", "Ġ", "hi", "Ġh", "1", "2"],
            )
            .str_array("tokenizer.ggml.merges", &["h i", "Ġ h"])
            .i32_array("tokenizer.ggml.token_type", &[3, 1, 1, 1, 1, 1, 1, 1])
            .u32("tokenizer.ggml.eos_token_id", 0)
            .string("tokenizer.chat_template", "{{ messages }}")
            .write(dir.path(), "bpe.gguf");
        let files = from_gguf(&GgufFile::open(p).expect("open")).expect("tokenizer");
        assert!(!files.add_bos_token);
        assert_eq!(files.chat_template.as_deref(), Some("{{ messages }}"));
        assert_eq!(files.tokenizer_config["chat_template"], "{{ messages }}");
        let tok = tokenizers::Tokenizer::from_str(&files.tokenizer_json).expect("parse");
        let ids = tok.encode("hi h12<|endoftext|>", true).expect("encode").get_ids().to_vec();
        assert_eq!(ids, [4, 5, 6, 7, 0]);
        files.write_to(dir.path()).expect("write");
        for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
    }

    #[test]
    fn unsupported_vocabularies_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Builder::default()
            .string("tokenizer.ggml.model", "bert")
            .str_array("tokenizer.ggml.tokens", &["a"])
            .write(dir.path(), "x.gguf");
        let err = from_gguf(&GgufFile::open(p).expect("open")).unwrap_err().to_string();
        assert!(err.contains("\"bert\"") && err.contains("x.gguf"), "{err}");
        let p = Builder::default()
            .string("tokenizer.ggml.model", "gpt2")
            .string("tokenizer.ggml.pre", "mystery")
            .str_array("tokenizer.ggml.tokens", &["a"])
            .str_array("tokenizer.ggml.merges", &[])
            .write(dir.path(), "y.gguf");
        let err = from_gguf(&GgufFile::open(p).expect("open")).unwrap_err().to_string();
        assert!(err.contains("\"mystery\""), "{err}");
        let p = Builder::default()
            .string("tokenizer.ggml.model", "llama")
            .str_array("tokenizer.ggml.tokens", &["a"])
            .write(dir.path(), "z.gguf");
        let err = from_gguf(&GgufFile::open(p).expect("open")).unwrap_err().to_string();
        assert!(err.contains("tokenizer.ggml.scores"), "{err}");
    }
}
