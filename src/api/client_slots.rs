//! Per-client bounds: how much of a node one client address may hold at once.
//!
//! `concurrent_requests_max` and `streams_max` bound a node as a whole; without a
//! share per client, one client holding thousands of long polls or streams leaves
//! nothing for the others. A `ClientSlots` counts what each address holds and refuses
//! more than its `max` (`429 client_limit`): requests in progress (every long poll is
//! one: lock acquires waiting in line, queue receives and blocking reads) and open
//! streams, each with its own bound.
//!
//! The client is the address of the connection (what a follower sends the leader goes
//! over the peer transport, and is bounded there). Entries exist only while an address
//! holds something, so the table is no larger than the node's own bound on what is
//! held.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::error::ApiError;

/// What each client address holds of one kind, bounded by `max`.
#[derive(Debug)]
pub struct ClientSlots {
    max: usize,
    /// `requests` or `streams`, for the refusal's message.
    what: &'static str,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot held by a client; given back when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    pub fn new(max: usize, what: &'static str) -> Arc<Self> {
        Arc::new(Self { max, what, held: Mutex::new(HashMap::new()) })
    }

    /// A slot for `client`, or `429 client_limit` if it holds `max` already.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Result<ClientSlot, ApiError> {
        // A poisoned lock only means a panic elsewhere mid-update of a counter: go on.
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = held.entry(client).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "client_limit",
                format!("{client} already holds this node's per-client maximum of {} {}; finish some first", self.max, self.what),
            ));
        }
        *count += 1;
        Ok(ClientSlot { slots: self.clone(), client })
    }

    /// How many slots `client` holds.
    #[cfg(test)]
    fn held_by(&self, client: IpAddr) -> usize {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&client).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_own_bound_and_slots_come_back() {
        let slots = ClientSlots::new(2, "requests");
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        let refused = slots.take(a).unwrap_err();
        assert_eq!((refused.status, refused.code), (StatusCode::TOO_MANY_REQUESTS, "client_limit"));
        let _other = slots.take(b).expect("another client is not held back");
        drop(first);
        assert_eq!(slots.held_by(a), 1);
        let _again = slots.take(a).expect("a slot given back can be taken again");
        drop(_again);
        drop(_second);
        assert_eq!(slots.held_by(a), 0);
        assert!(!slots.held.lock().unwrap().contains_key(&a), "an address holding nothing has no entry");
    }
}
