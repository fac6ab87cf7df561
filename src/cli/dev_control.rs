//! The control socket of a running `concord dev`: how `concord dev kill 2` and
//! `concord dev restart 2`, typed in another terminal, reach the process that owns
//! the nodes (only it can restart a child it started, and only it knows which pid is
//! node 2).
//!
//! A Unix socket in the temporary directory, named by the cluster's base port, so
//! both sides find it from the same `--base-port` (or `CONCORD_DEV_BASE_PORT`)
//! without knowing the data directory. One request line, one answer line: `ok
//! <text>` or `error <text>`. Both are bounded (`LINE_BYTES_MAX`, `ANSWER_TIMEOUT`):
//! a stray client cannot stall the supervisor.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Longest request or answer line.
const LINE_BYTES_MAX: u64 = 4096;
/// How long the supervisor waits for a request line, and the other side for the
/// answer (a restart waits up to 20 s for the node to serve).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests waiting while the supervisor handles one, and connections whose request
/// line is being read.
const REQUESTS_QUEUED_MAX: usize = 8;
const CONNECTIONS_READING_MAX: usize = 16;

/// What another terminal asks of the running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// kill -9 this node, or whichever leads now.
    Kill(NodeChoice),
    /// Start this stopped node again, or every stopped one.
    Restart(Option<u64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChoice {
    Id(u64),
    Leader,
}

impl Request {
    fn to_line(&self) -> String {
        match self {
            Request::Kill(NodeChoice::Id(id)) => format!("kill {id}"),
            Request::Kill(NodeChoice::Leader) => "kill leader".to_string(),
            Request::Restart(Some(id)) => format!("restart {id}"),
            Request::Restart(None) => "restart all".to_string(),
        }
    }

    fn parse(line: &str) -> Result<Request, String> {
        let (verb, node) = line.trim().split_once(' ').ok_or_else(|| format!("not a request: {line:?}"))?;
        let id = || node.parse::<u64>().map_err(|_| format!("not a node id: {node:?}"));
        match (verb, node) {
            ("kill", "leader") => Ok(Request::Kill(NodeChoice::Leader)),
            ("kill", _) => Ok(Request::Kill(NodeChoice::Id(id()?))),
            ("restart", "all") => Ok(Request::Restart(None)),
            ("restart", _) => Ok(Request::Restart(Some(id()?))),
            _ => Err(format!("unknown request {verb:?}")),
        }
    }
}

/// Where the dev cluster whose node 1 listens on `base_port` keeps its socket.
pub fn socket_path(base_port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("concord-dev-{base_port}.sock"))
}

/// The socket file, removed when the supervisor stops.
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Listens at `socket_path(base_port)` and hands each well-formed request, with the
/// connection to answer it on, to the returned channel (read by the supervisor's
/// loop, which owns the nodes). Refuses if another dev cluster answers there, and
/// replaces a socket file that a dead one left behind.
pub async fn listen(base_port: u16) -> Result<(mpsc::Receiver<(Request, Answerer)>, SocketFile), String> {
    let path = socket_path(base_port);
    if UnixStream::connect(&path).await.is_ok() {
        return Err(format!("a dev cluster with base port {base_port} is already running (its control socket is {})", path.display()));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    // One request is handled at a time; a few more may wait their turn.
    let (sender, receiver) = mpsc::channel(REQUESTS_QUEUED_MAX);
    // Each connection's line is read on a task of its own, so one that sends nothing
    // holds up no other.
    let reading = std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_READING_MAX));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(permit) = reading.clone().try_acquire_owned() else { continue };
            tokio::spawn(read_request(Answerer(stream), sender.clone(), permit));
        }
    });
    Ok((receiver, SocketFile(path)))
}

/// Reads one connection's request and hands it on, or answers why not.
async fn read_request(mut answerer: Answerer, sender: mpsc::Sender<(Request, Answerer)>, _reading: tokio::sync::OwnedSemaphorePermit) {
    let request = match tokio::time::timeout(ANSWER_TIMEOUT, read_line(&mut answerer.0)).await {
        Ok(Ok(line)) => Request::parse(&line),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no request within the timeout".to_string()),
    };
    match request {
        Ok(request) => {
            if let Err(mpsc::error::TrySendError::Full((_, answerer)) | mpsc::error::TrySendError::Closed((_, answerer))) = sender.try_send((request, answerer))
            {
                answerer.answer(Err("the dev cluster is busy with other requests; try again".into())).await;
            }
        }
        Err(e) => answerer.answer(Err(e)).await,
    }
}

/// Sends the answer to one request.
pub struct Answerer(UnixStream);

impl Answerer {
    pub async fn answer(mut self, result: Result<String, String>) {
        let line = match result {
            Ok(text) => format!("ok {text}\n"),
            Err(text) => format!("error {text}\n"),
        };
        let _ = tokio::time::timeout(ANSWER_TIMEOUT, self.0.write_all(line.as_bytes())).await;
    }
}

async fn read_line(stream: &mut UnixStream) -> Result<String, String> {
    let mut line = String::new();
    BufReader::new(stream.take(LINE_BYTES_MAX)).read_line(&mut line).await.map_err(|e| format!("cannot read the request: {e}"))?;
    Ok(line)
}

/// The other terminal's end: sends `request` to the dev cluster on `base_port` and
/// returns its answer's text (`Err` for an `error` answer or no cluster there).
pub async fn send(base_port: u16, request: &Request) -> Result<String, String> {
    let path = socket_path(base_port);
    let mut stream = UnixStream::connect(&path)
        .await
        .map_err(|e| format!("no dev cluster with base port {base_port} is running here ({}: {e}); start one with `concord dev`", path.display()))?;
    let exchange = async {
        stream.write_all(format!("{}\n", request.to_line()).as_bytes()).await.map_err(|e| e.to_string())?;
        read_line(&mut stream).await
    };
    let line =
        tokio::time::timeout(ANSWER_TIMEOUT, exchange).await.map_err(|_| format!("the dev cluster did not answer within {} s", ANSWER_TIMEOUT.as_secs()))??;
    match line.trim_end().split_once(' ') {
        Some(("ok", text)) => Ok(text.to_string()),
        Some(("error", text)) => Err(text.to_string()),
        _ => Err(format!("the dev cluster answered {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_survive_the_line_format() {
        for request in [Request::Kill(NodeChoice::Id(2)), Request::Kill(NodeChoice::Leader), Request::Restart(Some(3)), Request::Restart(None)] {
            assert_eq!(Request::parse(&format!("{}\n", request.to_line())), Ok(request));
        }
        assert!(Request::parse("kill two").is_err());
        assert!(Request::parse("reboot 1").is_err());
        assert!(Request::parse("").is_err());
    }
}
