//! The leader's ticker: proposes the `Tick` entries that advance the replicated clock,
//! and keeps the leader's reading of that clock (`LeaderClock`) for stamping leases.
//!
//! Only the leader ticks, and it advances the clock by what its own monotonic clock
//! measured since its previous tick, or since it took over: so the replicated clock
//! pauses during elections and never runs faster than real time (see `state::lease`).
//! Three rules keep that true:
//! - time is counted as spent *before* a tick is proposed, so a tick whose outcome is
//!   unknown (it may still commit) is never covered again by the next one: losing
//!   time only slows the clock, which is safe; counting it twice would not be;
//! - a new leader starts measuring when it takes over, from the clock value it has
//!   after applying everything earlier terms committed (`ensure_linearizable`);
//! - `LeaderClock::fresh_now_ms` (ticks proposed plus time since the last one, ticking
//!   first if the last tick is over a second old) is what grants and keep-alives are
//!   stamped with, so time not yet ticked still counts for them, and a stamp is never
//!   far ahead of the clock a next leader would continue from.
//!
//! Deadlines are lease expiries, key expiries and queue timers (in-flight and delayed
//! messages).
//! Ticks cost log entries, so there are none while nothing has a deadline (an idle
//! cluster writes nothing); with deadlines pending, the ticker ticks when the next one
//! falls due and at least every `TICK_INTERVAL_MAX`, so remaining TTLs read fresh.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{RaftMetrics, ServerState};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::raft::{Node, NodeId, Raft};
use crate::state::StateReader;
use crate::state::command::{Command, Request};

/// Longest gap between ticks while any deadline is pending.
const TICK_INTERVAL_MAX: Duration = Duration::from_secs(1);
/// How long one tick, or taking over the clock, may take before the ticker moves on.
const TICK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the ticker looks for new deadlines when none is pending (it also wakes
/// whenever Raft's metrics change, e.g. on every applied entry).
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// The leader's reading of the replicated clock; empty on other nodes.
#[derive(Default)]
pub struct LeaderClock {
    reading: Mutex<Option<Reading>>,
}

#[derive(Clone, Copy)]
struct Reading {
    /// The clock value once every tick proposed so far has committed.
    ticked_ms: u64,
    /// When the time counted in `ticked_ms` ends.
    last_tick: Instant,
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl LeaderClock {
    fn set(&self, reading: Option<Reading>) {
        *self.reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = reading;
    }

    fn reading(&self) -> Option<Reading> {
        *self.reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The replicated time now, as this leader will tick it; `None` unless this node
    /// leads and has taken over the clock.
    pub fn now_ms(&self) -> Option<u64> {
        self.reading().map(|r| r.ticked_ms.saturating_add(elapsed_ms(r.last_tick)))
    }

    /// The replicated time now, for stamping a grant or keep-alive, after making sure
    /// the stamp is at most `TICK_INTERVAL_MAX` ahead of what the log has (ticking
    /// first if needed). Otherwise a grant stamped after a long idle stretch could
    /// commit while the tick covering that stretch did not (the leader dies between
    /// them), and the next leader's clock would leave the lease that much longer.
    /// The tick is proposed before the caller's entry, so the log orders them.
    pub async fn fresh_now_ms(&self, raft: &Raft) -> Option<u64> {
        let stale = self.reading().is_some_and(|r| r.last_tick.elapsed() > TICK_INTERVAL_MAX);
        if stale && !matches!(propose_tick(raft, self).await, Ok(true)) {
            return None;
        }
        self.now_ms()
    }

    /// Counts the time since the last tick as spent and returns it (the next tick's advance).
    fn take_advance(&self) -> Option<u64> {
        let mut guard = self.reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let reading = guard.as_mut()?;
        let advance_ms = elapsed_ms(reading.last_tick);
        reading.ticked_ms = reading.ticked_ms.saturating_add(advance_ms);
        reading.last_tick += Duration::from_millis(advance_ms);
        Some(advance_ms)
    }
}

/// Counts the time since the last tick as spent (see the module doc) and proposes a
/// tick advancing the clock by it. `Ok(true)`: committed; `Ok(false)`: no answer within
/// `TICK_TIMEOUT` (it may still commit); `Err`: refused (not the leader).
async fn propose_tick(raft: &Raft, clock: &LeaderClock) -> Result<bool, String> {
    let advance_ms = clock.take_advance().ok_or("this node does not hold the clock")?;
    let tick = Request::from(Command::Tick { advance_ms });
    match tokio::time::timeout(TICK_TIMEOUT, raft.client_write(tick)).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            tracing::warn!("a tick did not commit within {TICK_TIMEOUT:?}");
            Ok(false)
        }
    }
}

pub fn spawn(raft: Raft, reader: StateReader, clock: Arc<LeaderClock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(raft, reader, clock))
}

type Metrics = watch::Receiver<RaftMetrics<NodeId, Node>>;

async fn run(raft: Raft, reader: StateReader, clock: Arc<LeaderClock>) {
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
        lead(&raft, &reader, &clock, &mut metrics, term).await;
        clock.set(None);
        if metrics.has_changed().is_err() {
            return;
        }
        // Leadership changed or a tick failed: pause before looking again.
        tokio::time::sleep(IDLE_CHECK).await;
    }
}

fn still_leads(metrics: &mut Metrics, term: u64) -> bool {
    let now = metrics.borrow_and_update();
    now.state == ServerState::Leader && now.current_term == term
}

/// Keeps the clock while this node leads `term`.
async fn lead(raft: &Raft, reader: &StateReader, clock: &LeaderClock, metrics: &mut Metrics, term: u64) {
    // Time is measured from the moment this node took over, on top of every tick the
    // earlier terms committed, which are applied here once this returns.
    let took_over = Instant::now();
    if !matches!(tokio::time::timeout(TICK_TIMEOUT, raft.ensure_linearizable()).await, Ok(Ok(_))) {
        return;
    }
    let Ok(position) = reader.position() else {
        return;
    };
    clock.set(Some(Reading { ticked_ms: position.clock_ms, last_tick: took_over }));
    loop {
        if !still_leads(metrics, term) {
            return;
        }
        let next = match reader.next_deadline() {
            Ok(next) => next.value,
            Err(e) => {
                tracing::warn!(error = %e, "ticker cannot read the next deadline");
                tokio::time::sleep(IDLE_CHECK).await;
                continue;
            }
        };
        let (Some(deadline_ms), Some(reading)) = (next, clock.reading()) else {
            // Nothing is waiting for time: no tick, look again on change or soon.
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(IDLE_CHECK) => {}
            }
            continue;
        };
        let now_ms = reading.ticked_ms.saturating_add(elapsed_ms(reading.last_tick));
        let until_interval = TICK_INTERVAL_MAX.saturating_sub(reading.last_tick.elapsed());
        let wait = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).min(until_interval);
        if !wait.is_zero() {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        if let Err(e) = propose_tick(raft, clock).await {
            tracing::debug!(error = %e, "tick not committed");
            return;
        }
    }
}
