//! Blocking queries (Consul's): `?index=R&wait_ms=W` on a read.
//!
//! The read waits until the state it reports has moved past `R` (the cluster revision
//! for keys and listings, the epoch for a ring, the applied index for a lock), or
//! until `W` ms have passed (at most `Limits::wait_ms_max`; that bound when `W` is
//! omitted), and then answers as usual, with the current index to pass next time.
//! It may answer early (a revision moves with any key), never late. The wait watches
//! the entries this node applies; a linearizable read then confirms leadership as
//! usual before it reads.

use std::time::Duration;

use serde::Deserialize;

use super::AppState;
use super::kv::Consistency;
use super::error::ApiError;
use crate::state::StateReader;
use crate::state::store::ViewError;

/// The query of a read that can block: `consistency`, `index`, `wait_ms`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BlockingReadQuery {
    #[serde(default)]
    pub consistency: Consistency,
    /// Wait until the read's index is past this.
    pub index: Option<u64>,
    pub wait_ms: Option<u64>,
}

/// Waits until `position(reader)` exceeds `index`, or the wait runs out.
pub async fn wait_past(
    app: &AppState,
    index: Option<u64>,
    wait_ms: Option<u64>,
    position: impl Fn(&StateReader) -> Result<u64, ViewError>,
) -> Result<(), ApiError> {
    let max = app.limits.wait_ms_max;
    let wait_ms = wait_ms.unwrap_or(max);
    if wait_ms > max {
        return Err(ApiError::bad_request("invalid_wait", format!("wait_ms must be at most {max}, got {wait_ms}")));
    }
    let Some(index) = index else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut applied = app.raft.metrics();
    while position(&app.reader)? <= index {
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return Ok(()) },
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
        }
    }
    Ok(())
}
