use super::*;

fn manifest(artifacts: BTreeMap<String, ArtifactFiles>) -> Manifest {
    Manifest {
        format: FORMAT_VERSION,
        architecture: "llama".into(),
        name: "m".into(),
        source: SourceInfo { kind: "gguf".into(), path: "/g/m.gguf".into(), sha256: "00".into() },
        weights_sha256: "11".into(),
        dtype: "int8".into(),
        vocab_size: 10,
        hidden_size: 4,
        num_layers: 1,
        num_attention_heads: 1,
        num_kv_heads: 1,
        head_dim: 4,
        context_length: 64,
        sliding_window: None,
        non_embedding_params: 1,
        has_chat_template: false,
        add_bos_token: false,
        bos_token: None,
        eos_token: None,
        artifacts,
    }
}

fn folder_with(files: &[(&str, usize)], recorded: &[(&str, u64)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).expect("mkdir");
    for (name, len) in files {
        std::fs::write(dir.join(name), vec![0u8; *len]).expect("write");
    }
    let files: ArtifactFiles = recorded.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    manifest(BTreeMap::from([("graph".to_string(), files)])).write(&dir).expect("manifest");
    (tmp, dir)
}

#[test]
fn a_written_manifest_reads_back_equal() {
    let (_tmp, dir) = folder_with(&[("w.bin", 3)], &[("w.bin", 3)]);
    let folder = ModelFolder::open(&dir).expect("open");
    assert_eq!(folder.manifest.artifacts["graph"]["w.bin"], 3);
    assert_eq!(folder.check_artifacts("graph").expect("complete").len(), 1);
    // No temporary file is left beside the manifest.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// A missing or cut-off artifact fails, naming the file, both sizes and the rebuild.
#[test]
fn a_missing_or_cut_off_artifact_names_the_file_and_the_rebuild() {
    let (_tmp, dir) = folder_with(&[("w.bin", 3)], &[("w.bin", 5), ("x.bin", 1)]);
    let folder = ModelFolder::open(&dir).expect("open");
    let err = folder.check_artifacts("graph").expect_err("cut off").to_string();
    assert!(err.contains("w.bin has 3 bytes, but descry-model.json records 5"), "{err}");
    assert!(err.contains("descry import /g/m.gguf --out"), "{err}");
    assert!(err.contains("--name m --force --dtype int8"), "{err}");
    std::fs::write(dir.join("w.bin"), [0u8; 5]).expect("write");
    let err = folder.check_artifacts("graph").expect_err("missing").to_string();
    assert!(err.contains("x.bin is missing"), "{err}");
    std::fs::write(dir.join("x.bin"), [0u8; 1]).expect("write");
    folder.check_artifacts("graph").expect("complete now");
}

#[test]
fn another_engine_is_refused_naming_what_the_folder_holds() {
    let (_tmp, dir) = folder_with(&[("w.bin", 3)], &[("w.bin", 3)]);
    let folder = ModelFolder::open(&dir).expect("open");
    let err = folder.check_artifacts("other").expect_err("absent").to_string();
    assert!(err.contains("holds no `other` artifacts (it holds: graph)"), "{err}");
}

/// A format this build does not know (older or newer) is refused before any other field
/// is read, with the import that rebuilds the folder.
#[test]
fn an_unknown_format_is_refused_with_the_rebuild() {
    let (_tmp, dir) = folder_with(&[], &[]);
    for (format, extra) in [(1, r#", "engine_files": {"w.bin": 3}"#), (3, r#", "future": true"#)] {
        let text = format!(
            r#"{{"format": {format}, "name": "old", "dtype": "f32",
                "source": {{"kind": "gguf", "path": "/g/old.gguf"}}{extra}}}"#
        );
        std::fs::write(dir.join(MANIFEST_FILE), text).expect("write");
        let err = ModelFolder::open(&dir).expect_err("refused").to_string();
        assert!(
            err.contains(&format!("manifest format {format}, but this descry reads format 2")),
            "{err}"
        );
        assert!(err.contains("descry import /g/old.gguf --out"), "{err}");
        assert!(err.contains("--name old --force`"), "{err}");
    }
}

#[test]
fn broken_manifests_and_missing_folders_are_named() {
    let (tmp, dir) = folder_with(&[], &[]);
    std::fs::write(dir.join(MANIFEST_FILE), "{\"format\": 2, \"name\": 3").expect("write");
    let err = ModelFolder::open(&dir).expect_err("not JSON").to_string();
    assert!(err.contains("descry-model.json: not JSON"), "{err}");
    std::fs::write(dir.join(MANIFEST_FILE), "{\"format\": 2, \"name\": \"m\"}").expect("write");
    let err = ModelFolder::open(&dir).expect_err("fields").to_string();
    assert!(err.contains("missing field"), "{err}");
    let err = ModelFolder::open(&tmp.path().join("nope")).expect_err("missing").to_string();
    assert!(err.contains("does not exist; create it with `descry import"), "{err}");
}
