//! Loads the built cdylib the way the host does (`lib_header_from_path` +
//! `init_root_module`) and scores through the ABI, so a broken export shows up here.
//! In its own test binary: the cdylib carries its own copy of the ONNX Runtime bindings.

mod common;

use std::path::PathBuf;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RStr};
use common::*;
use descry_abi::backend::BackendModuleRef;
use descry_abi::{root_names, ABI_VERSION};

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
    assert_eq!(info.name.as_str(), "onnx");

    // A bad spec is an error naming the key, not a crash.
    let bad = backend.load(RStr::from_str(r#"{"path": "/nonexistent", "gpu": true}"#));
    match bad {
        RResult::RErr(e) => assert!(e.to_string().contains("unknown key \"gpu\""), "{e}"),
        RResult::ROk(_) => panic!("a bad spec must fail"),
    }

    let dir = import_model(SMOL);
    let spec = serde_json::json!({"path": dir.0, "threads": 2, "token_budget": 2048}).to_string();
    let model = match backend.load(RStr::from_str(&spec)) {
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
}
