//! Peer frames in every peer protocol version this node speaks (`protocol`).
//!
//! Version 3 re-encoded the requests and outcomes that log entries, forwarded writes
//! and their answers carry (commands grouped by primitive, the leader's stamp in the
//! request envelope); version 2 is the encoding `state::v2` keeps. A node talks to
//! each peer in the newest version both speak, so a frame is encoded for the peer's
//! version and decoded in the version its sender names. Frames that did not change
//! are the same bytes in both. A snapshot is sent only in the current version: its
//! records are in this node's state format, which an older node cannot read (it gets
//! the snapshot once it is upgraded; a node that receives an older snapshot upgrades
//! it as it installs it).

use openraft::EntryPayload;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use serde::{Deserialize, Serialize};

use super::protocol::{ADMIN_SINCE, GROUPED_SINCE, carrying};
use super::{NodeId, TypeConfig};
use crate::admin::{AdminAnswer, AdminError, ForwardedAdmin};
use crate::codec::{self, CodecError};
use crate::service::{Authority, ConsensusError, ForwardedWrite};
use crate::state::command::{FORMAT_FIRST, Request, Response};
use crate::state::v2;

/// Why a frame could not be encoded for a peer.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// The peer's version cannot carry this frame.
    #[error("{0}")]
    NotCarried(String),
}

/// A peer frame, as each protocol version encodes it.
pub trait Frame: Sized {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError>;
    fn decode_in(bytes: &[u8], version: u32) -> Result<Self, CodecError>;
}

/// Frames whose encoding no version changed.
macro_rules! same_in_every_version {
    ($($frame:ty),* $(,)?) => {$(
        impl Frame for $frame {
            fn encode_in(&self, _version: u32) -> Result<Vec<u8>, FrameError> {
                Ok(codec::encode(self)?)
            }
            fn decode_in(bytes: &[u8], _version: u32) -> Result<Self, CodecError> {
                codec::decode(bytes)
            }
        }
    )*};
}

same_in_every_version!(
    VoteRequest<NodeId>,
    Authority,
    Result<u64, ConsensusError>,
    Result<AdminAnswer, AdminError>,
    Result<VoteResponse<NodeId>, RaftError<NodeId>>,
    Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>,
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
);

/// A request to the leader's administration (`admin`), which a leader of version 2
/// does not take from a follower.
impl Frame for ForwardedAdmin {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError> {
        if version >= ADMIN_SINCE {
            return Ok(codec::encode(self)?);
        }
        Err(FrameError::NotCarried(format!(
            "the leader speaks peer protocol {version} (the previous release), which takes cluster administration only directly: send the request to the leader"
        )))
    }

    fn decode_in(bytes: &[u8], _version: u32) -> Result<Self, CodecError> {
        codec::decode(bytes)
    }
}

/// Refuses `requests` for a peer of `version` if one of them is of a log format
/// newer than it carries (a leader does not propose one then, `service`; this is the
/// backstop).
fn check_carried<'a>(requests: impl IntoIterator<Item = &'a Request>, version: u32) -> Result<(), FrameError> {
    let format = requests.into_iter().map(|request| request.command.format_since()).max().unwrap_or(FORMAT_FIRST);
    match carrying(format) <= version {
        true => Ok(()),
        false => Err(FrameError::NotCarried(format!(
            "it speaks peer protocol {version}, which cannot carry commands of log format {format}; it gets them once upgraded (docs/operations.md)"
        ))),
    }
}

impl Frame for AppendEntriesRequest<TypeConfig> {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError> {
        let requests = self.entries.iter().filter_map(|entry| match &entry.payload {
            EntryPayload::Normal(request) => Some(request),
            _ => None,
        });
        check_carried(requests, version)?;
        if version >= GROUPED_SINCE {
            return Ok(codec::encode(self)?);
        }
        let entries = self.entries.iter().cloned().map(v2::entry_down).collect();
        let old = AppendEntriesRequest::<v2::Config> { vote: self.vote, prev_log_id: self.prev_log_id, entries, leader_commit: self.leader_commit };
        Ok(codec::encode(&old)?)
    }

    fn decode_in(bytes: &[u8], version: u32) -> Result<Self, CodecError> {
        if version >= GROUPED_SINCE {
            return codec::decode(bytes);
        }
        let old: AppendEntriesRequest<v2::Config> = codec::decode(bytes)?;
        let entries = old.entries.into_iter().map(v2::entry_up).collect();
        Ok(AppendEntriesRequest { vote: old.vote, prev_log_id: old.prev_log_id, entries, leader_commit: old.leader_commit })
    }
}

