//! The token decision of the request a task serves, and the check of what it asks
//! against that decision, on the typed request (`state::access`).
//!
//! A door authenticates the caller in its own dialect (the HTTP API's `api::access`
//! reads `Authorization: Bearer`) and runs the request's handler inside `decided`,
//! with what it decided: no token is required, or this caller's token passed. What
//! the handler then asks is checked against that decision: `Core::write` checks every
//! command (`Command::access`), `Admin::run` every administration request, and a
//! handler checks a read with `authorize` before it reads anything. So every door
//! enforces the same rules, and none keeps a table of its routes. The decision's
//! token id goes to the leader with what a follower sends it (`service::Authority`),
//! and the leader re-checks it there.
//!
//! `authenticate` is the check of a presented token (`<id>.<secret>`) that every door
//! makes against this node's applied state, once `Core::wait_tokens_decidable` says
//! the state can decide. The secret is compared by its SHA-256, in constant time.
//!
//! `authorize` also records that a check ran: a door that requires tokens does not
//! pass on the success of a handler that checked nothing (`api::access`), so a route
//! that forgets its check fails closed.

use std::cell::Cell;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::raft::peer_auth::constant_time_eq;
use crate::service::{Authority, ConsensusError};
use crate::state::StateReader;
use crate::state::access::{Access, Caller};
use crate::state::store::ViewError;

/// Longest secret part of a presented token (ours are 43 characters).
const SECRET_CHARS_MAX: usize = 256;

/// The SHA-256 of a token's secret, as the state keeps it.
pub fn secret_sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The id and secret of a presented token, `<id>.<secret>`; `None` if it is not one.
pub fn parse_token(presented: &str) -> Option<(u64, &str)> {
    let (id, secret) = presented.trim().split_once('.')?;
    let id = id.parse::<u64>().ok()?;
    (!secret.is_empty() && secret.len() <= SECRET_CHARS_MAX).then_some((id, secret))
}

/// The caller token `id` with `secret` names in this node's applied state; `None`
/// unless the token exists and its secret matches.
pub fn authenticate(reader: &StateReader, id: u64, secret: &str) -> Result<Option<Caller>, ViewError> {
    let record = reader.token(id)?.value;
    // Hash even for an unknown id, so timing does not tell which ids exist.
    let presented = secret_sha256(secret);
    Ok(match record {
        Some(record) if constant_time_eq(&record.secret_sha256, &presented) => {
            Some(Caller { id, name: record.name, role: record.role, prefixes: record.prefixes })
        }
        _ => None,
    })
}

/// What the door decided for the request.
#[derive(Clone, Debug)]
pub enum Decision {
    NoTokenRequired,
    Token(Caller),
}

struct Decided {
    decision: Decision,
    checked: Cell<bool>,
}

tokio::task_local! {
    static DECIDED: Decided;
}

/// Runs `work` (a request's handler) with `decision`; returns its output and whether
/// it checked anything against the decision.
pub async fn decided<F: Future>(decision: Decision, work: F) -> (F::Output, bool) {
    let decided = Decided { decision, checked: Cell::new(false) };
    DECIDED
        .scope(decided, async {
            let output = work.await;
            (output, DECIDED.with(|decided| decided.checked.get()))
        })
        .await
}

/// The token decision this task's request was taken with, as it goes to the leader;
/// with no decision, `NoTokenRequired`, which the leader refuses while it requires
/// tokens (the strictest for it).
pub fn authority() -> Authority {
    DECIDED
        .try_with(|decided| match &decided.decision {
            Decision::NoTokenRequired => Authority::NoTokenRequired,
            Decision::Token(caller) => Authority::Token(caller.id),
        })
        .unwrap_or(Authority::NoTokenRequired)
}

/// Whether this task's request may do what `access` says: yes when no token is
/// required, otherwise when the caller's token covers it (`Forbidden` if not).
/// `access` is built only when there is a token to check it against: most clusters
/// require none, and a write should not pay for naming what it touches.
pub fn authorize(access: impl FnOnce() -> Access) -> Result<(), ConsensusError> {
    DECIDED
        .try_with(|decided| {
            decided.checked.set(true);
            match &decided.decision {
                Decision::NoTokenRequired => Ok(()),
                Decision::Token(caller) => caller.permits(&access()).map_err(ConsensusError::Forbidden),
            }
        })
        .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::auth::Role;

    #[tokio::test]
    async fn a_check_runs_against_the_decision_and_is_recorded() {
        let caller = Caller { id: 3, name: "ci".into(), role: Role::Read, prefixes: vec!["app/".into()] };
        let read_app = Access::name(Role::Read, "key", "app/x");
        let (allowed, checked) = decided(Decision::Token(caller.clone()), async { (authorize(|| read_app.clone()), authority()) }).await;
        assert_eq!((allowed, checked), ((Ok(()), Authority::Token(3)), true));
        let (refused, _) = decided(Decision::Token(caller.clone()), async { authorize(|| Access::name(Role::Write, "key", "app/x")) }).await;
        assert!(matches!(refused, Err(ConsensusError::Forbidden(ref why)) if why.contains("needs write")), "{refused:?}");
        let (nothing, checked) = decided(Decision::Token(caller), async {}).await;
        assert_eq!((nothing, checked), ((), false), "nothing checked is recorded as such");
        let (open, checked) = decided(Decision::NoTokenRequired, async { authorize(|| Access::unnamed(Role::Admin)) }).await;
        assert_eq!((open, checked), (Ok(()), true));
        assert_eq!(authority(), Authority::NoTokenRequired, "outside a request");
    }
}
