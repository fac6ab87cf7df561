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
use super::error::ApiError;
use super::kv::Consistency;
use crate::state::StateReader;
use crate::state::store::ViewError;

/// The query of a read that can block: `consistency`, `index`, `wait_ms`.
#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BlockingReadQuery {
    #[serde(default)]
    #[param(inline)]
    pub consistency: Consistency,
    /// Wait until the read's index is past this.
    pub index: Option<u64>,
    pub wait_ms: Option<u64>,
}

/// Checks a requested wait against `Limits::wait_ms_max`; no request means that bound.
pub fn wait_bound(app: &AppState, wait_ms: Option<u64>) -> Result<Duration, ApiError> {
    let max = app.limits.wait_ms_max;
    let wait_ms = wait_ms.unwrap_or(max);
    if wait_ms > max {
        return Err(ApiError::bad_request("invalid_wait", format!("wait_ms must be at most {max}, got {wait_ms}")));
    }
    Ok(Duration::from_millis(wait_ms))
}

/// Waits, watching the entries this node applies, until `ready(reader)` holds or
/// `wait` runs out; says whether it held.
pub async fn wait_until(app: &AppState, wait: Duration, ready: impl Fn(&StateReader) -> Result<bool, ViewError>) -> Result<bool, ViewError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut applied = app.raft.metrics();
    loop {
        if ready(&app.reader)? {
            return Ok(true);
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return Ok(false) },
            _ = tokio::time::sleep_until(deadline) => return Ok(false),
        }
    }
}

/// Waits until `position(reader)` exceeds `index`, or the wait runs out.
pub async fn wait_past(
    app: &AppState,
    index: Option<u64>,
    wait_ms: Option<u64>,
    position: impl Fn(&StateReader) -> Result<u64, ViewError>,
) -> Result<(), ApiError> {
    let wait = wait_bound(app, wait_ms)?;
    if let Some(index) = index {
        wait_until(app, wait, |reader| Ok(position(reader)? > index)).await?;
    }
    Ok(())
}
