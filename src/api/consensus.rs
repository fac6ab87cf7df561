//! The HTTP API's way through the core (`service::Core`): its read consistency
//! mapped onto the core's reads, and the core's consensus errors onto HTTP. A
//! definite failure (nothing was proposed) is a 503, an unknown outcome a 504.

use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::kv::Consistency;
use crate::service::ConsensusError;

impl From<ConsensusError> for ApiError {
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::UpgradeInProgress { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "upgrade_in_progress", e.to_string()),
            ConsensusError::TokenRequired => ApiError::new(StatusCode::UNAUTHORIZED, "token_required", e.to_string()),
            ConsensusError::TokenRevoked(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string()),
            ConsensusError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            e if e.is_definite() => ApiError::unavailable(e.to_string()),
            e => ApiError::outcome_unknown(e.to_string()),
        }
    }
}

impl AppState {
    /// Before a read at `consistency`: a linearizable one waits until reading local
    /// state here is linearizable (`Core::linearize`); a stale one reads as it is.
    pub async fn read_at(&self, consistency: Consistency) -> Result<(), ApiError> {
        match consistency {
            Consistency::Stale => Ok(()),
            Consistency::Linearizable => Ok(self.core.linearize().await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unknown_outcome_is_a_504() {
        let definite = [
            ConsensusError::NotLeader(2),
            ConsensusError::NoLeader,
            ConsensusError::LeaderUnreachable("connection refused".into()),
            ConsensusError::NoQuorum { silent_ms: 900, limit_ms: 600 },
            ConsensusError::Busy,
            ConsensusError::ClockNotReady,
            ConsensusError::LeaderTakingOver,
            ConsensusError::ReadNotConfirmed("late".into()),
        ];
        for e in definite {
            let message = e.to_string();
            let api = ApiError::from(e);
            assert_eq!((api.status, api.code, api.message), (StatusCode::SERVICE_UNAVAILABLE, "unavailable", message));
        }
        for (e, code) in [(ConsensusError::TokenRequired, "token_required"), (ConsensusError::TokenRevoked(7), "invalid_token")] {
            let refused = ApiError::from(e);
            assert_eq!((refused.status, refused.code), (StatusCode::UNAUTHORIZED, code), "the leader's token check is the same 401");
        }
        let upgrading = ApiError::from(ConsensusError::UpgradeInProgress { node: 3, spoken: 1 });
        assert_eq!((upgrading.status, upgrading.code), (StatusCode::SERVICE_UNAVAILABLE, "upgrade_in_progress"));
        let unknown = ApiError::from(ConsensusError::OutcomeUnknown("proposed, then silence".into()));
        assert_eq!((unknown.status, unknown.code), (StatusCode::GATEWAY_TIMEOUT, "outcome_unknown"));
    }
}
