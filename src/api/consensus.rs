//! The two ways a handler goes through Raft: propose a write, or confirm a read.
//!
//! Both run on the leader (the forwarding layer sends them there). Before proposing,
//! the leader checks that it has heard from a quorum recently: if not, the answer is
//! 503 and nothing was proposed. After proposing, any failure to get an answer is a
//! 504, because the entry may still commit: that includes openraft's
//! `ForwardToLeader`, which it also sends for entries it appended and then had to
//! truncate, and which therefore does not prove the write did not happen.

use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};

use super::AppState;
use super::kv::Consistency;
use super::error::ApiError;
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
            Some(ms) if ms > lease_ms => {
                Err(ApiError::unavailable(format!("the leader has not heard from a quorum for {ms} ms (limit {lease_ms} ms); retry")))
            }
            _ => Ok(()),
        }
    }

    /// Proposes `request` and waits for it to be applied.
    pub async fn write(&self, request: Request) -> Result<Response, ApiError> {
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.write_timeout();
        match tokio::time::timeout(limit, self.raft.client_write(request)).await {
            Ok(Ok(written)) => Ok(written.data),
            Err(_) => Err(ApiError::outcome_unknown(format!(
                "the write was proposed but not committed within {} ms; it may still apply. Retry with the same Idempotency-Key to learn the outcome",
                limit.as_millis()
            ))),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(ApiError::outcome_unknown(
                "leadership changed while the write was in flight; it may or may not have applied. Retry with the same Idempotency-Key",
            )),
            Ok(Err(e)) => Err(ApiError::outcome_unknown(format!("the write failed after it was proposed: {e}"))),
        }
    }

    /// Before a read at `consistency`: for a linearizable one, waits until reading
    /// local state here is linearizable (ReadIndex); a stale one reads as it is.
    pub async fn read_at(&self, consistency: Consistency) -> Result<(), ApiError> {
        if consistency == Consistency::Stale {
            return Ok(());
        }
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.read_timeout();
        match tokio::time::timeout(limit, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ApiError::unavailable(format!("cannot confirm leadership for a linearizable read: {e}"))),
            Err(_) => Err(ApiError::unavailable(format!("leadership not confirmed within {} ms", limit.as_millis()))),
        }
    }
}
