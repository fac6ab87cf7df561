//! How much a RocksDB database's write-ahead log holds, for the tests that bound it:
//! the state database's (here) and the log database's (in the server). Test support,
//! public so the server's tests can share it.

use std::path::Path;

/// Bytes in the live WAL files (`*.log`) of the database in `dir`.
pub fn wal_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
        .map(|entry| entry.metadata().map_or(0, |meta| meta.len()))
        .sum()
}

/// Asserts that the WAL in `dir` comes down to `bound` bytes. Flushes and WAL
/// deletion run in the background: this waits for them, for at most 30 s.
pub fn assert_wal_shrinks_to(dir: &Path, bound: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wal_bytes(dir) > bound && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(wal_bytes(dir) <= bound, "the WAL holds {} bytes, over {bound}", wal_bytes(dir));
}
