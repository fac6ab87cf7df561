//! `concord dev`: a whole local cluster in one command.
//!
//! Starts N `concord serve` child processes on consecutive loopback ports (their
//! logs go to `node-N.log` in the data directory), waits
//! until they elect a leader, prints the endpoints and a few `curl` lines, and stops
//! the children (SIGTERM, then SIGKILL after a grace period) on Ctrl-C, on SIGTERM,
//! or when one of them exits; if it is killed outright, the kernel stops them. Without `--data-dir` the data lives in a fresh temporary directory
//! removed at exit; with it, the cluster resumes from that directory next time.
//!
//! With `--tls`, it first makes a throwaway CA and a certificate for 127.0.0.1 in
//! `<data dir>/tls` (`dev_ca`; kept and reused with `--data-dir`), and starts the
//! members with HTTPS and mutual TLS between them.

use std::path::PathBuf;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Args;
use concord::client::Client;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// How many members: 3 or 5.
    #[arg(long, default_value_t = 3, value_parser = parse_cluster_size)]
    pub nodes: u64,
    /// Keep the data here (resumed on the next run) instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Port of node 1; node N listens on PORT+N-1.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Serve HTTPS, with certificates from a throwaway CA, and mutual TLS between members.
    #[arg(long)]
    pub tls: bool,
}

/// The TLS files in `dir`: reused if a previous `--tls` run left them, else made.
fn dev_tls_files(dir: &std::path::Path) -> Result<concord::dev_ca::DevFiles, String> {
    let existing = concord::dev_ca::DevFiles::in_dir(dir);
    if [&existing.ca, &existing.cert, &existing.key].iter().all(|file| file.exists()) {
        return Ok(existing);
    }
    concord::dev_ca::DevCa::generate("Concord dev CA")?.write_loopback_files(dir)
}

fn parse_cluster_size(text: &str) -> Result<u64, String> {
    match text {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err(format!("a dev cluster has 3 or 5 nodes, not {text:?}")),
    }
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &self.0 {
            // SIGTERM lets each node stop cleanly; a pid we started ourselves.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.0 {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn run(args: DevArgs) -> ExitCode {
    // A temporary directory is removed when `temporary` drops, after the children stop.
    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => match tempfile::Builder::new().prefix("concord-dev-").tempdir() {
            Ok(dir) => (dir.path().to_path_buf(), Some(dir)),
            Err(e) => {
                eprintln!("error: cannot create a temporary data directory: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the concord executable: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(last_port) = args.base_port.checked_add(args.nodes as u16 - 1) else {
        eprintln!("error: --base-port {} leaves no room for {} nodes", args.base_port, args.nodes);
        return ExitCode::from(2);
    };
    let addrs: Vec<String> = (args.base_port..=last_port).map(|port| format!("127.0.0.1:{port}")).collect();
    let initial_cluster = addrs.iter().enumerate().map(|(i, addr)| format!("{}={addr}", i + 1)).collect::<Vec<_>>().join(",");
    let tls = match args.tls.then(|| dev_tls_files(&data_dir.join("tls"))).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut children = Children(Vec::new());
    for (i, addr) in addrs.iter().enumerate() {
        let id = (i + 1).to_string();
        let node_dir = data_dir.join(format!("node-{id}"));
        let log = match std::fs::create_dir_all(&data_dir).and_then(|_| std::fs::File::create(data_dir.join(format!("node-{id}.log")))) {
            Ok(log) => log,
            Err(e) => {
                eprintln!("error: cannot create the log file of node {id} in {}: {e}", data_dir.display());
                return ExitCode::from(1);
            }
        };
        let stderr = match log.try_clone() {
            Ok(stderr) => stderr,
            Err(e) => {
                eprintln!("error: cannot open the log file of node {id}: {e}");
                return ExitCode::from(1);
            }
        };
        let mut command = Command::new(&exe);
        command.stdout(log).stderr(stderr).args(["serve", "--id", &id, "--listen", addr, "--initial-cluster", &initial_cluster, "--data-dir"]).arg(&node_dir);
        if let Some(files) = &tls {
            command.arg("--tls-cert").arg(&files.cert).arg("--tls-key").arg(&files.key).arg("--tls-ca").arg(&files.ca).arg("--peer-mtls");
        }
        // If this process dies without stopping them (kill -9), the kernel sends each
        // child SIGTERM: no orphaned nodes holding the ports. (The signal follows the
        // thread that spawned: this runs on the main thread, which lives as long as
        // the process, never on a short-lived blocking-pool thread.)
        // SAFETY: the closure runs in the forked child before exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let spawned = command.spawn();
        match spawned {
            Ok(child) => children.0.push(child),
            Err(e) => {
                eprintln!("error: cannot start node {id}: {e}");
                return ExitCode::from(1);
            }
        }
    }

    let urls: Vec<String> = addrs.iter().map(|addr| format!("{scheme}://{addr}")).collect();
    let client = match &tls {
        None => Client::new(urls.clone()),
        Some(files) => match concord::tls::ClientTls::read_ca(&files.ca).and_then(|ca| Client::new(urls.clone()).with_tls(&ca).map_err(|e| e.to_string())) {
            Ok(client) => client,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Ok(status) = client.cluster_status(false).await
            && let Some(leader) = status.value["leader"].as_u64()
        {
            break Some(leader);
        }
        if Instant::now() > deadline || children.0.iter_mut().any(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let Some(leader) = leader else {
        eprintln!("error: the cluster did not elect a leader within 30 s (is a port in {addrs:?} in use?)");
        return ExitCode::from(1);
    };
    let (first, last) = (&urls[0], &urls[urls.len() - 1]);
    println!("\nConcord dev cluster: {} nodes, leader is node {leader}", args.nodes);
    println!("  endpoints: {}", urls.join(" "));
    println!("  data:      {}{}", data_dir.display(), if temporary.is_some() { " (temporary: removed at exit)" } else { "" });
    println!("  logs:      {}/node-N.log", data_dir.display());
    let curl = match &tls {
        Some(files) => {
            println!("  CA:        {} (members use mutual TLS with certificates it signed)", files.ca.display());
            format!("curl --cacert {}", files.ca.display())
        }
        None => "curl".to_string(),
    };
    println!("\nTry:");
    println!("  {curl} -X PUT --data-binary 'hello' {first}/v1/kv/greeting");
    println!("  {curl} {last}/v1/kv/greeting");
    println!("  {curl} -X PUT -H 'If-Match: 1' --data-binary 'again' {first}/v1/kv/greeting");
    println!("  {curl} '{first}/v1/kv?prefix=gre'");
    println!("  {curl} {first}/v1/cluster");
    match &tls {
        Some(files) => println!("  CONCORD_CA_FILE={} CONCORD_ENDPOINTS={} concord kv get greeting", files.ca.display(), urls.join(",")),
        None => println!("  CONCORD_ENDPOINTS={} concord kv get greeting", addrs.join(",")),
    }
    println!("\nCtrl-C stops the cluster.");

    // SIGTERM (from a supervisor, `timeout` or `kill`) stops it as cleanly as Ctrl-C.
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM: {e}");
            return ExitCode::from(1);
        }
    };

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(i) = children.0.iter_mut().position(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                    eprintln!("node {} exited; stopping the cluster", i + 1);
                    break;
                }
            }
        }
    }
    drop(children);
    ExitCode::SUCCESS
}
