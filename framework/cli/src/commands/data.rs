//! `descry data fetch`: the public data releases, verified.

use anyhow::Result;
use descry_core::{config::descry_home, fetch};
use std::path::Path;

pub fn fetch(to: Option<&Path>, base_url: &str) -> Result<()> {
    let to = to.map(Path::to_path_buf).unwrap_or_else(|| descry_home().join("data"));
    let fetched = fetch::fetch(&to, base_url)?;
    for f in &fetched {
        eprintln!("{}: {}", f.path.display(), f.status);
    }
    println!("{}", to.display());
    Ok(())
}
