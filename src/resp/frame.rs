//! Reading commands off a RESP connection: what a client sends is a multibulk
//! (`*<n>\r\n` then `n` times `$<len>\r\n<bytes>\r\n`, as every client library and
//! `redis-cli` send it) or an inline command (one line of words, as typed into
//! `telnet`). `parse` takes what has arrived so far and returns the first whole
//! command, or says that more is needed; a pipeline is as many calls as there are
//! commands in the buffer.
//!
//! Every length is bounded before anything is allocated for it (`FrameLimits`), so a
//! client that announces a huge bulk or count gets Redis's protocol error, and the
//! connection is closed after it, as Redis does: after a framing error the rest of
//! the stream cannot be trusted.

/// The bounds on one command as it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Most arguments (the command's name included).
    pub args_max: usize,
    /// Largest argument, in bytes.
    pub bulk_bytes_max: usize,
    /// Largest command, all its arguments together, in bytes.
    pub command_bytes_max: usize,
    /// Longest inline command, or header line of a multibulk, in bytes.
    pub line_bytes_max: usize,
}

/// Why the stream cannot be read on: the reply's text (without `ERR `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(what: impl Into<String>) -> Self {
        Self(format!("Protocol error: {}", what.into()))
    }
}

/// A command read: its arguments (the name first; none for an empty line) and the
/// bytes of the buffer it took.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub args: Vec<Vec<u8>>,
    pub consumed: usize,
}

/// The first command in `buffer`: `Ok(None)` while it has not all arrived.
pub fn parse(buffer: &[u8], limits: &FrameLimits) -> Result<Option<Parsed>, ProtocolError> {
    match buffer.first() {
        None => Ok(None),
        Some(b'*') => multibulk(buffer, limits),
        Some(_) => inline(buffer, limits),
    }
}

/// The line starting at `at` (without its `\r\n`) and where the next begins.
fn line(buffer: &[u8], at: usize, limits: &FrameLimits, what: &str) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = &buffer[at..];
    match rest.windows(2).position(|pair| pair == b"\r\n") {
        Some(end) if end <= limits.line_bytes_max => Ok(Some((end, at + end + 2))),
        Some(_) => Err(ProtocolError::new(format!("too big {what}"))),
        None if rest.len() > limits.line_bytes_max => Err(ProtocolError::new(format!("too big {what}"))),
        None => Ok(None),
    }
}

/// A decimal in `digits`, as Redis reads a count or a length.
fn number(digits: &[u8]) -> Option<i64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn multibulk(buffer: &[u8], limits: &FrameLimits) -> Result<Option<Parsed>, ProtocolError> {
    let Some((len, mut at)) = line(buffer, 1, limits, "mbulk count string")? else { return Ok(None) };
    let count = match number(&buffer[1..1 + len]) {
        Some(count) if count <= limits.args_max as i64 => count,
        _ => return Err(ProtocolError::new("invalid multibulk length")),
    };
    if count <= 0 {
        return Ok(Some(Parsed { args: Vec::new(), consumed: at }));
    }
    let mut args = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match buffer.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(other) => return Err(ProtocolError::new(format!("expected '$', got '{}'", char::from(*other)))),
        }
        let Some((len, start)) = line(buffer, at + 1, limits, "bulk count string")? else { return Ok(None) };
        let size = match number(&buffer[at + 1..at + 1 + len]) {
            Some(size) if (0..=limits.bulk_bytes_max as i64).contains(&size) => size as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        let end = start + size;
        if end > limits.command_bytes_max {
            return Err(ProtocolError::new("too big command"));
        }
        if buffer.len() < end + 2 {
            return Ok(None);
        }
        if &buffer[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::new("bulk string not followed by CRLF"));
        }
        args.push(buffer[start..end].to_vec());
        at = end + 2;
    }
    Ok(Some(Parsed { args, consumed: at }))
}

