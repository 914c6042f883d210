//! `descry data fetch`: the public human-data releases, downloaded from their public
//! repositories at pinned commits and verified by sha256 before use.
//!
//! Only the verbatim upstream files are fetched (Akata et al.'s `repgames.csv`,
//! choices13k's selections and problems); games derive everything else from them. A file
//! whose hash differs is rejected and not kept.

use sha2::{Digest, Sha256};
use std::{
    io::Read,
    path::{Path, PathBuf},
};

/// Where public repositories' files are served, by repository, commit and path.
pub const DEFAULT_BASE_URL: &str = "https://raw.githubusercontent.com";

/// One upstream file.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamFile {
    /// Where it goes under the data root.
    pub dest: &'static str,
    /// `owner/name` of the repository.
    pub repository: &'static str,
    /// Commit.
    pub commit: &'static str,
    /// Path in the repository.
    pub path: &'static str,
    /// Expected sha256 (hex).
    pub sha256: &'static str,
}

/// The files `descry data fetch` downloads (see `../shared/data/README.md`).
pub const UPSTREAM_FILES: &[UpstreamFile] = &[
    UpstreamFile {
        dest: "akata/repgames.csv",
        repository: "eliaka/repeatedgames",
        commit: "224a605a21127cac69763f990e077f7b05abd422",
        path: "human_experiment/analysis/repgames.csv",
        sha256: "f3c3d46a2e34f85f950bfdffd0d04d6c6fc748268c14e5700646e44b2d42d11a",
    },
    UpstreamFile {
        dest: "choices13k/c13k_selections.csv",
        repository: "jcpeterson/choices13k",
        commit: "582d85521f3b0f246401ddb5cbb2682c84257652",
        path: "c13k_selections.csv",
        sha256: "e21941718b83fd97a5997545489a66ce27bec3b3f62700a0774fb5f997fea5c7",
    },
    UpstreamFile {
        dest: "choices13k/c13k_problems.json",
        repository: "jcpeterson/choices13k",
        commit: "582d85521f3b0f246401ddb5cbb2682c84257652",
        path: "c13k_problems.json",
        sha256: "c6bdb0ae7e0d0ca127b649b4996a7a49b3d0c4c43e5f9a851677fe4527276632",
    },
];

/// A fetch failure, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The file's hash is not the published one; it was not kept.
    #[error("{url}: sha256 {actual} does not match the expected {expected}; the file was rejected and not kept")]
    Checksum {
        /// URL.
        url: String,
        /// Expected hash.
        expected: String,
        /// Hash of what was received.
        actual: String,
    },
    /// Writing the file failed.
    #[error("{path}: {reason}")]
    Io {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What happened to one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fetched {
    /// Local path.
    pub path: PathBuf,
    /// `downloaded` or `already present`.
    pub status: &'static str,
}

/// Hex sha256 of a file, or None if it cannot be read.
pub fn sha256_file(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads every upstream file into `to`, verifying each; files already present with the
/// right hash are kept. Stops at the first failure, keeping the files already verified.
pub fn fetch(to: &Path, base_url: &str) -> Result<Vec<Fetched>, FetchError> {
    let mut out = Vec::new();
    for file in UPSTREAM_FILES {
        let dest = to.join(file.dest);
        if sha256_file(&dest).as_deref() == Some(file.sha256) {
            out.push(Fetched { path: dest, status: "already present" });
            continue;
        }
        let url = format!(
            "{}/{}/{}/{}",
            base_url.trim_end_matches('/'),
            file.repository,
            file.commit,
            file.path
        );
        let response = ureq::get(&url)
            .call()
            .map_err(|e| FetchError::Download { url: url.clone(), reason: e.to_string() })?;
        let mut body = Vec::new();
        response
            .into_reader()
            .take(512 << 20)
            .read_to_end(&mut body)
            .map_err(|e| FetchError::Download { url: url.clone(), reason: e.to_string() })?;
        let actual = hex(&Sha256::digest(&body));
        if actual != file.sha256 {
            return Err(FetchError::Checksum { url, expected: file.sha256.into(), actual });
        }
        let io = |path: &Path, e: std::io::Error| FetchError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let tmp = dest.with_extension("partial");
        std::fs::write(&tmp, &body).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
        out.push(Fetched { path: dest, status: "downloaded" });
    }
    Ok(out)
}
