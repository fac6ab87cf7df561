//! Turns for the keys a write names, on this node: commands of this node's clients
//! that write the same key wait for each other instead of racing.
//!
//! A command on keys commits on the condition that the keys it read have not moved
//! (`keyspace`). Two clients incrementing one counter at once would each read the same
//! value, one would commit, and the other would run again; 64 of them would mostly run
//! again. Taking the keys' turns first (in key order, so two commands never wait for
//! each other in a circle) serializes this node's writers of a key, and leaves
//! conflicts only between nodes. Reads take no turn.
//!
//! The table keeps an entry only while someone may hold it: once it holds more than
//! `ENTRIES_KEPT`, entries nobody holds are dropped as new ones come.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Entries kept before the ones nobody holds are swept.
const ENTRIES_KEPT: usize = 4096;

#[derive(Default)]
pub struct KeyLocks {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turns of a command's keys, held until dropped.
pub struct Turns {
    _held: Vec<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for the turn of every key in `keys` (in their order).
    pub async fn take(&self, keys: &BTreeSet<String>) -> Turns {
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            let turn = {
                // A poisoned table only means a panic elsewhere mid-insert: go on.
                let mut turns = self.turns.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if turns.len() >= ENTRIES_KEPT {
                    turns.retain(|_, turn| Arc::strong_count(turn) > 1);
                }
                turns.entry(key.clone()).or_default().clone()
            };
            held.push(turn.lock_owned().await);
        }
        Turns { _held: held }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_has_one_holder_at_a_time_and_other_keys_do_not_wait() {
        let locks = Arc::new(KeyLocks::default());
        let keys = |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<BTreeSet<String>>();
        let held = locks.take(&keys(&["a", "b"])).await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.take(&keys(&["b"])).await }
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), locks.take(&keys(&["c"]))).await.expect("another key does not wait");
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "b is held");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.expect("b is free once dropped").expect("task");
    }
}
