//! The report: CSV for every table, SVG plots, and `report.md` / `report.html` that put
//! them together. Built from an [`Analysis`] alone, so it can be rebuilt from the store.

use crate::{
    analysis::{Analysis, AnalysisSettings},
    store::{remove_if_exists, tmp_path, write_file_atomic, StoreError},
};
use plotters::prelude::*;
use serde::Serialize;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

/// Where the report's files are.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// CSV tables.
    pub tables: Vec<PathBuf>,
    /// SVG plots.
    pub plots: Vec<PathBuf>,
}

fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "–".into()
    }
}

fn csv_file<T: Serialize>(
    path: &Path,
    rows: &[T],
    flatten: impl Fn(&T) -> Vec<(String, String)>,
) -> Result<(), StoreError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header_written = false;
    for row in rows {
        let cells = flatten(row);
        if !header_written {
            writer.write_record(cells.iter().map(|(k, _)| k)).map_err(|e| io(path, e))?;
            header_written = true;
        }
        writer.write_record(cells.iter().map(|(_, v)| v)).map_err(|e| io(path, e))?;
    }
    let bytes = writer.into_inner().map_err(|e| io(path, e.to_string()))?;
    write_file_atomic(path, &bytes)
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// Serializes a row to (column, text) pairs: nested maps become `name.key` columns.
fn cells<T: Serialize>(row: &T) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(row) {
        for (k, v) in map {
            match v {
                serde_json::Value::Object(inner) => {
                    for (ik, iv) in inner {
                        let text = match iv.get("value") {
                            Some(serde_json::Value::Number(n)) => n.to_string(),
                            Some(_) => String::new(),
                            None => iv.to_string(),
                        };
                        out.push((format!("{k}.{ik}"), text));
                    }
                }
                serde_json::Value::String(s) => out.push((k, s)),
                serde_json::Value::Null => out.push((k, String::new())),
                other => out.push((k, other.to_string())),
            }
        }
    }
    out
}

/// Removes the report pages of a run folder, so that no report stands beside a run record
/// or tables it was not built from (a run rewrites the record; a kill may come at any time).
pub fn clear_report(run_dir: &Path) -> Result<(), StoreError> {
    remove_if_exists(&run_dir.join("report.md"))?;
    remove_if_exists(&run_dir.join("report.html"))
}

/// A fresh, empty staging folder beside `dir`.
fn staging(dir: &Path) -> Result<PathBuf, StoreError> {
    let staged = tmp_path(dir);
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(|e| io(&staged, e))?;
    }
    std::fs::create_dir_all(&staged).map_err(|e| io(&staged, e))?;
    Ok(staged)
}

/// Replaces `dir` by the staged folder.
fn swap_in(staged: &Path, dir: &Path) -> Result<(), StoreError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(staged, dir).map_err(|e| io(dir, e))
}

