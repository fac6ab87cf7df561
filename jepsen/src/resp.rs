//! A minimal Redis-protocol client for the workloads that go through Concord's Redis
//! door: one connection, a command at a time, every reply read whole. Kept here, not
//! taken from a crate, so the suite decides exactly when a command counts as sent.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Most bytes of one bulk reply the suite accepts.
const BULK_BYTES_MAX: usize = 1 << 20;
/// Most elements of one array reply the suite accepts.
const ARRAY_LEN_MAX: usize = 1024;

/// A reply, as far as the workloads need to tell replies apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Reply>),
}

/// Why a command has no reply: `Unsent` when it cannot have reached the node.
#[derive(Debug)]
pub enum Failure {
    Unsent(String),
    Lost(String),
}

pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub async fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Self { stream: BufReader::new(stream) })
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        // A write that fails may still have reached the node in part: only a failed
        // connect (in `open`) proves the command was never sent.
        self.stream.get_mut().write_all(&frame).await.map_err(|e| Failure::Lost(e.to_string()))?;
        self.reply().await.map_err(Failure::Lost)
    }

    async fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let read = self.stream.read_line(&mut line).await.map_err(|e| e.to_string())?;
        if read == 0 || !line.ends_with("\r\n") {
            return Err("connection closed".into());
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn reply(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, String>> + Send + '_>> {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(1.min(line.len()));
            let number = || rest.parse::<i64>().map_err(|_| format!("bad reply line {line:?}"));
            match kind {
                "+" => Ok(Reply::Simple(rest.to_string())),
                "-" => Ok(Reply::Error(rest.to_string())),
                ":" => Ok(Reply::Integer(number()?)),
                "_" => Ok(Reply::Null),
                "$" | "*" if number()? < 0 => Ok(Reply::Null),
                "$" => {
                    let length = number()? as usize;
                    if length > BULK_BYTES_MAX {
                        return Err(format!("a bulk reply of {length} bytes"));
                    }
                    let mut data = vec![0; length + 2];
                    self.stream.read_exact(&mut data).await.map_err(|e| e.to_string())?;
                    data.truncate(length);
                    Ok(Reply::Bulk(data))
                }
                "*" => {
                    let length = number()? as usize;
                    if length > ARRAY_LEN_MAX {
                        return Err(format!("an array reply of {length} elements"));
                    }
                    let mut items = Vec::with_capacity(length);
                    for _ in 0..length {
                        items.push(self.reply().await?);
                    }
                    Ok(Reply::Array(items))
                }
                _ => Err(format!("bad reply line {line:?}")),
            }
        })
    }
}
