//! `descry inspect`: per game and variant, what the data holds and what a prompt looks like.

use crate::{Cli, Format};
use anyhow::{bail, Result};
use descry_core::inspect::{inspect, GameInspection, InspectionReport};
use std::path::Path;

pub fn run(cli: &Cli, study_path: &Path, set: &[String], format: Format) -> Result<()> {
    let study = super::load_study(study_path, set)?;
    let registry = super::registry(cli, Some(&study))?;
    super::warn_failures(&registry);
    let inspection = inspect(&study, &registry)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&inspection.report)?),
        Format::Text => print_text(&inspection.report)?,
    }
    for e in &inspection.errors {
        eprintln!("error: {e}");
    }
    if !inspection.errors.is_empty() {
        bail!(
            "{} of the study's games or models could not be inspected (see above)",
            inspection.errors.len()
        );
    }
    Ok(())
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

fn print_text(report: &InspectionReport) -> Result<()> {
    for game in &report.games {
        let game = match game {
            GameInspection::Failed { name, plugin, error } => {
                println!("== game {name} (plugin {plugin})");
                println!("   ERROR: {error}");
                continue;
            }
            GameInspection::Loaded(game) => game,
        };
        println!("== game {} (plugin {}, family {})", game.name, game.plugin, game.family);
        println!("   data      {}", game.data.display());
        println!(
            "   episodes  {}   decision points {}",
            game.episodes, game.counts.decision_points
        );
        if !game.counts.outcomes.is_empty() {
            println!("   outcomes  {}", json(&game.counts.outcomes)?);
        }
        if let Some(r) = &game.counts.target_rate {
            println!("   target rate {}", json(r)?);
        }
        println!("   skipped   {}", json(&game.skipped)?);
        if !game.flags.is_empty() {
            println!("   flags     {}", json(&game.flags)?);
        }
        for (field, values) in &game.breakdown {
            println!("   by {field}: {}", json(values)?);
        }
        for v in &game.variants {
            let transcript = v.transcript.map_or("null".to_string(), |t| t.to_string());
            println!("   -- variant {} (transcript: {transcript})", v.name);
            let Some(sample) = &v.sample else { continue };
            println!(
                "      sample: decision point {} (round {})",
                sample.decision_point, sample.round
            );
            for m in &sample.messages {
                println!("      [{}]", m.role);
                for line in m.content.lines() {
                    println!("        {line}");
                }
            }
            println!("      [answer prefix] {}", sample.answer_prefix);
            for (model, text) in &sample.texts {
                println!("      [as {model} reads it]");
                for line in text.lines() {
                    println!("        {line}");
                }
            }
        }
    }
    Ok(())
}
