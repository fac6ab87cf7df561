//! What this node's last Raft RPC to each peer came to: answered, or failed and why.
//!
//! `/v1/cluster` shows it per member, so an operator sees "node 2: unreachable,
//! connection refused" instead of a follower whose `matched_index` merely stops
//! moving. The leader talks to every member every heartbeat, so on the leader it is
//! at most a heartbeat old; a follower only sends votes, so its view is partial,
//! and a peer it never called has no entry. One entry per peer ever called: bounded
//! by the membership.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::NodeId;

/// Shared by every peer client of one node (they are made per peer by openraft).
#[derive(Clone, Default)]
pub struct PeerContacts(Arc<Mutex<Peers>>);

#[derive(Default)]
struct Peers {
    last: HashMap<NodeId, Contact>,
    /// The protocol version each peer's latest answer carried (`protocol`); kept
    /// while the peer is unreachable, so a node down for a moment keeps its version.
    spoken: HashMap<NodeId, u32>,
}

/// The last RPC to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub at: Instant,
    /// Whether a connection was made and an answer came back.
    pub answered: bool,
    /// `None` when the peer answered with success; otherwise what went wrong.
    pub failure: Option<String>,
}

impl PeerContacts {
    /// The peer answered with success.
    pub fn answered(&self, peer: NodeId) {
        self.record(peer, true, None);
    }

    /// The peer answered, with a refusal (`reason` says which).
    pub fn refused(&self, peer: NodeId, reason: String) {
        self.record(peer, true, Some(reason));
    }

    /// No answer came: no connection, or it was lost.
    pub fn unreachable(&self, peer: NodeId, reason: String) {
        self.record(peer, false, Some(reason));
    }

    fn record(&self, peer: NodeId, answered: bool, failure: Option<String>) {
        self.peers().last.insert(peer, Contact { at: Instant::now(), answered, failure });
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn last(&self, peer: NodeId) -> Option<Contact> {
        self.peers().last.get(&peer).cloned()
    }

    /// The peer answered in protocol `version`.
    pub fn spoke(&self, peer: NodeId, version: u32) {
        self.peers().spoken.insert(peer, version);
    }

    /// The protocol version of the peer's latest answer, if it ever answered.
    pub fn speaks(&self, peer: NodeId) -> Option<u32> {
        self.peers().spoken.get(&peer).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_call_decides() {
        let contacts = PeerContacts::default();
        assert_eq!(contacts.last(2), None);
        contacts.unreachable(2, "connection refused".into());
        let last = contacts.last(2).unwrap();
        assert_eq!((last.answered, last.failure.as_deref()), (false, Some("connection refused")));
        contacts.refused(2, "answered 401".into());
        assert!(contacts.last(2).unwrap().answered);
        contacts.answered(2);
        assert_eq!(contacts.last(2).map(|c| (c.answered, c.failure)), Some((true, None)));
        assert_eq!(contacts.last(3), None);
    }

    #[test]
    fn the_version_a_peer_spoke_outlives_its_unreachability() {
        let contacts = PeerContacts::default();
        assert_eq!(contacts.speaks(2), None);
        contacts.spoke(2, 2);
        contacts.spoke(3, 3);
        contacts.unreachable(2, "connection refused".into());
        assert_eq!((contacts.speaks(2), contacts.speaks(3)), (Some(2), Some(3)));
        contacts.spoke(2, 3);
        assert_eq!(contacts.speaks(2), Some(3));
    }
}
