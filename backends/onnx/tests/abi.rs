//! Loads the built cdylib the way the host does (`lib_header_from_path` +
//! `init_root_module`) and scores through the ABI, so a broken export shows up here.
//! In its own test binary: the cdylib carries its own copy of the ONNX Runtime bindings.

mod common;

use std::path::PathBuf;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{ROption, RResult};
use common::*;
use descry_abi::backend::BackendModuleRef;
use descry_abi::types::{BackendSettings, ModelLoadRequest, SettingsScope};
use descry_abi::{root_names, ABI_VERSION};

fn settings(engine_json: &str) -> BackendSettings {
    BackendSettings {
        device: "cpu".into(),
        threads: 2,
        token_budget: 2048,
        prefix_reuse: true,
        prefix_cache_tokens: ROption::RNone,
        engine_json: engine_json.into(),
        base_dir: "".into(),
    }
}

/// The cdylib cargo built beside this test: `<target>/<profile>/` is the parent of the test
/// binary's `deps/` folder.
fn cdylib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile_dir.join(format!(
        "{}descry_backend_onnx{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn cdylib_loads_a_model_and_scores_golden_values() {
    let path = cdylib_path();
    assert!(
        path.exists(),
        "cdylib not built at {} (run `cargo build --workspace` first)",
        path.display()
    );
    let header = lib_header_from_path(&path).expect("library header");
    assert_eq!(header.root_mod_consts().base_name().as_str(), root_names::BACKEND);
    let module = header.init_root_module::<BackendModuleRef>().expect("root module");
    assert_eq!(module.abi_version(), ABI_VERSION);
    let backend = match (module.new())() {
        RResult::ROk(b) => b,
        RResult::RErr(e) => panic!("new: {e}"),
    };
    let info = backend.info().unwrap();
    assert_eq!(info.plugin.name.as_str(), "onnx");
    assert_eq!(info.artifacts.as_str(), "onnx");

    // Bad settings are problems naming their keys, found without loading anything.
    let problems = backend.check(&settings(r#"{"gpu": true}"#)).unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].scope, problems[0].key.as_str()), (SettingsScope::Engine, "gpu"));
    assert!(problems[0].reason.contains("unknown key"), "{}", problems[0].reason);
    // ... and `load` refuses them too, naming the key, not a crash.
    let bad = ModelLoadRequest {
        model_dir: "/nonexistent".into(),
        settings: settings(r#"{"gpu": true}"#),
    };
    match backend.load(&bad) {
        RResult::RErr(e) => assert!(e.to_string().contains("backend.onnx.gpu: unknown key"), "{e}"),
        RResult::ROk(_) => panic!("a bad spec must fail"),
    }
    assert!(backend.check(&settings("{}")).unwrap().is_empty(), "the default library is installed");

    let dir = import_model(SMOL);
    let load = ModelLoadRequest {
        model_dir: dir.0.display().to_string().into(),
        settings: settings("{}"),
    };
    let model = match backend.load(&load) {
        RResult::ROk(m) => m,
        RResult::RErr(e) => panic!("load: {e}"),
    };
    let described: serde_json::Value =
        serde_json::from_str(model.describe().unwrap().as_str()).unwrap();
    assert_eq!(described["name"], SMOL.0);
    assert_eq!(described["device"], "cpu");

    let rows: Vec<_> =
        golden(SMOL.0).into_iter().filter(|r| r["id"] != "long-pd-history").collect();
    let req = request(rows.iter().map(sequence).collect(), 10);
    let res = match model.score(&req) {
        RResult::ROk(r) => r,
        RResult::RErr(e) => panic!("score: {e}"),
    };
    let worst = golden_max_diff(&rows, &res.sequences);
    eprintln!("through the ABI: max |Δ| vs golden {worst:.3e}");
    assert!(worst <= 2e-3, "{worst}");

    // A request error crosses the boundary as an error naming the sequence.
    let mut bad_req = req.clone();
    bad_req.sequences[0].queries[0].position = 10_000;
    match model.score(&bad_req) {
        RResult::RErr(e) => assert!(e.to_string().contains("sequence 0"), "{e}"),
        RResult::ROk(_) => panic!("an out-of-range query must fail"),
    }

    // The engine's own matmul rate, through the same session set-up.
    let rate = match backend.matmul_rate(&settings("{}"), 128) {
        RResult::ROk(r) => r,
        RResult::RErr(e) => panic!("matmul_rate: {e}"),
    };
    eprintln!("matmul 128: {rate:?}");
    assert_eq!(rate.n, 128);
    assert!(rate.gflops > 0.0 && rate.gflops.is_finite() && rate.repeats >= 3, "{rate:?}");
    match backend.matmul_rate(&settings("{}"), 0) {
        RResult::RErr(e) => assert!(e.to_string().contains("at least 1"), "{e}"),
        RResult::ROk(r) => panic!("n = 0 must fail: {r:?}"),
    }
}
