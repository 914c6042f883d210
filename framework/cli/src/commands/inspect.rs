//! `descry inspect`: per game and variant, what the data holds and what a prompt looks like.

use crate::{Cli, Format};
use anyhow::{bail, Result};
use std::path::Path;

pub fn run(cli: &Cli, study_path: &Path, set: &[String], format: Format) -> Result<()> {
    let study = super::load_study(study_path, set)?;
    let registry = super::registry(cli, Some(&study))?;
    for failure in &registry.failures {
        eprintln!("warning: plugin {} not loaded: {}", failure.path.display(), failure.reason);
    }
    let inspection = descry_core::inspect::inspect(&study, &registry)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&inspection.report)?),
        Format::Text => print_text(&inspection.report),
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

fn print_text(report: &serde_json::Value) {
    let empty = Vec::new();
    for game in report["games"].as_array().unwrap_or(&empty) {
        println!(
            "== game {} (plugin {}, family {})",
            game["name"].as_str().unwrap_or("?"),
            game["plugin"].as_str().unwrap_or("?"),
            game["family"].as_str().unwrap_or("?")
        );
        if let Some(e) = game.get("error") {
            println!("   ERROR: {}", e.as_str().unwrap_or("?"));
            continue;
        }
        println!("   data      {}", game["data"].as_str().unwrap_or("?"));
        println!("   episodes  {}   decision points {}", game["episodes"], game["decision_points"]);
        if let Some(o) = game.get("outcomes") {
            println!("   outcomes  {o}");
        }
        if let Some(r) = game.get("target_rate") {
            println!("   target rate {r}");
        }
        println!("   skipped   {}", game["skipped"]);
        if game["flags"].as_object().is_some_and(|f| !f.is_empty()) {
            println!("   flags     {}", game["flags"]);
        }
        if let Some(b) = game["breakdown"].as_object() {
            for (field, values) in b {
                println!("   by {field}: {values}");
            }
        }
        for v in game["variants"].as_array().unwrap_or(&empty) {
            println!(
                "   -- variant {} (transcript: {})",
                v["name"].as_str().unwrap_or("?"),
                v["transcript"]
            );
            let Some(sample) = v.get("sample") else { continue };
            println!(
                "      sample: decision point {} (round {})",
                sample["decision_point"].as_str().unwrap_or("?"),
                sample["round"]
            );
            for m in sample["messages"].as_array().unwrap_or(&empty) {
                println!("      [{}]", m["role"].as_str().unwrap_or("?"));
                for line in m["content"].as_str().unwrap_or("").lines() {
                    println!("        {line}");
                }
            }
            println!("      [answer prefix] {}", sample["answer_prefix"].as_str().unwrap_or(""));
            if let Some(texts) = sample["texts"].as_object() {
                for (model, text) in texts {
                    println!("      [as {model} reads it]");
                    for line in text.as_str().unwrap_or("").lines() {
                        println!("        {line}");
                    }
                }
            }
        }
    }
}
