//! Concord's failures in Redis's error classes, so a Redis client raises what its
//! users already handle: the first word of an error reply is its class.
//!
//! - `TRYAGAIN`: nothing was done (no leader, no quorum, busy, a leader taking over);
//!   retrying is safe. redis-py raises `TryAgainError`.
//! - `UNCERTAIN`: a write was proposed and no answer came; it may or may not apply.
//!   Redis has no such class (a lost connection is its nearest), so clients raise
//!   their generic `ResponseError` and the word tells a program what it means.
//! - `NOAUTH` / `WRONGPASS` / `NOPERM`: no token, a bad token, a token that does not
//!   cover the command.
//! - `ERR`: anything else (bad input, a refusal of the state machine).

use super::reply::Reply;
use crate::service::ConsensusError;
use crate::state::command::{Outcome, Rejection};
use crate::state::kv::KvRejection;
use crate::state::store::ViewError;
use crate::state::txn::TxnRejection;

/// The reply to a command the core could not carry out.
pub fn consensus(error: ConsensusError) -> Reply {
    match error {
        ConsensusError::Forbidden(why) => Reply::Error(format!("NOPERM {why}")),
        ConsensusError::TokenRequired => Reply::Error("NOAUTH Authentication required.".into()),
        ConsensusError::TokenRevoked(id) => Reply::Error(format!("NOAUTH token {id} was revoked; AUTH with another token")),
        ConsensusError::OutcomeUnknown(why) => Reply::Error(format!("UNCERTAIN the write may or may not have been applied: {why}")),
        other => Reply::Error(format!("TRYAGAIN {other}")),
    }
}

/// The reply to a read of this node's state that failed.
pub fn view(error: ViewError) -> Reply {
    match error {
        ViewError::Installing => Reply::Error("TRYAGAIN this node is installing a snapshot; retry".into()),
        other => Reply::err(format!("cannot read this node's state: {other}")),
    }
}

/// The reply to a refusal of the state machine this door does not turn into a
/// command's own answer.
pub fn rejection(rejection: Rejection) -> Reply {
    match rejection {
        Rejection::Kv(KvRejection::NotFound { key }) => Reply::err(format!("no such key {key:?}")),
        Rejection::Txn(TxnRejection::Invalid { reason }) => {
            Reply::err(format!("this command or transaction is over what one atomic step of Concord's takes ({reason}); nothing was changed"))
        }
        other => Reply::err(format!("the command was refused: {other:?}")),
    }
}

/// The reply to an outcome a write does not expect: a refusal, or a bug.
pub fn unexpected(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Rejected(refused) => rejection(refused),
        other => Reply::err(format!("the write produced an unexpected outcome ({other:?}); a bug of Concord's")),
    }
}

/// The reply to an argument that is not a Concord key.
pub fn not_a_key(why: impl std::fmt::Display) -> Reply {
    Reply::err(format!("invalid key: {why}"))
}
