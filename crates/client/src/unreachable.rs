//! Why endpoints could not be reached, said the way a person reads it.
//!
//! reqwest's own text for a refused connection is `error sending request for url
//! (...)`: the cause (refused, timed out, no such host) sits several `source()`s
//! deep. Someone whose node is down needs to read which endpoints were tried and why
//! each failed (`http_client::failure_reason`), so a call that reached no node
//! reports exactly that, and a client that is told to (`Client::unreachable_rounds_max`)
//! gives up after a few rounds of failed connects instead of retrying until its
//! deadline.

/// Per endpoint, why the last connect to it failed (`None` once a connection to it
/// was made), and how many connects in a row failed.
pub(super) struct Unreachable {
    reasons: Vec<Option<String>>,
    failed_in_a_row: usize,
}

impl Unreachable {
    pub(super) fn new(endpoints: usize) -> Self {
        Self { reasons: vec![None; endpoints], failed_in_a_row: 0 }
    }

    /// A request to `endpoint` (at `url`) failed with `e`: records a failed connect
    /// (or that the connection was made) and returns the error, saying why.
    pub(super) fn send_failed(&mut self, endpoint: usize, url: &str, e: &reqwest::Error) -> super::ClientError {
        let reason = crate::http_client::failure_reason(e, super::CONNECT_TIMEOUT);
        if e.is_connect() {
            self.reasons[endpoint] = Some(reason.clone());
            self.failed_in_a_row += 1;
        } else {
            self.reached(endpoint);
        }
        super::ClientError::Transport(format!("{url}: {reason}"))
    }

    /// A connection to `endpoint` was made (whatever became of the request).
    pub(super) fn reached(&mut self, endpoint: usize) {
        self.reasons[endpoint] = None;
        self.failed_in_a_row = 0;
    }

    /// True once every endpoint failed to connect `rounds` times in a row.
    pub(super) fn gave_every_endpoint(&self, rounds: u32) -> bool {
        self.failed_in_a_row >= self.reasons.len() * rounds as usize
    }

    /// A transport `error` as "no node could be reached; tried http://a: connection
    /// refused; http://b: ..." when no endpoint could be connected to; any other
    /// error as it is.
    pub(super) fn explain(&self, error: super::ClientError, endpoints: &[String]) -> super::ClientError {
        let reasons: Option<Vec<String>> =
            self.reasons.iter().zip(endpoints).map(|(reason, endpoint)| reason.as_ref().map(|r| format!("{endpoint}: {r}"))).collect();
        match (error, reasons) {
            (super::ClientError::Transport(_), Some(reasons)) => {
                super::ClientError::Transport(format!("no node could be reached; tried {}", reasons.join("; ")))
            }
            (error, _) => error,
        }
    }
}