impl Frame for InstallSnapshotRequest<TypeConfig> {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError> {
        if version >= GROUPED_SINCE {
            return Ok(codec::encode(self)?);
        }
        Err(FrameError::NotCarried(format!(
            "it needs a snapshot, and it speaks peer protocol {version}, which cannot install one of this release; it gets one once upgraded (docs/operations.md)"
        )))
    }

    /// An older sender's snapshot frame is the same; its records are upgraded as they
    /// are installed (`state::machine`).
    fn decode_in(bytes: &[u8], _version: u32) -> Result<Self, CodecError> {
        codec::decode(bytes)
    }
}

/// A forwarded write as version 2 encodes it.
#[derive(Serialize, Deserialize)]
struct ForwardedWriteV2 {
    authority: Authority,
    request: v2::Request,
}

impl Frame for ForwardedWrite {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError> {
        check_carried([&self.request], version)?;
        if version >= GROUPED_SINCE {
            return Ok(codec::encode(self)?);
        }
        Ok(codec::encode(&ForwardedWriteV2 { authority: self.authority, request: self.request.clone().into() })?)
    }

    fn decode_in(bytes: &[u8], version: u32) -> Result<Self, CodecError> {
        if version >= GROUPED_SINCE {
            return codec::decode(bytes);
        }
        let old: ForwardedWriteV2 = codec::decode(bytes)?;
        Ok(ForwardedWrite { authority: old.authority, request: old.request.into() })
    }
}

impl Frame for Result<Response, ConsensusError> {
    fn encode_in(&self, version: u32) -> Result<Vec<u8>, FrameError> {
        if version >= GROUPED_SINCE {
            return Ok(codec::encode(self)?);
        }
        let old: Result<v2::Response, ConsensusError> = self.clone().map(v2::Response::from);
        Ok(codec::encode(&old)?)
    }

    fn decode_in(bytes: &[u8], version: u32) -> Result<Self, CodecError> {
        if version >= GROUPED_SINCE {
            return codec::decode(bytes);
        }
        let old: Result<v2::Response, ConsensusError> = codec::decode(bytes)?;
        Ok(old.map(Response::from))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Vote};

    use super::*;
    use crate::raft::Entry;
    use crate::state::command::{Command, Precondition};
    use crate::state::expiry::Ttl;
    use crate::state::kv::KvCommand;

    fn put(ttl: Option<Ttl>) -> Request {
        let (key, value, precondition, fence) = ("k".to_string(), b"v".to_vec(), Precondition::None, None);
        Request::from(Command::Kv(match ttl {
            None => KvCommand::Put { key, value, precondition, lease: None, fence },
            Some(ttl) => KvCommand::PutWithTtl { key, value, precondition, lease: None, fence, ttl },
        }))
    }

    fn append(request: Request) -> AppendEntriesRequest<TypeConfig> {
        let entry = Entry { log_id: openraft::LogId::new(CommittedLeaderId::new(2, 1), 7), payload: EntryPayload::Normal(request) };
        AppendEntriesRequest { vote: Vote::new_committed(2, 1), prev_log_id: None, entries: vec![entry], leader_commit: None }
    }

    #[test]
    fn a_command_of_format_4_goes_only_to_a_peer_of_protocol_4() {
        let ttl = Some(Ttl::After { ttl_ms: 10 });
        for version in [2, 3] {
            assert!(matches!(append(put(ttl)).encode_in(version), Err(FrameError::NotCarried(_))), "append, protocol {version}");
            let forwarded = ForwardedWrite { authority: Authority::NoTokenRequired, request: put(ttl) };
            assert!(matches!(forwarded.encode_in(version), Err(FrameError::NotCarried(_))), "forwarded write, protocol {version}");
            assert!(append(put(None)).encode_in(version).is_ok(), "a plain put still goes in protocol {version}");
        }
        let carried = append(put(ttl)).encode_in(4).unwrap();
        assert_eq!(AppendEntriesRequest::<TypeConfig>::decode_in(&carried, 4).unwrap().entries, append(put(ttl)).entries);
        // A transaction changing a key twice is format 5's: not for a peer of protocol 4.
        let op = || crate::state::txn::TxnOp::Delete { key: "k".into() };
        let twice = Request::from(Command::Txn(crate::state::txn::Txn { compare: Vec::new(), success: vec![op(), op()], failure: Vec::new() }));
        assert!(matches!(append(twice.clone()).encode_in(4), Err(FrameError::NotCarried(_))));
        assert!(append(twice).encode_in(5).is_ok());
    }
}
