//! The README is a test: every command of its quickstart sections runs, in order,
//! against a fresh `concord dev` cluster, and every answer is checked against what
//! the README shows. When the README and the code disagree, this fails.
//!
//! How the README is read (its sections "Quickstart with curl", "Quickstart with the
//! CLI" and "Watch it fail over", their `sh` blocks):
//!
//! - a line that is not a comment is a command (`\` continues it); `make ...` is
//!   skipped, as this test starts the cluster itself (`make dev` builds and runs
//!   `concord dev`, the command started here), and so is `export PATH=...`;
//! - `# => ...` lines after a command are what it prints: for `curl`, the HTTP status
//!   and then the JSON body (compared by shape: the same keys, strings, booleans and
//!   nulls; numbers may differ); for anything else, its lines (compared with every
//!   run of digits as one placeholder, in any order, `...` standing for any text);
//!   `(exit N)` first says it exits with N rather than 0. A command without them
//!   must exit 0 (and, for curl, answer 2xx);
//! - `NAME=$(command)` sets NAME to what the command prints, as in a shell;
//!   `NAME=12  # the "id" ...` says where a person takes a value from: the answer
//!   of the command before (its JSON field named in quotes, or the word at the same
//!   place in its text), so the test sets NAME to the value it really got;
//! - `curl -N`, `concord watch` and `concord topic subscribe` are streams: their
//!   expected lines are awaited (10 s at most), then they are stopped.
//!
//! The README's ports (7001-7003) become free ones, the same way for every command.

mod common;
#[path = "common/shell.rs"]
mod shell;

use std::time::Duration;

use serde_json::Value;
use shell::{Ran, Shell, field_text, line_matches, normalized, same_shape};

/// The sections run, in the order the README has them.
const SECTIONS: [&str; 3] = ["Quickstart with curl", "Quickstart with the CLI", "Watch it fail over"];
/// How long one command may take (a lock acquire or receive in the README waits
/// at most 10 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stream is given to print what the README shows.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Run {
        command: String,
        expected: Vec<String>,
        exit: i32,
    },
    Capture {
        name: String,
        command: String,
    },
    /// `NAME=<literal>  # the "field" ...`: `field` is named when the comment quotes it.
    Take {
        name: String,
        literal: String,
        field: Option<String>,
    },
}

