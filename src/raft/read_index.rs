//! Batched ReadIndex: concurrent linearizable reads share one leadership check.
//!
//! openraft's `ensure_linearizable` confirms leadership with a round of heartbeats to
//! every voter on each call, so 64 concurrent readers cost two peer RPCs per read.
//! `ReadIndex` runs one confirmation at a time, for all the reads that were waiting
//! when it began, and gives each of them the read index: the commit index the leader
//! held when that confirmation started. Each read then waits until this node has
//! applied that index and reads its local state.
//!
//! Why this stays linearizable: a read that arrives while a confirmation is in flight
//! does not join it. That confirmation's read index may predate a write acknowledged
//! before the read arrived. The read waits for the next confirmation, which starts
//! after it did. A confirmation that fails or times out fails every read of its batch.
//!
//! Bounds: at most `waiters_max` reads wait (the next one is refused at once), and a
//! confirmation is abandoned after `timeout`.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Raft;

/// What a confirmation gives each read of its batch: the log index the read must see
/// applied (`None`: nothing committed yet), or why leadership was not confirmed.
pub type Confirmation = Result<Option<u64>, String>;

/// The handle reads use; cheap to clone. The confirming task ends with the last clone.
#[derive(Clone)]
pub struct ReadIndex {
    waiting: mpsc::Sender<oneshot::Sender<Confirmation>>,
}

impl ReadIndex {
    pub fn spawn(raft: Raft, waiters_max: usize, timeout: Duration) -> Self {
        let (waiting, requests) = mpsc::channel(waiters_max.max(1));
        tokio::spawn(confirm_batches(raft, requests, timeout));
        Self { waiting }
    }

    /// The read index for a read that began before this call: after a confirmation
    /// that started after this call did.
    pub async fn confirm(&self) -> Confirmation {
        let (answer, answered) = oneshot::channel();
        self.waiting.try_send(answer).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "too many linearizable reads are waiting for a leadership check".to_string(),
            mpsc::error::TrySendError::Closed(_) => "this node is shutting down".to_string(),
        })?;
        answered.await.map_err(|_| "this node is shutting down".to_string())?
    }
}

async fn confirm_batches(raft: Raft, mut requests: mpsc::Receiver<oneshot::Sender<Confirmation>>, timeout: Duration) {
    let mut batch = Vec::new();
    // Every waiter queued by now arrived before this confirmation starts.
    while requests.recv_many(&mut batch, usize::MAX).await > 0 {
        let confirmation = match tokio::time::timeout(timeout, raft.get_read_log_id()).await {
            Ok(Ok((read_log_id, _applied))) => Ok(read_log_id.map(|id| id.index)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("leadership not confirmed within {} ms", timeout.as_millis())),
        };
        for waiter in batch.drain(..) {
            // A waiter that gave up (its request timed out or was cancelled) is gone.
            let _ = waiter.send(confirmation.clone());
        }
    }
}
