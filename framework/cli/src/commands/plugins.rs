//! `descry plugins`: what loaded, what did not, and why.

use crate::{Cli, Format};
use anyhow::Result;
use descry_core::config::Study;

pub fn run(cli: &Cli, study: Option<&Study>, format: Format) -> Result<()> {
    let registry = super::registry(cli, study)?;
    let plugins = registry.listings();
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "folders": registry.folders,
                "plugins": plugins,
                "failures": registry.failures,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            for folder in &registry.folders {
                println!("folder  {}", folder.display());
            }
            for p in &plugins {
                let kind = serde_json::to_value(p.kind)?.as_str().unwrap_or_default().to_string();
                println!("{kind:<8} {:<20} {:<8} {}", p.name, p.version, p.path.display());
            }
            for f in &registry.failures {
                println!("FAILED  {}: {}", f.path.display(), f.reason);
            }
            if plugins.is_empty() {
                println!("no plugins found; build them with `cargo build --workspace` or pass --plugin-dir");
            }
        }
    }
    Ok(())
}
