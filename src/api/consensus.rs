//! The two ways a handler goes through Raft: propose a write (puts and deletes in
//! batches, `raft::proposer`), or confirm a read (`raft::read_index`).
//!
//! Both run on the leader (the forwarding layer sends them there). Before proposing,
//! the leader checks that it has heard from a quorum recently: if not, the answer is
//! 503 and nothing was proposed. After proposing, any failure to get an answer is a
//! 504, because the entry may still commit: that includes openraft's
//! `ForwardToLeader`, which it also sends for entries it appended and then had to
//! truncate, and which therefore does not prove the write did not happen.

use openraft::ServerState;

use super::AppState;
use super::error::ApiError;
use super::kv::Consistency;
use crate::raft::proposer::{self, ProposeError};
use crate::state::command::{Request, Response};

impl AppState {
    /// 503 unless this node is the leader and a quorum acknowledged it recently.
    pub fn ensure_leader_with_quorum(&self) -> Result<(), ApiError> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader {
            return Err(match metrics.current_leader {
                Some(leader) => ApiError::unavailable(format!("this node is not the leader (node {leader} is); retry")),
                None => ApiError::unavailable("the cluster has no leader right now (election in progress or no quorum); retry"),
            });
        }
        // No acknowledgement recorded yet means a leader elected moments ago, by a
        // quorum's votes: let it serve (a write it cannot commit gets the 504 path).
        let lease_ms = self.timing.election_timeout_max_ms;
        match metrics.millis_since_quorum_ack {
            Some(ms) if ms > lease_ms => Err(ApiError::unavailable(format!("the leader has not heard from a quorum for {ms} ms (limit {lease_ms} ms); retry"))),
            _ => Ok(()),
        }
    }

    /// Proposes `request` (in a batch with other writes when it may share an entry)
    /// and waits for it to be applied.
    pub async fn write(&self, request: Request) -> Result<Response, ApiError> {
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.write_timeout();
        let written = match request.command.is_batchable() {
            true => tokio::time::timeout(limit, self.proposer.propose(request)).await,
            false => tokio::time::timeout(limit, proposer::client_write(&self.raft, request, limit)).await,
        };
        match written {
            Ok(Ok(response)) => Ok(response),
            Err(_) => Err(ApiError::outcome_unknown(format!(
                "the write was proposed but not committed within {} ms; it may still apply. Retry with the same Idempotency-Key to learn the outcome",
                limit.as_millis()
            ))),
            Ok(Err(ProposeError::Busy)) => Err(ApiError::unavailable("too many writes are waiting to be proposed; nothing was changed, retry")),
            Ok(Err(ProposeError::LeaderChanged)) => Err(ApiError::outcome_unknown(
                "leadership changed while the write was in flight; it may or may not have applied. Retry with the same Idempotency-Key",
            )),
            Ok(Err(ProposeError::Failed(reason))) => Err(ApiError::outcome_unknown(format!("the write failed after it was proposed: {reason}"))),
        }
    }

    /// Before a read at `consistency`: for a linearizable one, waits until reading
    /// local state here is linearizable (ReadIndex, shared with the reads waiting
    /// alongside, then the read index applied here); a stale one reads as it is.
    pub async fn read_at(&self, consistency: Consistency) -> Result<(), ApiError> {
        if consistency == Consistency::Stale {
            return Ok(());
        }
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.read_timeout();
        let timed_out = || ApiError::unavailable(format!("leadership not confirmed and read index not applied within {} ms", limit.as_millis()));
        let deadline = tokio::time::Instant::now() + limit;
        let read_index = match tokio::time::timeout_at(deadline, self.read_index.confirm()).await {
            Ok(Ok(read_index)) => read_index,
            Ok(Err(reason)) => return Err(ApiError::unavailable(format!("cannot confirm leadership for a linearizable read: {reason}"))),
            Err(_) => return Err(timed_out()),
        };
        let Some(read_index) = read_index else { return Ok(()) };
        let mut metrics = self.raft.metrics();
        let applied = metrics.wait_for(|m| m.last_applied.is_some_and(|id| id.index >= read_index));
        match tokio::time::timeout_at(deadline, applied).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ApiError::unavailable("this node is shutting down")),
            Err(_) => Err(timed_out()),
        }
    }
}
