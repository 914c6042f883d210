//! The `descry-import` binary (what `descry import` runs): a real import writes a format-2
//! folder with its `onnx` artifacts and prints the folder; errors are one `error:` line
//! and exit code 1; usage errors are clap's (exit code 2).

mod common;

use std::process::{Command, Output};

use descry_model_folder::ModelFolder;

fn descry_import(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_descry-import")).args(args).output().expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn imports_a_real_model_and_refuses_to_overwrite_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("smol");
    let gguf = common::gguf_path(common::SMOLLM);
    let out_ = out.as_os_str();
    let run = descry_import(&[gguf.as_os_str(), "--out".as_ref(), out_]);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), format!("{}\n", out.display()));
    assert!(
        stderr.starts_with(&format!("importing {} into {} ...\n", gguf.display(), out.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "imported smollm2-135m-instruct (llama, f32 weights, 30 layers, vocabulary 49152, \
             chat template: yes) in "
        ),
        "{stderr}"
    );
    let folder = ModelFolder::open(&out).expect("a format-2 folder");
    let files = folder.check_artifacts("onnx").expect("its onnx artifacts are there");
    assert_eq!(files.keys().collect::<Vec<_>>(), ["model.onnx"]);

    // A model folder is there: refused without --force, exit code 1, one error line.
    let again = descry_import(&[
        gguf.as_os_str(),
        "--out".as_ref(),
        out_,
        "--dtype".as_ref(),
        "int8".as_ref(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(err.lines().last().is_some_and(|l| l.starts_with("error: ")), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(again.stdout.is_empty());
}

#[test]
fn bad_sources_and_bad_arguments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let not_gguf = tmp.path().join("x.gguf");
    std::fs::write(&not_gguf, b"nope").expect("write");
    let out = tmp.path().join("out");
    let run = descry_import(&[not_gguf.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert_eq!(run.status.code(), Some(1));
    let err = text(&run.stderr);
    assert!(err.contains("error: ") && err.contains("is not a GGUF file"), "{err}");
    assert!(!out.exists(), "nothing is left behind");

    let usage = descry_import(&[not_gguf.as_os_str()]);
    assert_eq!(usage.status.code(), Some(2), "clap's usage error: --out is required");
    let bad_dtype = descry_import(&[
        not_gguf.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--dtype".as_ref(),
        "f16".as_ref(),
    ]);
    assert_eq!(bad_dtype.status.code(), Some(2));
    assert!(text(&bad_dtype.stderr).contains("f16"));
}
