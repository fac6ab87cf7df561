//! Golden files: the exact bytes of Concord's formats, pinned in `tests/golden/`.
//!
//! A format is anything a node writes to disk or sends to a peer: log entries and the
//! vote, the records and keys of the state database (as snapshots carry them), and
//! peer frames. Each is postcard (`codec`) or a layout of our own, and either changes
//! silently when a type does (reordering an enum's variants renumbers them). So the
//! format tests encode fixed samples and compare them, line by line, with a golden
//! file, failing with the lines that differ.
//!
//! To change a format on purpose, run the tests with `CONCORD_BLESS=1`: the files are
//! rewritten, and the diff shows exactly which bytes changed. Commit it with the
//! change, the bumped format version and the upgrade path (DESIGN.md: formats are
//! versioned).

use std::fmt::Write;
use std::path::PathBuf;

/// One pinned sample: `name hex-bytes`.
pub fn line(name: &str, bytes: &[u8]) -> String {
    let mut text = String::with_capacity(name.len() + 1 + bytes.len() * 2);
    text.push_str(name);
    text.push(' ');
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// `tests/golden/<file>` of the workspace, two levels above this crate.
fn path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(file)
}

/// The samples pinned in `tests/golden/<file>`: each line's name and bytes (a record
/// line, `family key = value`, is named by `family key`).
pub fn read(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = path(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let hex = |text: &str| (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex bytes")).collect::<Vec<u8>>();
    text.lines()
        .map(|line| match line.split_once(" = ") {
            Some((name, value)) => (name.to_string(), hex(value)),
            None => line.rsplit_once(' ').map(|(name, value)| (name.to_string(), hex(value))).expect("name and bytes"),
        })
        .collect()
}

/// Compares `lines` with `tests/golden/<file>` (or rewrites it under `CONCORD_BLESS`).
pub fn check(file: &str, lines: &[String]) {
    let path = path(file);
    let text = lines.iter().map(|line| format!("{line}\n")).collect::<String>();
    if std::env::var_os("CONCORD_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {} ({e}); CONCORD_BLESS=1 writes it", path.display()));
    if golden == text {
        return;
    }
    let pinned: Vec<&str> = golden.lines().collect();
    let changed: Vec<&str> = lines.iter().map(String::as_str).filter(|line| !pinned.contains(line)).collect();
    let gone: Vec<&str> = pinned.iter().copied().filter(|line| !lines.iter().any(|l| l == line)).collect();
    panic!(
        "a format changed: {} no longer matches.\nnow encoded:\n  {}\npinned:\n  {}\n\
         If the change is deliberate, run with CONCORD_BLESS=1, bump the format version and keep an upgrade path.",
        path.display(),
        changed.join("\n  "),
        gone.join("\n  ")
    );
}
