//! Consul's blocking queries on keys: a read with `?index=N` waits until a key it asks
//! for (one key, or every key under a prefix) has changed after `N`, or until `?wait=`
//! has passed, and then answers as usual with the index to pass next time.
//!
//! Indexes are cluster revisions, and a change is an event of the key history (the
//! same one `GET /v1/watch` follows), so a write to another key does not wake the
//! query, as it would if it waited for the revision to move; and a query that ends
//! at its wait answers the index it was given, so the index moves only when what it
//! answers may have. The wait follows the
//! entries this node applies; the read after it is linearizable as any other.
//!
//! `wait` defaults to Consul's 5 minutes and is capped by `Limits::wait_ms_max`, so
//! an answer may come sooner than asked, never later: a client asks again with the
//! index it got, as Consul's clients do. An index the history no longer reaches, or
//! one past the current revision (from another cluster), is answered at once.

use std::time::Duration;

use super::query::Flags;
use crate::api::AppState;
use crate::api::error::ApiError;

/// How long a blocking query waits when it names no `wait` (Consul's default).
const WAIT_DEFAULT: Duration = Duration::from_secs(300);
/// Events read per page of the history while looking for a change.
const EVENTS_PER_PAGE: usize = 256;
/// Pages read per look, so one look is bounded work; the next look goes on from there.
const PAGES_PER_LOOK: usize = 16;

/// What a blocking read watches.
#[derive(Clone, Copy)]
pub enum Watched<'a> {
    Key(&'a str),
    Prefix(&'a str),
}

impl Watched<'_> {
    fn covers(&self, key: &str) -> bool {
        match self {
            Watched::Key(watched) => key == *watched,
            Watched::Prefix(prefix) => key.starts_with(prefix),
        }
    }

    fn prefix(&self) -> &str {
        match self {
            Watched::Key(key) | Watched::Prefix(key) => key,
        }
    }
}

/// The `index` and `wait` of a query, if it blocks (an index of 0 does not).
pub fn requested(app: &AppState, flags: &Flags) -> Result<Option<(u64, Duration)>, ApiError> {
    let Some(index) = flags.number("index")?.filter(|index| *index > 0) else { return Ok(None) };
    let cap = Duration::from_millis(app.limits.wait_ms_max);
    Ok(Some((index, flags.duration("wait")?.unwrap_or(WAIT_DEFAULT).min(cap))))
}

/// Waits until `watched` changed after revision `index`, or `wait` passed; whether it
/// changed (if not, the answer keeps `index`, as Consul's does).
pub async fn wait_for_change(app: &AppState, watched: Watched<'_>, index: u64, wait: Duration) -> Result<bool, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut applied = app.raft.metrics();
    let mut from = index + 1;
    loop {
        if changed(app, watched, &mut from)? {
            return Ok(true);
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return Ok(false) },
            _ = tokio::time::sleep_until(deadline) => return Ok(false),
        }
    }
}

/// Whether the history from revision `from` holds a change of `watched`; `from` moves
/// past what was read.
fn changed(app: &AppState, watched: Watched<'_>, from: &mut u64) -> Result<bool, ApiError> {
    for _ in 0..PAGES_PER_LOOK {
        let read = app.reader.history(watched.prefix(), *from, EVENTS_PER_PAGE)?;
        if *from > read.revision + 1 {
            // An index from the future (another cluster's): the client must start over.
            return Ok(true);
        }
        match read.value {
            // The history no longer reaches back there: what changed cannot be told.
            Err(_first_held) => return Ok(true),
            Ok((events, _)) if events.iter().any(|event| watched.covers(&event.key)) => return Ok(true),
            Ok((_, next)) if next > read.revision => {
                *from = next;
                return Ok(false);
            }
            Ok((_, next)) => *from = next,
        }
    }
    Ok(false)
}
