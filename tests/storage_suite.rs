//! openraft's own storage test suite, run against Concord's real RocksDB log store and
//! state machine (rung 2 of the testing ladder in DESIGN.md).

use concord::raft::log_store::LogStore;
use concord::raft::{StorageError, TypeConfig};
use concord::state::StateMachine;
use concord::state::idempotency::IdempotencyBounds;
use openraft::StorageIOError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log = LogStore::open(&dir.path().join("log")).map_err(|e| StorageIOError::write(&e))?;
        let machine = StateMachine::open(dir.path(), IdempotencyBounds::default(), concord::state::machine::CACHE_BYTES_DEFAULT)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, machine))
    }
}

#[test]
fn openraft_storage_suite_on_rocksdb() {
    Suite::test_all(RocksBuilder).expect("openraft storage suite");
}
