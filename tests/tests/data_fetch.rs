//! `descry data fetch` against a local HTTP server on loopback serving copies of the
//! upstream files: good files are verified and kept; a corrupted one is rejected.

use descry_e2e::*;
use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    thread,
};

/// Serves files under `root` for a bounded number of requests, then stops by itself.
fn serve(root: PathBuf, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut header = String::new();
            while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
                header.clear();
            }
            let path =
                line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            match std::fs::read(root.join(&path)) {
                Ok(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
                Err(_) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    format!("http://{addr}")
}

fn mirror(corrupt: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = shared_dir().join("data");
    let files = [
        ("eliaka/repeatedgames/224a605a21127cac69763f990e077f7b05abd422/human_experiment/analysis/repgames.csv", "akata/repgames.csv"),
        ("jcpeterson/choices13k/582d85521f3b0f246401ddb5cbb2682c84257652/c13k_selections.csv", "choices13k/c13k_selections.csv"),
        ("jcpeterson/choices13k/582d85521f3b0f246401ddb5cbb2682c84257652/c13k_problems.json", "choices13k/c13k_problems.json"),
    ];
    for (url_path, local) in files {
        let dest = dir.path().join(url_path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(data.join(local)).unwrap();
        if corrupt && local.ends_with("c13k_selections.csv") {
            // One flipped digit: the kind of damage a checksum exists to catch.
            let at = bytes.iter().position(|b| *b == b'7').unwrap();
            bytes[at] = b'8';
        }
        std::fs::write(dest, bytes).unwrap();
    }
    dir
}

fn fetch(base: &str, to: &Path) -> std::process::Output {
    run(descry().args(["data", "fetch", "--base-url", base, "--to"]).arg(to))
}

#[test]
fn fetches_and_verifies_the_public_files() {
    let server_root = mirror(false);
    let base = serve(server_root.path().to_path_buf(), 10);
    let to = tempfile::tempdir().unwrap();
    let out = fetch(&base, to.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in
        ["akata/repgames.csv", "choices13k/c13k_selections.csv", "choices13k/c13k_problems.json"]
    {
        assert_eq!(
            std::fs::read(to.path().join(f)).unwrap(),
            std::fs::read(shared_dir().join("data").join(f)).unwrap()
        );
    }
    // A second fetch finds everything in place and downloads nothing.
    let again = fetch("http://127.0.0.1:9", to.path());
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).matches("already present").count() == 3);
}

#[test]
fn a_corrupted_file_is_rejected_and_not_kept() {
    let server_root = mirror(true);
    let base = serve(server_root.path().to_path_buf(), 10);
    let to = tempfile::tempdir().unwrap();
    let out = fetch(&base, to.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("c13k_selections.csv") && stderr.contains("does not match"),
        "{stderr}"
    );
    assert!(!to.path().join("choices13k/c13k_selections.csv").exists());
    assert!(!to.path().join("choices13k/c13k_selections.partial").exists());
    // The file verified before it is kept.
    assert!(to.path().join("akata/repgames.csv").is_file());
}