fn inline(buffer: &[u8], limits: &FrameLimits) -> Result<Option<Parsed>, ProtocolError> {
    // An inline command may end with a bare `\n`, as `telnet` and `nc` send it.
    let end = match buffer.iter().position(|byte| *byte == b'\n') {
        Some(end) if end <= limits.line_bytes_max => end,
        Some(_) => return Err(ProtocolError::new("too big inline request")),
        None if buffer.len() > limits.line_bytes_max => return Err(ProtocolError::new("too big inline request")),
        None => return Ok(None),
    };
    let text = buffer[..end].strip_suffix(b"\r").unwrap_or(&buffer[..end]);
    let args: Vec<Vec<u8>> = text.split(|byte| byte.is_ascii_whitespace()).filter(|word| !word.is_empty()).map(<[u8]>::to_vec).collect();
    if args.len() > limits.args_max {
        return Err(ProtocolError::new("invalid multibulk length"));
    }
    Ok(Some(Parsed { args, consumed: end + 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits { args_max: 4, bulk_bytes_max: 8, command_bytes_max: 40, line_bytes_max: 32 };

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|word| word.as_bytes().to_vec()).collect()
    }

    #[test]
    fn whole_commands_are_read_one_at_a_time_and_partial_ones_wait() {
        let pipeline = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPING\r\n";
        let first = parse(pipeline, &LIMITS).unwrap().unwrap();
        assert_eq!(first.args, args(&["ECHO", "hi"]));
        let second = parse(&pipeline[first.consumed..], &LIMITS).unwrap().unwrap();
        assert_eq!((second.args, first.consumed + second.consumed), (args(&["PING"]), pipeline.len()));
        for cut in 0..first.consumed {
            assert_eq!(parse(&pipeline[..cut], &LIMITS), Ok(None), "cut at {cut}");
        }
        let binary = b"*2\r\n$3\r\nGET\r\n$4\r\n\x00\r\n\xff\r\n";
        assert_eq!(parse(binary, &LIMITS).unwrap().unwrap().args[1], b"\x00\r\n\xff");
        assert_eq!(parse(b"*0\r\n", &LIMITS).unwrap().unwrap(), Parsed { args: Vec::new(), consumed: 4 });
    }

    #[test]
    fn inline_commands_split_on_spaces_and_end_with_either_newline() {
        assert_eq!(parse(b"SET  k v\r\n", &LIMITS).unwrap().unwrap(), Parsed { args: args(&["SET", "k", "v"]), consumed: 10 });
        assert_eq!(parse(b"PING\n", &LIMITS).unwrap().unwrap().args, args(&["PING"]));
        assert_eq!(parse(b"PIN", &LIMITS), Ok(None));
        assert_eq!(parse(b"\r\n", &LIMITS).unwrap().unwrap().args, Vec::<Vec<u8>>::new());
    }

    #[test]
    fn lengths_over_the_bounds_and_bad_framing_are_protocol_errors() {
        let refused = |input: &[u8]| parse(input, &LIMITS).err().map(|ProtocolError(text)| text);
        let error = |what: &str| Some(format!("Protocol error: {what}"));
        assert_eq!(refused(b"*5\r\n"), error("invalid multibulk length"));
        assert_eq!(refused(b"*x\r\n"), error("invalid multibulk length"));
        assert_eq!(refused(b"*1\r\n$9\r\n"), error("invalid bulk length"));
        assert_eq!(refused(b"*1\r\n$-1\r\n"), error("invalid bulk length"));
        assert_eq!(refused(b"*1\r\n+OK\r\n"), error("expected '$', got '+'"));
        assert_eq!(refused(b"*1\r\n$2\r\nabcd"), error("bulk string not followed by CRLF"));
        assert_eq!(refused(&[b'*'; 40]), error("too big mbulk count string"));
        assert_eq!(refused(&[b'a'; 40]), error("too big inline request"));
        assert_eq!(refused(b"a b c d e\n"), error("invalid multibulk length"));
        assert_eq!(refused(b"*4\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n"), error("too big command"));
    }
}
