//! Running the commands a person types (`concord ...`, `curl ...`) as that person's
//! shell would, for the README and CLI tests: `bash -c`, the test's `concord` first
//! on the PATH, the dev cluster's ports, and whatever variables earlier commands set.
//! Also what those tests compare answers with: text lines and JSON by their shape.

#![allow(dead_code)] // each test binary that includes it uses a different part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// A shell whose `concord` is the one under test, pointed at one cluster.
pub struct Shell {
    pub env: BTreeMap<String, String>,
}

impl Shell {
    /// `endpoints` become `CONCORD_ENDPOINTS`; `dev_base_port` `CONCORD_DEV_BASE_PORT`.
    pub fn new(endpoints: &str, dev_base_port: Option<u16>) -> Shell {
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_concord"));
        let dir = exe.parent().expect("the binary's directory").display().to_string();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()));
        env.insert("CONCORD_ENDPOINTS".to_string(), endpoints.to_string());
        if let Some(port) = dev_base_port {
            env.insert("CONCORD_DEV_BASE_PORT".to_string(), port.to_string());
        }
        Shell { env }
    }

    fn command(&self, line: &str) -> Command {
        let mut command = Command::new("bash");
        command.arg("-c").arg(line).env_clear().envs(&self.env).stdin(Stdio::null());
        // Its own process group, so a stream and its children stop together.
        command.process_group(0);
        command
    }

    /// Runs `line` to completion (at most `timeout`; then it is killed and fails).
    pub fn run(&self, line: &str, timeout: Duration) -> Ran {
        let mut child = self.command(line).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("bash");
        let stdout = read_to_end(child.stdout.take().expect("stdout"));
        let stderr = read_to_end(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                stop_group(&mut child);
                panic!("`{line}` did not finish within {timeout:?}; it printed: {}", stdout.join().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran { stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default(), code: status.code() }
    }

    /// Runs a command that prints until stopped (a stream): reads its stdout until
    /// `lines` lines that `counts` accepts arrived or `timeout` passed, then stops it.
    pub fn run_stream(&self, line: &str, lines: usize, counts: impl Fn(&str) -> bool, timeout: Duration) -> Vec<String> {
        let mut child = self.command(line).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("bash");
        let out = drain(child.stdout.take().expect("stdout"));
        let deadline = Instant::now() + timeout;
        let counted = |out: &Arc<Mutex<Vec<u8>>>| text(out).lines().filter(|l| counts(l)).count();
        while counted(&out) < lines && Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop_group(&mut child);
        text(&out).lines().map(String::from).collect()
    }
}

/// Reads a pipe until it closes, on a thread of its own.
fn read_to_end(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Collects what a pipe delivers, on a thread of its own, for polling while it runs.
fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let filling = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            filling.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}

fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}

/// SIGKILL to the child's process group (the group id is the child's pid), then reaps it.
fn stop_group(child: &mut Child) {
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
}

/// Reads lines from `reader` on a thread, into a buffer the caller can poll.
pub fn follow(reader: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let filling = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            filling.lock().unwrap().push(line);
        }
    });
    lines
}

/// A line as compared: every run of digits is `N` (ids, revisions, times and ports
/// differ from run to run), whitespace runs are one space.
pub fn normalized(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_digits = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `actual` matches `expected` once both are `normalized`, where `...` in
/// `expected` stands for any text.
pub fn line_matches(expected: &str, actual: &str) -> bool {
    let (expected, actual) = (normalized(expected), normalized(actual));
    let mut parts = expected.split("...");
    let Some(first) = parts.next() else { return expected == actual };
    let Some(mut rest) = actual.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return rest.is_empty();
    }
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Checks that `actual` has the shape of `expected`: the same keys, array lengths,
/// types, booleans and (normalized) strings; numbers may differ.
pub fn same_shape(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let (ek, ak): (Vec<_>, Vec<_>) = (e.keys().collect(), a.keys().collect());
            if ek != ak {
                return Err(format!("{path}: keys {ek:?}, got {ak:?}"));
            }
            e.iter().try_for_each(|(key, value)| same_shape(value, &a[key], &format!("{path}.{key}")))
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            e.iter().zip(a).enumerate().try_for_each(|(i, (e, a))| same_shape(e, a, &format!("{path}[{i}]")))
        }
        (Value::Number(_), Value::Number(_)) => Ok(()),
        (Value::String(e), Value::String(a)) if normalized(e) == normalized(a) => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

/// The first value named `field` in `value`, depth first, as text.
pub fn field_text(value: &Value, field: &str) -> Option<String> {
    match value {
        Value::Object(map) => {
            map.get(field).map(|v| v.as_str().map_or_else(|| v.to_string(), String::from)).or_else(|| map.values().find_map(|v| field_text(v, field)))
        }
        Value::Array(items) => items.iter().find_map(|v| field_text(v, field)),
        _ => None,
    }
}

/// A `concord dev` cluster started as a person starts it, on `base_port` and the two
/// ports after it, with its control socket in a temporary directory of its own.
/// Stopped by its pid (SIGTERM) when dropped, if the test did not stop it.
pub struct Dev {
    child: Child,
    /// What it printed so far, line by line.
    pub out: Arc<Mutex<Vec<String>>>,
    pub base_port: u16,
    socket_dir: tempfile::TempDir,
}

impl Dev {
    /// Starts it and waits until it says it serves.
    pub fn start(base_port: u16) -> Dev {
        let socket_dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["dev", "--base-port", &base_port.to_string()])
            .env("TMPDIR", socket_dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("concord dev");
        let out = follow(child.stdout.take().expect("stdout"));
        let dev = Dev { child, out, base_port, socket_dir };
        dev.wait_for_line("that it serves", |l| l.contains("Ctrl-C stops the cluster"));
        dev
    }

    /// The first line it printed that `found` accepts, waiting up to 60 s for it.
    pub fn wait_for_line(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.out.lock().unwrap().iter().find(|l| found(l)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "concord dev never printed {what}: {:?}", self.out.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A shell pointed at this cluster: its endpoints, its base port, its socket.
    pub fn shell(&self) -> Shell {
        let endpoints = (0..3).map(|n| format!("127.0.0.1:{}", self.base_port + n)).collect::<Vec<_>>().join(",");
        let mut shell = Shell::new(&endpoints, Some(self.base_port));
        shell.env.insert("TMPDIR".into(), self.socket_dir.path().display().to_string());
        shell
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (SIGINT is Ctrl-C) and waits for it to exit.
    pub fn stop(&mut self, signal: libc::c_int) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        self.child.wait().expect("wait for concord dev")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop(libc::SIGTERM);
        }
    }
}