/// Writes every table, plot and both report pages under `run_dir`. The report is whole or
/// absent: the old pages are removed first, tables and plots are built in staging folders
/// and swapped in, and `report.md` is written last, so an interrupted report leaves no
/// page that disagrees with the tables beside it. `note` (what else the folder holds) is
/// printed under the title.
pub fn write_report(
    run_dir: &Path,
    title: &str,
    analysis: &Analysis,
    settings: &AnalysisSettings,
    note: Option<&str>,
) -> Result<ReportFiles, StoreError> {
    clear_report(run_dir)?;
    let tables_dir = run_dir.join("tables");
    let plots_dir = run_dir.join("plots");
    let staged_tables = staging(&tables_dir)?;
    let staged_plots = staging(&plots_dir)?;
    let mut tables = Vec::new();
    for (name, write) in [
        (
            "models.csv",
            Box::new(|p: &Path| csv_file(p, &analysis.models, cells))
                as Box<dyn Fn(&Path) -> Result<(), StoreError>>,
        ),
        ("slices.csv", Box::new(|p: &Path| csv_file(p, &analysis.slices, cells))),
        ("pairs.csv", Box::new(|p: &Path| csv_file(p, &analysis.pairs, cells))),
        ("wins.csv", Box::new(|p: &Path| csv_file(p, &analysis.wins, cells))),
    ] {
        write(&staged_tables.join(name))?;
        tables.push(tables_dir.join(name));
    }
    let mut plots = Vec::new();
    let mut plot_errors = Vec::new();
    let mut drawn: Vec<(String, PlotResult)> = vec![
        ("pairs.svg".into(), plot_pairs(&staged_plots.join("pairs.svg"), analysis, settings)),
        ("mass.svg".into(), plot_mass(&staged_plots.join("mass.svg"), analysis)),
    ];
    let families: std::collections::BTreeSet<&str> =
        analysis.slices.iter().filter(|r| r.by == "round").map(|r| r.family.as_str()).collect();
    for family in families {
        let name = format!("rounds-{}.svg", crate::store::safe_name(family));
        drawn.push((
            name.clone(),
            plot_rounds(&staged_plots.join(&name), family, analysis, settings),
        ));
    }
    for (name, result) in drawn {
        match result {
            Ok(true) => plots.push(plots_dir.join(name)),
            Ok(false) => {}
            Err(e) => plot_errors.push(format!("{name}: {e}")),
        }
    }
    swap_in(&staged_tables, &tables_dir)?;
    swap_in(&staged_plots, &plots_dir)?;
    let md = markdown(title, analysis, settings, &plots, &plot_errors, note);
    let html_path = run_dir.join("report.html");
    write_file_atomic(&html_path, html(title, &md, &plots).as_bytes())?;
    let markdown_path = run_dir.join("report.md");
    write_file_atomic(&markdown_path, md.as_bytes())?;
    Ok(ReportFiles { markdown: markdown_path, html: html_path, tables, plots })
}

fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", header.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

