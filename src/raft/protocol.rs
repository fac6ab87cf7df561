//! The peer protocol's version: every Raft RPC and every answer says which version of
//! the peer frames it carries (`Concord-Protocol`; the frames are pinned in
//! `tests/golden/raft.txt`), and a node refuses a peer whose version it does not
//! speak before decoding anything, saying which versions each side speaks.
//!
//! A node speaks every version from `PROTOCOL_VERSION_OLDEST` to `PROTOCOL_VERSION`.
//! The upgrade rule (docs/operations.md): a release that changes the frames sends the
//! new version but still reads the one before, so a rolling upgrade between adjacent
//! releases runs with both in one cluster. A message without the header comes from a
//! node older than the header itself, which spoke version 1.
//!
//! Versions: 1, the first; 2, log entries may carry transactions, and a follower
//! sends writes and read-index requests to the leader at the command level
//! (`/raft/write`, `/raft/read_index`); 3, requests and outcomes re-encoded with the
//! commands grouped by primitive (`frames`), and cluster administration sent to the
//! leader as typed requests (`/raft/admin`); 4, entries, forwarded writes and their
//! answers may carry the commands of log format 4 (puts with a time to live, expiries,
//! list commands), which
//! a leader proposes only once every member speaks 4; 5, entries and forwarded writes
//! may carry the transactions of log format 5 (a key changed more than once), on the
//! same terms. A node talks to a peer in the newest
//! version both speak (`network.rs` learns it from the peer's answers, a 426
//! included) and encodes each frame for that version (`frames`).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::NodeId;

pub const PROTOCOL_HEADER: &str = "concord-protocol";
/// The version this node sends.
pub const PROTOCOL_VERSION: u32 = 5;
/// The oldest version it still reads.
pub const PROTOCOL_VERSION_OLDEST: u32 = 2;
/// The first version whose requests and outcomes are grouped by primitive.
pub const GROUPED_SINCE: u32 = 3;
/// The first version in which a follower sends cluster administration to the leader
/// (`/raft/admin`).
pub const ADMIN_SINCE: u32 = 3;

/// The first version that carries the commands of log format 4.
pub const FORMAT_4_SINCE: u32 = 4;
/// The first version that carries the transactions of log format 5.
pub const FORMAT_5_SINCE: u32 = 5;

/// The oldest version that carries a command of log format `format`
/// (`Command::format_since`): version 4 carries format 4, version 5 format 5; every
/// version spoken here carries the formats before it.
pub fn carrying(format: u32) -> u32 {
    match format {
        5.. => FORMAT_5_SINCE,
        4 => FORMAT_4_SINCE,
        _ => PROTOCOL_VERSION_OLDEST,
    }
}

/// The first of `peers` known to speak a version that cannot carry a command of log
/// format `format`, and that version, as `speaks` says. A peer not heard from yet
/// (down since this node started, say) does not hold the command back: were it of
/// an older release, the leader would learn it at its first answer and never send it
/// such an entry (`frames`), so it would wait for its upgrade, where holding every
/// command of the format back would stop them all for as long as a member is down.
pub fn peer_behind(format: u32, peers: impl IntoIterator<Item = NodeId>, speaks: impl Fn(NodeId) -> Option<u32>) -> Option<(NodeId, u32)> {
    let needed = carrying(format);
    peers.into_iter().filter_map(|peer| speaks(peer).map(|spoken| (peer, spoken))).find(|(_, spoken)| *spoken < needed)
}

/// The version `headers` say their message carries, if this node speaks it; if not,
/// what to tell the operator.
pub fn check(headers: &HeaderMap) -> Result<u32, String> {
    let version = match headers.get(PROTOCOL_HEADER) {
        // From a node older than the header itself, which spoke version 1.
        None => 1,
        Some(value) => {
            value.to_str().ok().and_then(|v| v.trim().parse::<u32>().ok()).ok_or_else(|| format!("{PROTOCOL_HEADER} is not a version number: {value:?}"))?
        }
    };
    if (PROTOCOL_VERSION_OLDEST..=PROTOCOL_VERSION).contains(&version) {
        return Ok(version);
    }
    let newer = if version > PROTOCOL_VERSION { "the peer is newer: upgrade this node" } else { "the peer is older: upgrade it first" };
    Err(format!(
        "peer protocol version {version} is not spoken here (this node speaks {PROTOCOL_VERSION_OLDEST} to {PROTOCOL_VERSION}); {newer}, \
         one release at a time (docs/operations.md, upgrades)"
    ))
}

/// The header every message and answer of this node carries.
pub fn header() -> (&'static str, HeaderValue) {
    (PROTOCOL_HEADER, HeaderValue::from(PROTOCOL_VERSION))
}

/// The peer routes' guard: 426 for a version this node does not speak; every answer
/// says the version it carries.
pub async fn require_known_protocol(request: Request, next: Next) -> Response {
    let mut response = match check(request.headers()) {
        Ok(_) => next.run(request).await,
        Err(message) => (StatusCode::UPGRADE_REQUIRED, message).into_response(),
    };
    let (name, value) = header();
    response.headers_mut().insert(name, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(PROTOCOL_HEADER, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_format_4_command_waits_for_every_peer_to_speak_4_and_older_ones_for_none() {
        let speaks = |peer: NodeId| [(2, 4), (3, 3)].into_iter().find(|(id, _)| *id == peer).map(|(_, version)| version);
        assert_eq!(peer_behind(4, [2], speaks), None);
        assert_eq!(peer_behind(4, [2, 3], speaks), Some((3, 3)), "one member still speaks 3");
        assert_eq!(peer_behind(4, [2, 9], speaks), None, "a member never heard from holds nothing back");
        assert_eq!(peer_behind(3, [2, 3, 9], speaks), None);
        assert_eq!(carrying(3), PROTOCOL_VERSION_OLDEST, "which is why the leader asks only for format 4");
        let speaks_4 = |_| Some(4);
        assert_eq!(peer_behind(5, [2], speaks_4), Some((2, 4)), "format 5 waits for protocol 5");
        assert_eq!(peer_behind(4, [2], speaks_4), None);
    }

    #[test]
    fn only_the_versions_spoken_here_pass() {
        assert!(check(&with(None)).unwrap_err().contains("version 1"), "a peer from before the header spoke version 1");
        assert!(check(&with(Some("1"))).unwrap_err().contains("upgrade it first"));
        assert_eq!(check(&with(Some("2"))), Ok(2));
        assert_eq!(check(&with(Some("3"))), Ok(3));
        assert_eq!(check(&with(Some("4"))), Ok(4));
        assert_eq!(check(&with(Some("5"))), Ok(5));
        let newer = check(&with(Some("6"))).unwrap_err();
        assert!(newer.contains("version 6") && newer.contains("upgrade this node"), "{newer}");
        assert!(check(&with(Some("one"))).is_err());
    }
}
