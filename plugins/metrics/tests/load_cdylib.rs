//! Loads the built cdylib the way the host does (`lib_header_from_path` +
//! `init_root_module`) and computes through the ABI, so a broken export shows up here
//! rather than only in the host's tests.

use abi_stable::{
    library::lib_header_from_path,
    std_types::{RResult, RVec},
};
use descry_abi::{metric::MetricsModuleRef, root_names, types::MetricInput, ABI_VERSION};
use std::path::PathBuf;

/// The cdylib cargo built beside this test: `<target>/<profile>/` is the parent of the
/// test binary's `deps/` folder.
fn cdylib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let name =
        format!("{}descry_metrics{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    profile_dir.join(name)
}

#[test]
fn cdylib_loads_and_computes() {
    let path = cdylib_path();
    assert!(path.exists(), "cdylib not built at {}", path.display());
    let header = lib_header_from_path(&path).expect("library header");
    assert_eq!(header.root_mod_consts().base_name().as_str(), root_names::METRICS);
    let module = header.init_root_module::<MetricsModuleRef>().expect("root module");
    assert_eq!(module.abi_version(), ABI_VERSION);
    assert_eq!((module.info())().name.as_str(), "metrics");
    let metrics = match (module.new())() {
        RResult::ROk(m) => m,
        RResult::RErr(e) => panic!("new: {e}"),
    };
    let names: Vec<String> = metrics
        .iter()
        .map(|m| match m.info() {
            RResult::ROk(i) => i.name.to_string(),
            RResult::RErr(e) => panic!("info: {e}"),
        })
        .collect();
    let expected: Vec<&str> = descry_metrics::METRICS.iter().map(|m| m.name).collect();
    assert_eq!(names, expected);

    // Each metric through the ABI equals the library function on the same data.
    let (p, y, w) = (vec![0.2, 0.7, 0.4, 0.9], vec![0.0, 1.0, 1.0, 1.0], vec![1.0, 2.0, 1.0, 3.0]);
    let input = MetricInput {
        predictions: RVec::from(p.clone()),
        outcomes: RVec::from(y.clone()),
        weights: RVec::from(w.clone()),
    };
    for (metric, def) in metrics.iter().zip(descry_metrics::METRICS) {
        let direct = (def.compute)(&p, &y, &w).expect("valid input");
        match metric.compute(&input) {
            RResult::ROk(v) => assert_eq!(v, direct, "{}", def.name),
            RResult::RErr(e) => panic!("{}: {e}", def.name),
        }
    }

    // Degenerate input crosses back as an error, for every metric.
    let empty =
        MetricInput { predictions: RVec::new(), outcomes: RVec::new(), weights: RVec::new() };
    for metric in metrics.iter() {
        assert!(matches!(metric.compute(&empty), RResult::RErr(_)));
    }
}