fn markdown(
    title: &str,
    a: &Analysis,
    s: &AnalysisSettings,
    plots: &[PathBuf],
    plot_errors: &[String],
    note: Option<&str>,
) -> String {
    let mut out = String::new();
    let pm = &s.primary_metric;
    let _ = writeln!(out, "# descry report: {title}\n");
    let _ = writeln!(
        out,
        "Primary metric `{pm}`; pair filters: mean mass ≥ {} for both models, and at least one model with {pm} ≥ {}. \
         CIs are 95% percentile bootstrap intervals over episodes ({} resamples). Tables as CSV in `tables/`.\n",
        s.min_mass, s.min_correlation, s.bootstrap
    );
    if let Some(note) = note {
        let _ = writeln!(out, "{note}\n");
    }
    let _ = writeln!(out, "## Win counts (base vs aligned)\n");
    if a.wins.is_empty() {
        let _ = writeln!(out, "No valid pair had results in any family.\n");
    } else {
        table(
            &mut out,
            &[
                "family",
                "variant",
                "subset",
                "base wins",
                "aligned wins",
                "excluded",
                "sign test p",
                "Wilcoxon p",
            ],
            a.wins
                .iter()
                .map(|w| {
                    vec![
                        w.family.clone(),
                        w.variant.clone(),
                        w.subset.clone(),
                        w.base_wins.to_string(),
                        w.aligned_wins.to_string(),
                        w.excluded.to_string(),
                        format!("{:.3e}", w.sign_test_p),
                        format!("{:.3e}", w.wilcoxon_p),
                    ]
                })
                .collect(),
        );
    }
    let _ = writeln!(out, "## Pairs\n");
    table(
        &mut out,
        &[
            "pair",
            "family",
            "variant",
            "subset",
            "n",
            &format!("{pm} base"),
            &format!("{pm} aligned"),
            "mass base",
            "mass aligned",
            "winner",
            "excluded because",
        ],
        a.pairs
            .iter()
            .map(|p| {
                vec![
                    p.pair.clone(),
                    p.family.clone(),
                    p.variant.clone(),
                    p.subset.clone(),
                    p.n.to_string(),
                    fmt(p.metric_base),
                    fmt(p.metric_aligned),
                    fmt(p.mass_base),
                    fmt(p.mass_aligned),
                    p.winner.clone(),
                    p.excluded.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    );
    for p in &a.excluded_pairs {
        let _ = writeln!(
            out,
            "- pair `{}` excluded: {}",
            p.name,
            p.excluded.clone().unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\n## Models × games × variants\n");
    let mut header: Vec<String> =
        ["model", "game", "variant", "n", "episodes", "mean mass"].map(String::from).to_vec();
    header.extend(s.metrics.iter().cloned());
    header.push(format!("{pm} 95% CI"));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    table(
        &mut out,
        &header_refs,
        a.models
            .iter()
            .map(|m| {
                let mut r = vec![
                    m.model.clone(),
                    m.game.clone(),
                    m.variant.clone(),
                    m.n.to_string(),
                    m.episodes.to_string(),
                    fmt(m.mean_mass),
                ];
                r.extend(
                    s.metrics
                        .iter()
                        .map(|k| m.metrics.get(k).map(|v| fmt(v.value)).unwrap_or_default()),
                );
                r.push(format!("[{}, {}]", fmt(m.ci_low), fmt(m.ci_high)));
                r
            })
            .collect(),
    );
    let _ = writeln!(out, "## By round and configuration value ({pm})\n");
    table(
        &mut out,
        &["model", "game", "variant", "by", "value", "n", "mean mass", pm],
        a.slices
            .iter()
            .map(|r| {
                vec![
                    r.model.clone(),
                    r.game.clone(),
                    r.variant.clone(),
                    r.by.clone(),
                    r.value.clone(),
                    r.n.to_string(),
                    fmt(r.mean_mass),
                    fmt(r.metric),
                ]
            })
            .collect(),
    );
    let _ = writeln!(out, "## Plots\n");
    for p in plots {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let _ = writeln!(out, "![{name}](plots/{name})\n");
    }
    for e in plot_errors {
        let _ = writeln!(out, "- plot not drawn: {e}");
    }
    out
}

/// A small Markdown-to-HTML pass for the report's own Markdown (headings, tables, lists,
/// images, paragraphs): the report's structure is known, so a full Markdown engine is not
/// needed.
fn html(title: &str, md: &str, _plots: &[PathBuf]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>descry: {}</title>\n<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}</style></head><body>\n",
        esc(title)
    );
    let mut in_table = false;
    let mut header_row = false;
    for line in md.lines() {
        if line.starts_with('|') {
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
                header_row = true;
            }
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let tag = if header_row { "th" } else { "td" };
            header_row = false;
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", esc(c));
            }
            out.push_str("</tr>\n");
            continue;
        }
        if in_table {
            out.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", esc(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", esc(h));
        } else if let Some(rest) = line.strip_prefix("![") {
            if let Some((alt, src)) = rest.split_once("](") {
                let _ = writeln!(
                    out,
                    "<p><img alt=\"{}\" src=\"{}\"></p>",
                    esc(alt),
                    esc(src.trim_end_matches(')'))
                );
            }
        } else if let Some(item) = line.strip_prefix("- ") {
            let _ = writeln!(out, "<p>• {}</p>", esc(item));
        } else if !line.trim().is_empty() {
            let _ = writeln!(out, "<p>{}</p>", esc(line));
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

type PlotResult = Result<bool, Box<dyn std::error::Error>>;

fn plot_pairs(path: &Path, a: &Analysis, s: &AnalysisSettings) -> PlotResult {
    let points: Vec<(f64, f64, String)> = a
        .pairs
        .iter()
        .filter(|p| p.subset == "all" && p.metric_base.is_finite() && p.metric_aligned.is_finite())
        .map(|p| (p.metric_aligned, p.metric_base, format!("{} {}", p.family, p.variant)))
        .collect();
    if points.is_empty() {
        return Ok(false);
    }
    let root = SVGBackend::new(path, (640, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} per pair × family × variant: base vs aligned", s.primary_metric),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-1.0f64..1.0, -1.0f64..1.0)?;
    chart.configure_mesh().x_desc("aligned").y_desc("base").draw()?;
    chart.draw_series(LineSeries::new(vec![(-1.0, -1.0), (1.0, 1.0)], BLACK.mix(0.4)))?;
    chart.draw_series(points.iter().map(|(x, y, _)| Circle::new((*x, *y), 5, BLUE.filled())))?;
    chart.draw_series(
        points.iter().map(|(x, y, label)| Text::new(label.clone(), (*x, *y), ("sans-serif", 11))),
    )?;
    root.present()?;
    Ok(true)
}

/// Rounds with fewer decisions than this are left out of the round plots: a correlation
/// over a handful of people is noise (the table still lists them).
const MIN_ROUND_DECISIONS: usize = 10;

fn plot_rounds(path: &Path, family: &str, a: &Analysis, s: &AnalysisSettings) -> PlotResult {
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in a.slices.iter().filter(|r| {
        r.by == "round" && r.family == family && r.metric.is_finite() && r.n >= MIN_ROUND_DECISIONS
    }) {
        if let Ok(round) = r.value.parse::<f64>() {
            lines
                .entry(format!("{} {} {}", r.model, r.game, r.variant))
                .or_default()
                .push((round, r.metric));
        }
    }
    if lines.is_empty() {
        return Ok(false);
    }
    let max_round = lines.values().flatten().map(|p| p.0).fold(2.0, f64::max);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: {} by round (rounds with ≥ {MIN_ROUND_DECISIONS} decisions)",
                family, s.primary_metric
            ),
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0f64..max_round, -1.0f64..1.0)?;
    chart.configure_mesh().x_desc("round").y_desc(s.primary_metric.as_str()).draw()?;
    for (i, (label, mut pts)) in lines.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .draw()?;
    root.present()?;
    Ok(true)
}

fn plot_mass(path: &Path, a: &Analysis) -> PlotResult {
    if a.models.is_empty() {
        return Ok(false);
    }
    let n = a.models.len();
    let root = SVGBackend::new(path, (820, 60 + 22 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<String> =
        a.models.iter().map(|m| format!("{} | {} | {}", m.model, m.game, m.variant)).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("mean probability mass on the options", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..n as f64)?;
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.floor() as usize;
            labels.get(i).cloned().unwrap_or_default()
        })
        .draw()?;
    chart.draw_series(a.models.iter().enumerate().map(|(i, m)| {
        let v = if m.mean_mass.is_finite() { m.mean_mass } else { 0.0 };
        Rectangle::new([(0.0, i as f64 + 0.15), (v, i as f64 + 0.85)], BLUE.mix(0.6).filled())
    }))?;
    root.present()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bootstrap: usize) -> AnalysisSettings {
        AnalysisSettings {
            metrics: vec!["pearson".into()],
            primary_metric: "pearson".into(),
            bootstrap,
            seed: 1,
            min_mass: 0.8,
            min_correlation: 0.3,
            multi_round_families: Default::default(),
        }
    }

    fn empty() -> Analysis {
        Analysis {
            models: vec![],
            slices: vec![],
            pairs: vec![],
            wins: vec![],
            excluded_pairs: vec![],
        }
    }

    /// A report that stops half-way (here: its plots cannot be staged) leaves no page
    /// beside tables it does not describe; a whole report replaces tables and plots.
    #[test]
    fn an_interrupted_report_leaves_no_old_page_behind() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        write_report(run, "t", &empty(), &settings(20), None).unwrap();
        assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("20 resamples"));
        std::fs::write(run.join("plots/stale.svg"), "old").unwrap();
        // Something in the way of the plots' staging folder: the report fails there.
        std::fs::write(tmp_path(&run.join("plots")), "in the way").unwrap();
        assert!(write_report(run, "t", &empty(), &settings(7), None).is_err());
        assert!(!run.join("report.md").exists() && !run.join("report.html").exists());
        std::fs::remove_file(tmp_path(&run.join("plots"))).unwrap();
        let files =
            write_report(run, "t", &empty(), &settings(7), Some("The run folder also holds more."))
                .unwrap();
        let md = std::fs::read_to_string(&files.markdown).unwrap();
        assert!(md.contains("7 resamples") && md.contains("also holds more"), "{md}");
        assert!(!run.join("plots/stale.svg").exists(), "plots of an earlier report are not kept");
        assert!(files.tables.iter().all(|t| t.is_file()));
    }
}
