//! The typed core every door calls (issue 14's "one core, many doors"): propose a
//! command and get its outcome, or make a read linearizable, with every consensus
//! failure a `ConsensusError`, not an HTTP status. The HTTP API maps the errors to
//! 503 and 504 (`api::error`); another door maps them to its own dialect.
//!
//! A command that carries the leader's time stamp (`Command::now_ms_mut`: lease
//! grants and keep-alives, queue and topic writes, transactions) is stamped here, as
//! it is proposed, so a door builds commands without the leader's clock. Writes go
//! through the proposer (puts and deletes, batched into shared entries) or straight
//! to openraft; reads through the batched ReadIndex (`raft::read_index`).
//! Both run on the leader. Before proposing, the leader checks that it heard from a
//! quorum recently: if not, nothing is proposed. After proposing, any failure to get
//! an answer leaves the outcome unknown, because the entry may still commit: that
//! includes openraft's `ForwardToLeader`, which it also sends for entries it appended
//! and then had to truncate, and which therefore does not prove the write did not
//! happen.

use std::sync::Arc;

use openraft::ServerState;

use crate::config::{Limits, RaftTiming};
use crate::raft::proposer::{self, ProposeError, Proposer};
use crate::raft::read_index::ReadIndex;
use crate::raft::{NodeId, Raft};
use crate::state::command::{Request, Response};
use crate::ticker::LeaderClock;

/// Why a write or a linearizable read did not complete. Every variant but
/// `OutcomeUnknown` is definite: nothing was proposed, so a retry is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    #[error("this node is not the leader (node {0} is); retry")]
    NotLeader(NodeId),
    #[error("the cluster has no leader right now (election in progress or no quorum); retry")]
    NoLeader,
    #[error("the leader has not heard from a quorum for {silent_ms} ms (limit {limit_ms} ms); retry")]
    NoQuorum { silent_ms: u64, limit_ms: u64 },
    #[error("too many writes are waiting to be proposed; nothing was changed, retry")]
    Busy,
    /// The leader cannot stamp the command with the replicated clock yet (it is taking
    /// over, or a tick failed).
    #[error("the leader cannot read the replicated clock right now (taking over, or a tick failed); retry")]
    ClockNotReady,
    /// A linearizable read could not be confirmed (leadership, or the read index not
    /// applied here in time); says why.
    #[error("{0}")]
    ReadNotConfirmed(String),
    /// The write was proposed and no answer came: it may or may not apply.
    #[error("{0}")]
    OutcomeUnknown(String),
}

impl ConsensusError {
    /// True when nothing was proposed.
    pub fn is_definite(&self) -> bool {
        !matches!(self, ConsensusError::OutcomeUnknown(_))
    }
}

/// The core service of one node: what a door needs to write and to read.
#[derive(Clone)]
pub struct Core {
    raft: Raft,
    /// One entry for many puts and deletes.
    proposer: Proposer,
    /// One leadership check for many linearizable reads.
    read_index: ReadIndex,
    /// The leader's reading of the replicated clock, to stamp commands with.
    clock: Arc<LeaderClock>,
    limits: Arc<Limits>,
    timing: Arc<RaftTiming>,
}

impl Core {
    pub fn new(raft: Raft, clock: Arc<LeaderClock>, limits: Arc<Limits>, timing: Arc<RaftTiming>) -> Self {
        let proposer = Proposer::spawn(raft.clone(), limits.concurrent_requests_max, limits.body_bytes_max, limits.write_timeout());
        let read_index = ReadIndex::spawn(raft.clone(), limits.concurrent_requests_max, limits.read_timeout());
        Self { raft, proposer, read_index, clock, limits, timing }
    }

    /// `Ok` if this node is the leader and a quorum acknowledged it recently.
    pub fn ensure_leader_with_quorum(&self) -> Result<(), ConsensusError> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader {
            return Err(metrics.current_leader.map_or(ConsensusError::NoLeader, ConsensusError::NotLeader));
        }
        // No acknowledgement recorded yet means a leader elected moments ago, by a
        // quorum's votes: let it serve (a write it cannot commit gets the unknown path).
        let limit_ms = self.timing.election_timeout_max_ms;
        match metrics.millis_since_quorum_ack {
            Some(silent_ms) if silent_ms > limit_ms => Err(ConsensusError::NoQuorum { silent_ms, limit_ms }),
            _ => Ok(()),
        }
    }

    /// Stamps `request` with the leader's clock if its command carries a stamp,
    /// proposes it (in a batch with other writes when it may share an entry) and
    /// waits, at most the write timeout, for it to be applied.
    pub async fn write(&self, mut request: Request) -> Result<Response, ConsensusError> {
        self.ensure_leader_with_quorum()?;
        if let Some(now_ms) = request.command.now_ms_mut() {
            *now_ms = self.clock.fresh_now_ms(&self.raft).await.ok_or(ConsensusError::ClockNotReady)?;
        }
        let limit = self.limits.write_timeout();
        let written = match request.command.is_batchable() {
            true => tokio::time::timeout(limit, self.proposer.propose(request)).await,
            false => tokio::time::timeout(limit, proposer::client_write(&self.raft, request, limit)).await,
        };
        match written {
            Ok(Ok(response)) => Ok(response),
            Err(_) => Err(ConsensusError::OutcomeUnknown(format!(
                "the write was proposed but not committed within {} ms; it may still apply. Retry with the same Idempotency-Key to learn the outcome",
                limit.as_millis()
            ))),
            Ok(Err(ProposeError::Busy)) => Err(ConsensusError::Busy),
            Ok(Err(ProposeError::LeaderChanged)) => Err(ConsensusError::OutcomeUnknown(
                "leadership changed while the write was in flight; it may or may not have applied. Retry with the same Idempotency-Key".into(),
            )),
            Ok(Err(ProposeError::Failed(reason))) => Err(ConsensusError::OutcomeUnknown(format!("the write failed after it was proposed: {reason}"))),
        }
    }

    /// Waits, at most the read timeout, until reading this node's state is
    /// linearizable: ReadIndex (shared with the reads waiting alongside), then the
    /// read index applied here.
    pub async fn linearize(&self) -> Result<(), ConsensusError> {
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.read_timeout();
        let timed_out = || ConsensusError::ReadNotConfirmed(format!("leadership not confirmed and read index not applied within {} ms", limit.as_millis()));
        let deadline = tokio::time::Instant::now() + limit;
        let read_index = match tokio::time::timeout_at(deadline, self.read_index.confirm()).await {
            Ok(Ok(read_index)) => read_index,
            Ok(Err(reason)) => return Err(ConsensusError::ReadNotConfirmed(format!("cannot confirm leadership for a linearizable read: {reason}"))),
            Err(_) => return Err(timed_out()),
        };
        let Some(read_index) = read_index else { return Ok(()) };
        let mut metrics = self.raft.metrics();
        let applied = metrics.wait_for(|m| m.last_applied.is_some_and(|id| id.index >= read_index));
        match tokio::time::timeout_at(deadline, applied).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ConsensusError::ReadNotConfirmed("this node is shutting down".into())),
            Err(_) => Err(timed_out()),
        }
    }
}