/// The `sh` blocks of the named sections, in order.
fn quickstart_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut in_section = false;
    let mut block: Option<String> = None;
    for line in readme.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            in_section = SECTIONS.contains(&heading.trim());
            continue;
        }
        match (&mut block, line.trim_end()) {
            (None, "```sh") if in_section => block = Some(String::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(text), line) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn parse(blocks: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    for block in blocks {
        let mut pending = String::new();
        for line in block.lines() {
            let line = line.trim();
            if let Some(output) = line.strip_prefix("# =>") {
                let Some(Step::Run { expected, exit, .. }) = steps.last_mut() else { panic!("`# =>` after no command: {line}") };
                let output = output.trim();
                match output.strip_prefix("(exit ").and_then(|rest| rest.split_once(')')) {
                    Some((code, rest)) => {
                        *exit = code.parse().expect("an exit status");
                        expected.push(rest.trim().to_string());
                    }
                    None => expected.push(output.to_string()),
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(start) = line.strip_suffix('\\') {
                pending.push_str(start);
                continue;
            }
            let command = std::mem::take(&mut pending) + line;
            if command.starts_with("make ") || command.starts_with("export PATH=") {
                continue;
            }
            steps.push(step(&command));
        }
    }
    steps
}

fn step(command: &str) -> Step {
    let (code, comment) = command.split_once(" #").map_or((command, ""), |(code, comment)| (code.trim(), comment));
    if let Some((name, value)) = code.split_once('=')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    {
        if let Some(inner) = value.strip_prefix("$(").and_then(|v| v.strip_suffix(')')) {
            return Step::Capture { name: name.to_string(), command: inner.to_string() };
        }
        let field = comment.split('"').nth(1).map(String::from);
        return Step::Take { name: name.to_string(), literal: value.to_string(), field };
    }
    Step::Run { command: command.to_string(), expected: Vec::new(), exit: 0 }
}

fn is_stream(command: &str) -> bool {
    command.contains("curl -N") || command.starts_with("concord watch") || command.starts_with("concord topic subscribe")
}

/// The README's ports made this cluster's.
fn with_ports(command: &str, base_port: u16) -> String {
    (1..=3).fold(command.to_string(), |text, n| text.replace(&format!("127.0.0.1:700{n}"), &format!("127.0.0.1:{}", base_port + n - 1)))
}

/// What the last command answered, for `Take`.
enum Answer {
    None,
    Json { readme: Option<Value>, actual: Value },
    Text { readme: Vec<String>, actual: Vec<String> },
}

struct Run {
    shell: Shell,
    base_port: u16,
    last: Answer,
}

impl Run {
    fn step(&mut self, step: &Step) {
        match step {
            Step::Run { command, expected, .. } if command.starts_with("curl") && !is_stream(command) => self.curl(command, expected),
            Step::Run { command, expected, .. } if is_stream(command) => self.stream(command, expected),
            Step::Run { command, expected, exit } => self.text(command, expected, *exit),
            Step::Capture { name, command } => {
                let ran = self.shell.run(&with_ports(command, self.base_port), COMMAND_TIMEOUT);
                assert_eq!(ran.code, Some(0), "`{command}` failed: {ran:?}");
                let value = ran.stdout.trim().to_string();
                assert!(!value.is_empty(), "`{command}` printed nothing to set {name} to");
                self.shell.env.insert(name.clone(), value);
                self.last = Answer::None;
            }
            Step::Take { name, literal, field } => {
                let value = self
                    .take(literal, field.as_deref())
                    .unwrap_or_else(|| panic!("{name}={literal}: the README's answer before it does not show where {literal} comes from"));
                self.shell.env.insert(name.clone(), value);
            }
        }
    }

    fn curl(&mut self, command: &str, expected: &[String]) {
        let measured = with_ports(command, self.base_port).replacen("curl", "curl -sS -w '\\n%{http_code}\\n'", 1);
        let ran = self.shell.run(&measured, COMMAND_TIMEOUT);
        assert_eq!(ran.code, Some(0), "`{command}`: curl failed: {ran:?}");
        let mut lines: Vec<&str> = ran.stdout.lines().collect();
        let status = lines.pop().unwrap_or_default().to_string();
        let body = lines.iter().rev().find(|l| l.starts_with('{')).map(|l| l.to_string());
        let actual = body.as_deref().map(|b| serde_json::from_str::<Value>(b).unwrap_or_else(|e| panic!("`{command}`: the body is not JSON ({e}): {b}")));
        let Some(shown) = expected.first() else {
            assert!(status.starts_with('2'), "`{command}` answered {status}: {}", ran.stdout);
            self.last = Answer::None;
            return;
        };
        let (shown_status, shown_body) = shown.split_once(' ').map_or((shown.as_str(), None), |(s, b)| (s, Some(b)));
        assert_eq!(status, shown_status, "`{command}` answered {status}, the README shows {shown_status}: {}", ran.stdout);
        let readme =
            shown_body.map(|b| serde_json::from_str::<Value>(b).unwrap_or_else(|e| panic!("the README's answer to `{command}` is not JSON ({e}): {b}")));
        if let (Some(readme), Some(actual)) = (&readme, &actual) {
            same_shape(readme, actual, "body")
                .unwrap_or_else(|e| panic!("`{command}`: the answer differs from the README's: {e}\n  README: {readme}\n  actual: {actual}"));
        }
        self.last = match actual {
            Some(actual) => Answer::Json { readme, actual },
            None => Answer::None,
        };
    }

    fn text(&mut self, command: &str, expected: &[String], exit: i32) {
        let ran: Ran = self.shell.run(&with_ports(command, self.base_port), COMMAND_TIMEOUT);
        assert_eq!(ran.code, Some(exit), "`{command}` exited {:?}, the README says {exit}: {ran:?}", ran.code);
        let printed = format!("{}{}", ran.stdout, ran.stderr);
        let actual: Vec<String> = printed.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
        if !expected.is_empty() {
            assert_eq!(actual.len(), expected.len(), "`{command}` printed {} lines, the README shows {}:\n{printed}", actual.len(), expected.len());
            let mut unmatched = actual.clone();
            for line in expected {
                let at = unmatched.iter().position(|a| line_matches(line, a));
                let at = at.unwrap_or_else(|| panic!("`{command}`: the README shows\n  {line}\nwhich matches nothing it printed:\n{printed}"));
                unmatched.remove(at);
            }
        }
        self.last = Answer::Text { readme: expected.to_vec(), actual };
    }

    fn stream(&mut self, command: &str, expected: &[String]) {
        assert!(!expected.is_empty(), "`{command}` is a stream: the README must show what it prints");
        let shown = |line: &str| !line.trim().is_empty() && !line.starts_with(':');
        let printed = self.shell.run_stream(&with_ports(command, self.base_port), expected.len(), shown, STREAM_TIMEOUT);
        let actual: Vec<&String> = printed.iter().filter(|l| shown(l)).collect();
        assert!(actual.len() >= expected.len(), "`{command}` printed {actual:?}, the README shows {expected:?}");
        for (line, got) in expected.iter().zip(&actual) {
            assert!(line_matches(line, got), "`{command}`: the README shows\n  {line}\nit printed\n  {got}");
        }
        self.last = Answer::None;
    }

    /// The value a person takes from the last answer where the README shows `literal`.
    fn take(&self, literal: &str, field: Option<&str>) -> Option<String> {
        match &self.last {
            Answer::Json { readme, actual } => {
                let field = field?;
                if let Some(readme) = readme {
                    assert_eq!(field_text(readme, field).as_deref(), Some(literal), "the README's answer shows another {field} than {literal}");
                }
                field_text(actual, field)
            }
            Answer::Text { readme, actual } => readme.iter().enumerate().find_map(|(row, line)| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let column = words.iter().position(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.') == literal)?;
                // Digits are placeholders, so the actual line at this row is found by its shape.
                let got = actual.iter().find(|a| line_matches(line, a)).or(actual.get(row))?;
                let word = got.split_whitespace().nth(column)?;
                Some(word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.').to_string())
            }),
            Answer::None => None,
        }
    }
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let steps = parse(&quickstart_blocks(&readme));
    assert!(steps.len() > 40, "the quickstart sections were not found, or lost their commands: {} steps", steps.len());

    let mut dev = shell::Dev::start(common::free_dev_base_port());
    let mut run = Run { shell: dev.shell(), base_port: dev.base_port, last: Answer::None };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for step in &steps {
            run.step(step);
        }
        // The dev terminal says who took over (it looks twice a second; a loaded
        // machine may run the steps from the kill to the restart faster than that).
        dev.wait_for_line("the dev terminal to say who took over", |line| line.starts_with("leader is now node"));
    }));
    let status = dev.stop(libc::SIGTERM);
    if let Err(panic) = outcome {
        eprintln!("concord dev printed:\n{}", dev.out.lock().unwrap().join("\n"));
        std::panic::resume_unwind(panic);
    }
    assert!(status.success(), "concord dev exited with {status}");
}

#[test]
fn the_readme_reader_understands_its_conventions() {
    let block = "# a comment\ncurl -X POST http://127.0.0.1:7001/v1/leases \\\n  -d '{}'\n# => 200 {\"id\":12}\nLEASE=12   # the \"id\" above\n\
                 TOKEN=$(concord lock acquire l --lease $LEASE)\nconcord lock check l 1\n# => (exit 1) token 1 does not hold \"l\"\nmake dev\n";
    let steps = parse(&[block.to_string()]);
    assert_eq!(
        steps,
        vec![
            Step::Run { command: "curl -X POST http://127.0.0.1:7001/v1/leases -d '{}'".into(), expected: vec!["200 {\"id\":12}".into()], exit: 0 },
            Step::Take { name: "LEASE".into(), literal: "12".into(), field: Some("id".into()) },
            Step::Capture { name: "TOKEN".into(), command: "concord lock acquire l --lease $LEASE".into() },
            Step::Run { command: "concord lock check l 1".into(), expected: vec!["token 1 does not hold \"l\"".into()], exit: 1 },
        ]
    );
    assert_eq!(with_ports("curl http://127.0.0.1:7003/x", 9000), "curl http://127.0.0.1:9002/x");
    assert_eq!(normalized("a  12 b7"), "a N bN");
}

#[test]
fn comparisons_tell_shapes_apart() {
    assert!(line_matches("OK created \"greeting\" at revision 1 (version 1)", "OK created \"greeting\" at revision 27 (version 1)"));
    assert!(!line_matches("OK created \"greeting\" at revision 1", "OK updated \"greeting\" at revision 1"));
    assert!(line_matches("killed node 1 ...; its log is .../node-1.log", "killed node 3 (pid 77); its log is /tmp/x/node-3.log"));
    assert!(!line_matches("a ... c", "a b d"));
    let e: Value = serde_json::json!({"id": 12, "lease": null, "key": "k1"});
    assert!(same_shape(&e, &serde_json::json!({"id": 57, "lease": null, "key": "k9"}), "").is_ok());
    assert!(same_shape(&e, &serde_json::json!({"id": 57, "lease": 3, "key": "k9"}), "").is_err());
    assert!(same_shape(&e, &serde_json::json!({"id": 57, "key": "k9"}), "").is_err());
    assert_eq!(field_text(&serde_json::json!({"messages": [{"receipt": "1.57"}]}), "receipt").as_deref(), Some("1.57"));
}
