//! `descry config`: the merged configuration.

use crate::Format;
use anyhow::Result;
use std::path::Path;

pub fn run(study: &Path, set: &[String], format: Format) -> Result<()> {
    let study = super::load_study(study, set)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&study)?),
        Format::Text => print!("{}", toml::to_string_pretty(&study)?),
    }
    Ok(())
}
