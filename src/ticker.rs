//! The leader's ticker: proposes the `Tick` entries that advance the replicated clock.
//!
//! Only the leader ticks, and it advances the clock by what its own monotonic clock
//! measured since its previous tick, or since it became leader: so the replicated
//! clock pauses during elections and never runs faster than real time (see
//! `state::lease`). Two rules keep that true:
//! - time is counted as spent *before* a tick is proposed, so a tick whose outcome is
//!   unknown (it may still commit) is never covered again by the next one: losing
//!   time only slows the clock, which is safe; counting it twice would not be;
//! - a new term starts measuring afresh.
//!
//! Ticks cost log entries, so there are none while nothing has a deadline (an idle
//! cluster writes nothing); with deadlines pending, the ticker ticks when the next one
//! falls due and at least every `TICK_INTERVAL_MAX`, so remaining TTLs read fresh.

use std::time::Duration;

use openraft::ServerState;
use tokio::time::Instant;

use crate::raft::Raft;
use crate::state::StateReader;
use crate::state::command::{Command, Request};

/// Longest gap between ticks while any deadline is pending.
const TICK_INTERVAL_MAX: Duration = Duration::from_secs(1);
/// How long one tick may take to commit before the ticker moves on.
const TICK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the ticker looks for new deadlines when none is pending (it also wakes
/// whenever Raft's metrics change, e.g. on every applied entry).
const IDLE_CHECK: Duration = Duration::from_millis(200);

pub fn spawn(raft: Raft, reader: StateReader) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(raft, reader))
}

async fn run(raft: Raft, reader: StateReader) {
    let mut metrics = raft.metrics();
    loop {
        let term = {
            let now = metrics.borrow_and_update();
            (now.state == ServerState::Leader).then_some(now.current_term)
        };
        let Some(term) = term else {
            if metrics.changed().await.is_err() {
                return; // Raft stopped.
            }
            continue;
        };
        lead(&raft, &reader, &mut metrics, term).await;
        if metrics.has_changed().is_err() {
            return;
        }
        // Leadership changed or a tick failed: pause before looking again.
        tokio::time::sleep(IDLE_CHECK).await;
    }
}

/// Ticks while this node leads `term`.
async fn lead(raft: &Raft, reader: &StateReader, metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::raft::Node>>, term: u64) {
    // Time is measured from the moment this node took over.
    let mut last_tick = Instant::now();
    loop {
        {
            let now = metrics.borrow_and_update();
            if now.state != ServerState::Leader || now.current_term != term {
                return;
            }
        }
        let next = match reader.next_deadline() {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "ticker cannot read the next deadline");
                tokio::time::sleep(IDLE_CHECK).await;
                continue;
            }
        };
        let Some(deadline_ms) = next.value else {
            // Nothing is waiting for time: no tick, look again on change or soon.
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(IDLE_CHECK) => {}
            }
            continue;
        };
        let untick_ms = u64::try_from(last_tick.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due_in = Duration::from_millis(deadline_ms.saturating_sub(next.clock_ms.saturating_add(untick_ms)));
        let wait = due_in.min(TICK_INTERVAL_MAX.saturating_sub(last_tick.elapsed()));
        if !wait.is_zero() {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // Count the time as spent before proposing (see the module doc).
        let advance_ms = u64::try_from(last_tick.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_tick += Duration::from_millis(advance_ms);
        let tick = Request { idempotency_key: None, command: Command::Tick { advance_ms } };
        match tokio::time::timeout(TICK_TIMEOUT, raft.client_write(tick)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "tick not committed");
                return;
            }
            Err(_) => tracing::warn!("a tick did not commit within {TICK_TIMEOUT:?}"),
        }
    }
}
