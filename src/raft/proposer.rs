//! Proposal batching: concurrent key-value writes share one Raft entry.
//!
//! openraft 0.9 appends each `client_write` as an entry of its own and waits for that
//! entry's fsync before it takes the next one (`RaftCore::append_to_log`), so a leader
//! writes at most one entry per fsync, however the log store syncs. The proposer turns
//! the puts and deletes waiting at one moment into one `Command::Batch` entry: one
//! fsync, one replication and one apply for all of them, each applied in order with
//! its own idempotency key and its own outcome.
//!
//! How batches form: at most `PROPOSALS_IN_FLIGHT` entries are in Raft at a time.
//! Writes that arrive meanwhile wait, and the next entry takes all of them, up to
//! `BATCH_WRITES_MAX` writes and `batch_bytes_max` bytes. A lone write goes at once,
//! as itself, so an idle cluster answers as fast as without batching. A waiter whose
//! request already gave up (its handler answered 504) is left out, never proposed.
//!
//! Only batchable commands come here (`Command::is_batchable`): puts and deletes,
//! whose outcome does not depend on the entry's log index.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::Raft;
use crate::state::command::{Command, Outcome, Request, Response};
use crate::state::kv::KvCommand;

/// Entries proposed and not yet answered, at most.
const PROPOSALS_IN_FLIGHT: usize = 4;
/// Writes in one entry, at most.
const BATCH_WRITES_MAX: usize = 1024;
/// Counted per write on top of its key and value (encoding, idempotency key).
const WRITE_OVERHEAD_BYTES: usize = 256;

/// Why a proposed write has no outcome. All but `Busy` may have applied.
#[derive(Clone, Debug)]
pub enum ProposeError {
    /// Nothing was proposed: too many writes are waiting.
    Busy,
    /// Leadership changed while the entry was in flight.
    LeaderChanged,
    /// The entry was not answered in time, or openraft failed after proposing it.
    Failed(String),
}

type Waiter = (Request, oneshot::Sender<Result<Response, ProposeError>>);

/// The handle writes use; cheap to clone. The batching task ends with the last clone.
#[derive(Clone)]
pub struct Proposer {
    waiting: mpsc::Sender<Waiter>,
}

impl Proposer {
    /// `waiters_max` bounds the writes waiting for an entry; `batch_bytes_max` the
    /// size of one entry (the peer transport must carry a batch of them);
    /// `entry_timeout` how long an entry may take before its permit is freed.
    pub fn spawn(raft: Raft, waiters_max: usize, batch_bytes_max: usize, entry_timeout: Duration) -> Self {
        let (waiting, queue) = mpsc::channel(waiters_max.max(1));
        tokio::spawn(propose_batches(raft, queue, batch_bytes_max, entry_timeout));
        Self { waiting }
    }

    /// Proposes `request` (batchable) in the next entry and waits for its outcome.
    pub async fn propose(&self, request: Request) -> Result<Response, ProposeError> {
        debug_assert!(request.command.is_batchable());
        let (answer, answered) = oneshot::channel();
        self.waiting.try_send((request, answer)).map_err(|_| ProposeError::Busy)?;
        answered.await.map_err(|_| ProposeError::Failed("the node stopped while the write was in flight".into()))?
    }
}

fn write_bytes(request: &Request) -> usize {
    let payload = match &request.command {
        Command::Kv(KvCommand::Put { key, value, .. }) => key.len() + value.len(),
        Command::Kv(KvCommand::Delete { key, .. }) => key.len(),
        _ => 0,
    };
    payload + request.idempotency_key.as_ref().map_or(0, String::len) + WRITE_OVERHEAD_BYTES
}

async fn propose_batches(raft: Raft, mut queue: mpsc::Receiver<Waiter>, batch_bytes_max: usize, entry_timeout: Duration) {
    let in_flight = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT));
    // The write that did not fit the previous entry opens the next one.
    let mut carried: Option<Waiter> = None;
    loop {
        // Waiting for a permit first is what lets writes gather into one entry.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let first = match carried.take() {
            Some(waiter) => waiter,
            None => match queue.recv().await {
                Some(waiter) => waiter,
                None => return,
            },
        };
        let mut bytes = write_bytes(&first.0);
        let mut batch = vec![first];
        while batch.len() < BATCH_WRITES_MAX {
            let Ok(waiter) = queue.try_recv() else { break };
            let size = write_bytes(&waiter.0);
            if bytes + size > batch_bytes_max {
                carried = Some(waiter);
                break;
            }
            bytes += size;
            batch.push(waiter);
        }
        batch.retain(|(_, answer)| !answer.is_closed());
        if !batch.is_empty() {
            tokio::spawn(propose_entry(raft.clone(), batch, permit, entry_timeout));
        }
    }
}

/// Proposes one entry for `batch` and answers each waiter; the permit goes with it.
async fn propose_entry(raft: Raft, mut batch: Vec<Waiter>, _permit: OwnedSemaphorePermit, entry_timeout: Duration) {
    if batch.len() == 1 {
        if let Some((request, answer)) = batch.pop() {
            let _ = answer.send(client_write(&raft, request, entry_timeout).await);
        }
        return;
    }
    let (requests, answers): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
    let entry = Request::from(Command::Batch(requests));
    match client_write(&raft, entry, entry_timeout).await {
        Ok(Response { outcome: Outcome::Batch(responses), .. }) if responses.len() == answers.len() => {
            for (answer, response) in answers.into_iter().zip(responses) {
                let _ = answer.send(Ok(response));
            }
        }
        Ok(other) => {
            let failure = ProposeError::Failed(format!("a batch was answered with {:?}", other.outcome));
            answers.into_iter().for_each(|answer| drop(answer.send(Err(failure.clone()))));
        }
        Err(failure) => answers.into_iter().for_each(|answer| drop(answer.send(Err(failure.clone())))),
    }
}

/// Proposes `request` as an entry of its own (as every unbatchable write is).
pub async fn client_write(raft: &Raft, request: Request, timeout: Duration) -> Result<Response, ProposeError> {
    match tokio::time::timeout(timeout, raft.client_write(request)).await {
        Ok(Ok(written)) => Ok(written.data),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(ProposeError::LeaderChanged),
        Ok(Err(e)) => Err(ProposeError::Failed(e.to_string())),
        Err(_) => Err(ProposeError::Failed(format!("not committed within {} ms", timeout.as_millis()))),
    }
}
