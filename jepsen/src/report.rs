//! The one-page HTML report of a run: the verdict, the counts, and two plots over
//! time with the fault windows shaded: every operation's latency (by outcome, log
//! scale, like Jepsen's `latency-raw.png`) and the rate of completions per second
//! (`rate.png`). Plots are SVG drawn with `plotters`, inlined in the page.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::history::{Op, Process, Type, pair};

/// Fonts plots may use, in order (Debian's `fonts-dejavu-core` has the first).
const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Makes a font available to the plots; false when none is installed (the plots
/// are then drawn without text, and the page says what they show).
fn load_font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        FONT_FILES.iter().filter_map(|path| std::fs::read(path).ok()).any(|bytes| {
            // Registered fonts live as long as the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Seconds since the start of the run.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Fault windows `(start, end, what)` in seconds: from a fault's start to the heal
/// that follows it.
fn fault_windows(ops: &[Op], end: f64) -> Vec<(f64, f64, String)> {
    let heals = ["stop-partition", "stop-netem", "restart-and-resume"];
    let mut windows = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for op in ops.iter().filter(|o| o.process == Process::Nemesis) {
        let t = seconds(op.time);
        // A membership change is over when it completes.
        let self_healing = op.f == "replace-member" && op.kind != Type::Invoke;
        if heals.contains(&op.f.as_str()) || self_healing {
            if op.kind == Type::Ok
                && let Some((start, what)) = open.take()
            {
                windows.push((start, t, what));
            }
        } else if op.kind == Type::Invoke && open.is_none() {
            open = Some((t, format!("{} {}", op.f, op.value)));
        }
    }
    if let Some((start, what)) = open {
        windows.push((start, end, what));
    }
    windows
}

fn color(kind: Type) -> RGBColor {
    match kind {
        Type::Ok => RGBColor(40, 140, 60),
        Type::Fail => RGBColor(200, 50, 50),
        _ => RGBColor(230, 160, 20),
    }
}

fn plot_error(e: impl std::fmt::Display) -> String {
    format!("cannot draw a plot: {e}")
}

/// Latency of every completed operation against when it started.
fn latency_svg(ops: &[Op], windows: &[(f64, f64, String)], end: f64) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let points: Vec<(f64, f64, Type)> = pair(ops)
            .iter()
            .filter(|c| c.complete.time != u64::MAX)
            .map(|c| (seconds(c.invoke.time), ((c.complete.time - c.invoke.time) as f64 / 1e6).max(0.01), c.complete.kind))
            .collect();
        let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
        let text = load_font();
        let mut builder = ChartBuilder::on(&root);
        builder.margin(10).x_label_area_size(if text { 30 } else { 5 }).y_label_area_size(if text { 60 } else { 5 });
        if text {
            builder.caption("latency of each operation (ms, log scale): ok green, fail red, info orange; faults shaded", ("sans-serif", 16));
        }
        let mut chart = builder.build_cartesian_2d(0.0..end, (0.01..top).log_scale()).map_err(plot_error)?;
        let (x_labels, y_labels) = if text { (10, 8) } else { (0, 0) };
        chart.configure_mesh().x_labels(x_labels).y_labels(y_labels).x_desc("seconds").y_desc("ms").draw().map_err(plot_error)?;
        for (start, stop, _) in windows {
            chart.draw_series([Rectangle::new([(*start, 0.01), (*stop, top)], RGBColor(120, 120, 220).mix(0.15).filled())]).map_err(plot_error)?;
        }
        for kind in [Type::Ok, Type::Fail, Type::Info] {
            let series = points.iter().filter(|p| p.2 == kind).map(|p| Circle::new((p.0, p.1), 1, color(kind).filled()));
            chart.draw_series(series).map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Completions per second, by outcome.
fn rate_svg(ops: &[Op], windows: &[(f64, f64, String)], end: f64) -> Result<String, String> {
    let mut buckets: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    for op in ops.iter().filter(|o| matches!(o.process, Process::Client(_)) && o.kind != Type::Invoke) {
        let kind = match op.kind {
            Type::Ok => 0,
            Type::Fail => 1,
            _ => 2,
        };
        *buckets.entry((kind, op.time / 1_000_000_000)).or_default() += 1;
    }
    let top = buckets.values().copied().max().unwrap_or(1) as f64 * 1.2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let text = load_font();
        let mut builder = ChartBuilder::on(&root);
        builder.margin(10).x_label_area_size(if text { 30 } else { 5 }).y_label_area_size(if text { 60 } else { 5 });
        if text {
            builder.caption("completions per second: ok green, fail red, info orange; faults shaded", ("sans-serif", 16));
        }
        let mut chart = builder.build_cartesian_2d(0.0..end, 0.0..top).map_err(plot_error)?;
        let (x_labels, y_labels) = if text { (10, 6) } else { (0, 0) };
        chart.configure_mesh().x_labels(x_labels).y_labels(y_labels).x_desc("seconds").y_desc("ops/s").draw().map_err(plot_error)?;
        for (start, stop, _) in windows {
            chart.draw_series([Rectangle::new([(*start, 0.0), (*stop, top)], RGBColor(120, 120, 220).mix(0.15).filled())]).map_err(plot_error)?;
        }
        for (kind, ty) in [(0u8, Type::Ok), (1, Type::Fail), (2, Type::Info)] {
            let line = buckets.iter().filter(|((k, _), _)| *k == kind).map(|((_, s), n)| (*s as f64 + 0.5, *n as f64));
            chart.draw_series(LineSeries::new(line, color(ty).stroke_width(2))).map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Writes `report.html` into `dir`.
pub fn write(dir: &Path, ops: &[Op], results: &Value) -> Result<(), String> {
    let end = ops.iter().map(|o| seconds(o.time)).fold(1.0, f64::max);
    let windows = fault_windows(ops, end);
    let latency = latency_svg(ops, &windows, end)?;
    let rate = rate_svg(ops, &windows, end)?;
    let faults: String = windows.iter().map(|(s, e, what)| format!("<tr><td>{s:.1}</td><td>{e:.1}</td><td>{}</td></tr>", escape(what))).collect();
    let verdict = results["valid"].as_str().unwrap_or("unknown");
    let summary = escape(&serde_json::to_string_pretty(&results["checkers"]).unwrap_or_default());
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>concord-jepsen {workload} {seed}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1040px}}.valid{{color:#286}}.invalid{{color:#c33}}.unknown{{color:#c80}}\
         td,th{{padding:2px 10px;text-align:left}}pre{{background:#f6f6f6;padding:1em;max-height:30em;overflow:auto}}</style></head><body>\
         <h1>concord-jepsen: {workload}</h1>\
         <p>Verdict: <b class=\"{verdict}\">{verdict}</b>. Seed {seed}, {nodes} nodes, {clients} clients, {time} s under {nemesis}; operations: {ops}.</p>\
         <h2>Latency (ms, log scale) and completions per second over the run</h2>         <p>Green ok, red fail, orange info (unknown); faults shaded blue.</p>{latency}{rate}<h2>Faults</h2><table><tr><th>from (s)</th><th>to (s)</th><th>fault</th></tr>{faults}</table>\
         <h2>Checkers</h2><pre>{summary}</pre><p>Every operation: <code>history.jsonl</code>; node logs: <code>node-N.log</code>.</p></body></html>",
        workload = escape(results["workload"].as_str().unwrap_or("")),
        seed = results["seed"],
        nodes = results["nodes"],
        clients = results["clients"],
        time = results["time_limit_s"],
        nemesis = escape(&results["nemesis"].to_string()),
        ops = escape(&results["ops"].to_string()),
    );
    std::fs::write(dir.join("report.html"), html).map_err(|e| format!("cannot write report.html: {e}"))
}
