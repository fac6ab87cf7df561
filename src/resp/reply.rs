//! What a RESP connection answers, and how it is written in the protocol the client
//! chose with `HELLO`: RESP2 (the default) or RESP3. A command builds one `Reply`; the
//! connection encodes it for its protocol, so the commands never think about it.
//!
//! RESP3 has types RESP2 lacks; in RESP2 they are written as Redis writes them:
//! a map as a flat array of keys and values, a set as an array, and null as the
//! null bulk string (`$-1`) or, for a missing array, the null array (`*-1`).

use std::io::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A status line (`+OK`).
    Simple(String),
    /// An error line: its first word is the code clients dispatch on (`ERR`, `WRONGTYPE`...).
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    /// A missing value (`$-1` in RESP2).
    Null,
    /// A missing array (`*-1` in RESP2), as `EXEC` answers an aborted transaction.
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    /// An out-of-band message (pub/sub) in RESP3; an array in RESP2.
    Push(Vec<Reply>),
    /// Several frames answering one command (`SUBSCRIBE a b` confirms each channel),
    /// written one after the other.
    Frames(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Self {
        Reply::Simple("OK".into())
    }

    /// An error in Redis's generic `ERR` class.
    pub fn err(message: impl AsRef<str>) -> Self {
        Reply::Error(format!("ERR {}", message.as_ref()))
    }

    pub fn bulk(text: impl Into<Vec<u8>>) -> Self {
        Reply::Bulk(text.into())
    }

    /// A bulk string, or null for none.
    pub fn maybe(value: Option<Vec<u8>>) -> Self {
        value.map_or(Reply::Null, Reply::Bulk)
    }

    /// Appends the reply to `out`, in RESP3 if `resp3`, else in RESP2.
    pub fn encode(&self, resp3: bool, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = self.write(resp3, out);
    }

    fn write(&self, resp3: bool, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            // A status or error line cannot hold a line break: it would end the line.
            Reply::Simple(text) => write!(out, "+{}\r\n", one_line(text)),
            Reply::Error(text) => write!(out, "-{}\r\n", one_line(text)),
            Reply::Integer(n) => write!(out, ":{n}\r\n"),
            Reply::Bulk(bytes) => {
                write!(out, "${}\r\n", bytes.len())?;
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
                Ok(())
            }
            Reply::Null if resp3 => write!(out, "_\r\n"),
            Reply::Null => write!(out, "$-1\r\n"),
            Reply::NullArray if resp3 => write!(out, "_\r\n"),
            Reply::NullArray => write!(out, "*-1\r\n"),
            Reply::Array(items) => Self::aggregate(b'*', items, resp3, out),
            Reply::Set(items) => Self::aggregate(if resp3 { b'~' } else { b'*' }, items, resp3, out),
            Reply::Push(items) => Self::aggregate(if resp3 { b'>' } else { b'*' }, items, resp3, out),
            Reply::Frames(frames) => frames.iter().try_for_each(|frame| frame.write(resp3, out)),
            Reply::Map(pairs) => {
                if resp3 {
                    write!(out, "%{}\r\n", pairs.len())?;
                } else {
                    write!(out, "*{}\r\n", pairs.len() * 2)?;
                }
                for (key, value) in pairs {
                    key.write(resp3, out)?;
                    value.write(resp3, out)?;
                }
                Ok(())
            }
        }
    }

    fn aggregate(kind: u8, items: &[Reply], resp3: bool, out: &mut Vec<u8>) -> std::io::Result<()> {
        write!(out, "{}{}\r\n", char::from(kind), items.len())?;
        items.iter().try_for_each(|item| item.write(resp3, out))
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(reply: Reply) -> (String, String) {
        let (mut two, mut three) = (Vec::new(), Vec::new());
        reply.encode(false, &mut two);
        reply.encode(true, &mut three);
        (String::from_utf8(two).unwrap(), String::from_utf8(three).unwrap())
    }

    #[test]
    fn each_reply_is_written_as_redis_writes_it_in_both_protocols() {
        let same = |reply: Reply, text: &str| assert_eq!(both(reply), (text.to_string(), text.to_string()));
        same(Reply::ok(), "+OK\r\n");
        same(Reply::err("bad\r\nthing"), "-ERR bad  thing\r\n");
        same(Reply::Integer(-3), ":-3\r\n");
        same(Reply::bulk("hi"), "$2\r\nhi\r\n");
        same(Reply::Array(vec![Reply::Integer(1), Reply::bulk("")]), "*2\r\n:1\r\n$0\r\n\r\n");
        let pairs = Reply::Map(vec![(Reply::bulk("proto"), Reply::Integer(3))]);
        assert_eq!(both(pairs), ("*2\r\n$5\r\nproto\r\n:3\r\n".into(), "%1\r\n$5\r\nproto\r\n:3\r\n".into()));
        assert_eq!(both(Reply::Null), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::NullArray), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::Set(vec![Reply::bulk("a")])), ("*1\r\n$1\r\na\r\n".into(), "~1\r\n$1\r\na\r\n".into()));
        assert_eq!(both(Reply::Push(vec![Reply::Integer(1)])), ("*1\r\n:1\r\n".into(), ">1\r\n:1\r\n".into()));
        same(Reply::Frames(vec![Reply::Integer(1), Reply::ok()]), ":1\r\n+OK\r\n");
    }
}
