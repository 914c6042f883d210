//! `descry config`: the merged configuration.

use crate::{Cli, Format};
use anyhow::Result;
use std::path::Path;

pub fn run(cli: &Cli, study: &Path, set: &[String], format: Format) -> Result<()> {
    let study = super::load_study(study, set)?;
    // Which keys a `[backend]` table may hold beyond the shared ones depends on the loaded
    // backends; a stray key is an error here as in `descry run`.
    let registry = super::registry(cli, Some(&study))?;
    descry_core::backend::check_backend_keys(&study, &registry)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&study)?),
        Format::Text => print!("{}", toml::to_string_pretty(&study)?),
    }
    Ok(())
}
