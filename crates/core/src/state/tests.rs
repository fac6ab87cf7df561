//! Unit tests of the state machine: feed entries, check responses and stored state.

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftSnapshotBuilder};
use tempfile::TempDir;

use super::auth::AuthCommand;
use super::command::{Command, KeyMeta, Outcome, Precondition, Rejection, Request, Response};
use super::expiry::Ttl;
use super::idempotency::IdempotencyBounds;
use super::kv::{self, InvalidInput};
use super::kv::{KvCommand, KvOutcome, KvRejection};
use super::lease::{LeaseCommand, LeaseOutcome, LeaseRejection};
use super::list::{End, ListCommand};
use super::lock::{LockCommand, LockOutcome, LockRejection};
use super::machine::CACHE_BYTES_DEFAULT;
use super::queue::QueueCommand;
use super::ring::{RingCommand, RingOutcome, RingRejection};
use super::store::{Cf, KEY_INSTALLING};
use super::topic::TopicCommand;
use super::{StateMachine, StateReader};
use crate::raft::{Entry, LogId};

pub(super) struct Fixture {
    dir: TempDir,
    machine: StateMachine,
    pub(super) reader: StateReader,
    next_index: u64,
}

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn put(key: &str, value: &str) -> Command {
    Command::Kv(KvCommand::Put { key: key.into(), value: value.as_bytes().to_vec(), precondition: Precondition::None, lease: None, fence: None })
}

fn put_ttl(key: &str, value: &str, ttl: Ttl) -> Command {
    Command::Kv(KvCommand::PutWithTtl { key: key.into(), value: value.as_bytes().to_vec(), precondition: Precondition::None, lease: None, fence: None, ttl })
}

fn put_if(key: &str, value: &str, precondition: Precondition) -> Command {
    Command::Kv(KvCommand::Put { key: key.into(), value: value.as_bytes().to_vec(), precondition, lease: None, fence: None })
}

fn put_leased(key: &str, value: &str, lease: u64) -> Command {
    Command::Kv(KvCommand::Put { key: key.into(), value: value.as_bytes().to_vec(), precondition: Precondition::None, lease: Some(lease), fence: None })
}

fn del(key: &str, precondition: Precondition) -> Command {
    Command::Kv(KvCommand::Delete { key: key.into(), precondition, fence: None })
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::with_bounds(IdempotencyBounds::default())
    }

    fn with_bounds(bounds: IdempotencyBounds) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let machine = StateMachine::open(dir.path(), bounds, CACHE_BYTES_DEFAULT).unwrap();
        let reader = machine.reader();
        Self { dir, machine, reader, next_index: 1 }
    }

    /// The state machine over `dir`, as a node opens it; entries continue after the
    /// last it applied.
    pub(super) async fn open_in(dir: TempDir) -> Self {
        let machine = StateMachine::open(dir.path(), IdempotencyBounds::default(), CACHE_BYTES_DEFAULT).unwrap();
        let reader = machine.reader();
        let mut fixture = Self { dir, machine, reader, next_index: 1 };
        fixture.continue_after_applied().await;
        fixture
    }

    /// Numbers the next entries after the last the machine applied (after an open, or
    /// a snapshot installed).
    pub(super) async fn continue_after_applied(&mut self) {
        self.next_index = self.machine.applied_state().await.unwrap().0.map_or(1, |applied| applied.index + 1);
    }

    pub(super) async fn apply_entries(&mut self, payloads: Vec<EntryPayload<crate::raft::TypeConfig>>) -> Vec<Response> {
        let entries: Vec<Entry> = payloads
            .into_iter()
            .map(|payload| {
                let entry = Entry { log_id: log_id(self.next_index), payload };
                self.next_index += 1;
                entry
            })
            .collect();
        self.machine.apply(entries).await.unwrap()
    }

    pub(super) async fn apply_keyed(&mut self, key: Option<&str>, request: impl Into<Request>) -> Response {
        let request = Request { idempotency_key: key.map(String::from), ..request.into() };
        self.apply_entries(vec![EntryPayload::Normal(request)]).await.remove(0)
    }

    pub(super) async fn apply(&mut self, request: impl Into<Request>) -> Outcome {
        self.apply_keyed(None, request).await.outcome
    }

    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.reader.get(key).unwrap().value.map(|record| record.value)
    }

    fn revision(&self) -> u64 {
        self.reader.position().unwrap().revision
    }
}

fn meta(create_revision: u64, mod_revision: u64, version: u64) -> KeyMeta {
    KeyMeta { create_revision, mod_revision, version }
}

#[tokio::test]
async fn put_get_delete_track_revisions() {
    let mut f = Fixture::new();
    assert_eq!(f.apply(put("a", "1")).await, Outcome::Kv(KvOutcome::Put { revision: 1, meta: meta(1, 1, 1), created: true }));
    assert_eq!(f.apply(put("a", "2")).await, Outcome::Kv(KvOutcome::Put { revision: 2, meta: meta(1, 2, 2), created: false }));
    assert_eq!(f.apply(put("b", "x")).await, Outcome::Kv(KvOutcome::Put { revision: 3, meta: meta(3, 3, 1), created: true }));
    assert_eq!(f.value("a"), Some(b"2".to_vec()));
    assert_eq!(f.apply(del("a", Precondition::None)).await, Outcome::Kv(KvOutcome::Deleted { revision: 4, prev: meta(1, 2, 2) }));
    assert_eq!(f.value("a"), None);
    // Re-created: a new create_revision and version 1.
    assert_eq!(f.apply(put("a", "3")).await, Outcome::Kv(KvOutcome::Put { revision: 5, meta: meta(5, 5, 1), created: true }));
    let read = f.reader.get("a").unwrap();
    assert_eq!((read.applied_index, read.revision), (5, 5));
}

#[tokio::test]
async fn refusals_change_nothing_not_even_the_revision() {
    let mut f = Fixture::new();
    f.apply(put("k", "v1")).await;
    let before = f.revision();
    assert_eq!(f.apply(del("missing", Precondition::None)).await, Outcome::Rejected(Rejection::Kv(KvRejection::NotFound { key: "missing".into() })));
    let wrong = f.apply(put_if("k", "v2", Precondition::ModRevision(99))).await;
    assert_eq!(wrong, Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { key: "k".into(), current: Some(meta(1, 1, 1)) })));
    let exists = f.apply(put_if("k", "v2", Precondition::Absent)).await;
    assert!(matches!(exists, Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. }))));
    let absent = f.apply(put_if("nope", "v", Precondition::Exists)).await;
    assert_eq!(absent, Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { key: "nope".into(), current: None })));
    let wrong_delete = f.apply(del("k", Precondition::ModRevision(7))).await;
    assert!(matches!(wrong_delete, Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. }))));
    assert_eq!(f.revision(), before);
    assert_eq!(f.value("k"), Some(b"v1".to_vec()));
    assert_eq!(f.value("nope"), None);
}

#[tokio::test]
async fn compare_and_swap_succeeds_on_the_current_revision() {
    let mut f = Fixture::new();
    assert!(matches!(f.apply(put_if("k", "v1", Precondition::Absent)).await, Outcome::Kv(KvOutcome::Put { created: true, .. })));
    let Outcome::Kv(KvOutcome::Put { meta: first, .. }) = f.apply(put_if("k", "v2", Precondition::ModRevision(1))).await else { panic!("CAS failed") };
    assert_eq!(first, meta(1, 2, 2));
    assert!(matches!(f.apply(put_if("k", "v3", Precondition::Exists)).await, Outcome::Kv(KvOutcome::Put { .. })));
    assert!(matches!(f.apply(del("k", Precondition::ModRevision(3))).await, Outcome::Kv(KvOutcome::Deleted { .. })));
}

#[tokio::test]
async fn entries_in_one_batch_see_each_other() {
    let mut f = Fixture::new();
    let requests = [put("k", "1"), put("k", "2"), put_if("k", "3", Precondition::ModRevision(2)), del("k", Precondition::None)];
    let payloads = requests.into_iter().map(|command| EntryPayload::Normal(Request::from(command))).collect();
    let responses = f.apply_entries(payloads).await;
    let outcomes: Vec<_> = responses.into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes[1], Outcome::Kv(KvOutcome::Put { revision: 2, meta: meta(1, 2, 2), created: false }));
    assert_eq!(outcomes[2], Outcome::Kv(KvOutcome::Put { revision: 3, meta: meta(1, 3, 3), created: false }));
    assert_eq!(outcomes[3], Outcome::Kv(KvOutcome::Deleted { revision: 4, prev: meta(1, 3, 3) }));
    assert_eq!(f.value("k"), None);
}

#[tokio::test]
async fn list_pages_through_a_prefix_in_order() {
    let mut f = Fixture::new();
    for key in ["app/c", "app/a", "apq", "app/b", "ap", "b"] {
        f.apply(put(key, key)).await;
    }
    let view_keys = |page: &kv::Page| page.items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let first = f.reader.list("app/", None, 2).unwrap().value;
    assert_eq!(view_keys(&first), ["app/a", "app/b"]);
    assert!(first.more);
    let second = f.reader.list("app/", Some("app/b"), 2).unwrap().value;
    assert_eq!(view_keys(&second), ["app/c"]);
    assert!(!second.more);
    let all = f.reader.list("", None, 100).unwrap().value;
    assert_eq!(view_keys(&all), ["ap", "app/a", "app/b", "app/c", "apq", "b"]);
    // `after` before the prefix starts at the prefix.
    assert_eq!(view_keys(&f.reader.list("app/", Some("a"), 10).unwrap().value), ["app/a", "app/b", "app/c"]);
    // Exactly `limit` keys left: no phantom "more".
    assert!(!f.reader.list("app/", None, 3).unwrap().value.more);
}

#[tokio::test]
async fn a_prefix_delete_takes_bounded_entries_and_spares_other_keys() {
    let mut f = Fixture::new();
    let n = kv::DELETE_PREFIX_BATCH_MAX as u64 + 5;
    let lease = grant(&mut f, 60_000).await;
    f.apply(put_leased("jobs/leased", "x", lease)).await;
    for i in 0..n - 1 {
        f.apply(put(&format!("jobs/{i:05}"), "x")).await;
    }
    for key in ["job", "jobs", "jobsx", "k"] {
        f.apply(put(key, "kept")).await;
    }
    let before = f.revision();
    let first = f.apply(Command::Kv(KvCommand::DeletePrefix { prefix: "jobs/".into() })).await;
    let batch = kv::DELETE_PREFIX_BATCH_MAX as u64;
    assert_eq!(first, Outcome::Kv(KvOutcome::PrefixDeleted { deleted: batch, revision: before + batch, more: true }));
    let second = f.apply(Command::Kv(KvCommand::DeletePrefix { prefix: "jobs/".into() })).await;
    assert_eq!(second, Outcome::Kv(KvOutcome::PrefixDeleted { deleted: 5, revision: before + n, more: false }));
    let third = f.apply(Command::Kv(KvCommand::DeletePrefix { prefix: "jobs/".into() })).await;
    assert_eq!(third, Outcome::Kv(KvOutcome::PrefixDeleted { deleted: 0, revision: before + n, more: false }));
    assert!(f.reader.list("jobs/", None, 10).unwrap().value.items.is_empty());
    for key in ["job", "jobs", "jobsx", "k"] {
        assert_eq!(f.value(key), Some(b"kept".to_vec()), "{key}");
    }
    assert_eq!(f.reader.lease(lease, 10).unwrap().value.unwrap().record.key_count, 0, "the leased key was detached");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_outcome() {
    let mut f = Fixture::new();
    let first = f.apply_keyed(Some("req-1"), put("k", "v")).await;
    assert!(!first.replayed);
    f.apply(put("k", "other")).await;
    let again = f.apply_keyed(Some("req-1"), put("k", "v")).await;
    assert!(again.replayed);
    assert_eq!(again.outcome, first.outcome);
    // Not applied twice: the later write is still there and the revision moved once.
    assert_eq!(f.value("k"), Some(b"other".to_vec()));
    assert_eq!(f.revision(), 2);
    // A refusal is remembered too.
    let refused = f.apply_keyed(Some("req-2"), del("nothing", Precondition::None)).await;
    f.apply(put("nothing", "now exists")).await;
    assert_eq!(f.apply_keyed(Some("req-2"), del("nothing", Precondition::None)).await.outcome, refused.outcome);
    // The same key for a different command is refused, not answered with the old result.
    let reused = f.apply_keyed(Some("req-1"), put("k", "different")).await;
    assert_eq!(reused.outcome, Outcome::Rejected(Rejection::IdempotencyKeyReused { key: "req-1".into() }));
    assert_eq!(f.value("k"), Some(b"other".to_vec()));
}

#[tokio::test]
async fn idempotency_table_is_bounded_by_count_and_by_window() {
    let mut f = Fixture::with_bounds(IdempotencyBounds { entries_max: 2, window_entries: 1_000 });
    f.apply_keyed(Some("k1"), put("a", "1")).await;
    f.apply_keyed(Some("k2"), put("b", "1")).await;
    f.apply_keyed(Some("k3"), put("c", "1")).await; // evicts k1
    assert!(f.apply_keyed(Some("k2"), put("b", "1")).await.replayed);
    let forgotten = f.apply_keyed(Some("k1"), put("a", "1")).await;
    assert!(!forgotten.replayed, "k1 should have been evicted by the count bound");
}

#[tokio::test]
async fn idempotency_window_expires_old_records() {
    let mut f = Fixture::with_bounds(IdempotencyBounds { entries_max: 100, window_entries: 3 });
    f.apply_keyed(Some("old"), put("a", "1")).await; // index 1
    f.apply(put("filler", "2")).await;
    f.apply(put("filler", "3")).await;
    // At index 4 the record is 3 entries old: still inside the window.
    assert!(f.apply_keyed(Some("old"), put("a", "1")).await.replayed);
    f.apply(put("filler", "5")).await;
    // At index 6 the record from index 1 is 5 entries old: beyond the window of 3.
    assert!(!f.apply_keyed(Some("old"), put("a", "1")).await.replayed);
    assert_eq!(f.reader.get("a").unwrap().value.map(|r| r.meta.version), Some(2));
    assert_eq!(f.reader.get("filler").unwrap().value.map(|r| r.value), Some(b"5".to_vec()));
}

#[tokio::test]
async fn state_and_applied_index_survive_reopen() {
    let mut f = Fixture::new();
    let membership = Membership::new(vec![std::collections::BTreeSet::from([1u64, 2, 3])], None);
    f.apply_entries(vec![EntryPayload::Blank, EntryPayload::Membership(membership.clone())]).await;
    f.apply(put("k", "v")).await;
    let Fixture { dir, machine, reader, .. } = f;
    drop((machine, reader)); // both hold the database open
    let path = dir.path().to_path_buf();
    let mut reopened = StateMachine::open(&path, IdempotencyBounds::default(), CACHE_BYTES_DEFAULT).unwrap();
    let (applied, stored_membership) = reopened.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(3)));
    assert_eq!(stored_membership.membership(), &membership);
    assert_eq!(stored_membership.log_id(), &Some(log_id(2)));
    assert_eq!(reopened.reader().get("k").unwrap().value.map(|r| r.value), Some(b"v".to_vec()));
}

#[tokio::test]
async fn a_state_database_of_a_format_this_binary_does_not_read_is_refused() {
    let mut f = Fixture::new();
    f.apply(put("k", "v")).await;
    // A newer release stamped its format; this one must not read it.
    let store = f.machine.store();
    store
        .db()
        .put_cf(store.cf(Cf::Meta), crate::format_version::FORMAT_VERSION_KEY, (crate::format_version::STATE_FORMAT.current() + 1).to_le_bytes())
        .unwrap();
    drop(store);
    let Fixture { dir, machine, reader, .. } = f;
    drop((machine, reader));
    let refused = StateMachine::open(dir.path(), IdempotencyBounds::default(), CACHE_BYTES_DEFAULT).err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains(&format!("format version {}", crate::format_version::STATE_FORMAT.current() + 1)) && message.contains("newer Concord"),
        "{message}"
    );
}

pub(super) async fn snapshot_into_bytes(f: &mut Fixture) -> (crate::raft::SnapshotMeta, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut builder = f.machine.get_snapshot_builder().await;
    let mut snapshot = builder.build_snapshot().await.unwrap();
    let mut bytes = Vec::new();
    snapshot.snapshot.read_to_end(&mut bytes).await.unwrap();
    (snapshot.meta, bytes)
}

pub(super) async fn receive(target: &mut Fixture, meta: &crate::raft::SnapshotMeta, bytes: &[u8]) -> Result<(), crate::raft::StorageError> {
    use tokio::io::AsyncWriteExt;
    let mut file = target.machine.begin_receiving_snapshot().await.unwrap();
    file.write_all(bytes).await.unwrap();
    file.flush().await.unwrap();
    target.machine.install_snapshot(meta, file).await
}

#[tokio::test]
async fn snapshot_round_trip_replaces_the_target_state() {
    let mut source = Fixture::new();
    for i in 0..50 {
        source.apply_keyed(Some(&format!("idem-{i}")), put(&format!("key/{i:03}"), &format!("value {i}"))).await;
    }
    source.apply(del("key/007", Precondition::None)).await;
    let (meta, bytes) = snapshot_into_bytes(&mut source).await;
    assert_eq!(meta.last_log_id, Some(log_id(51)));

    let mut target = Fixture::new();
    target.apply(put("stale-only-on-target", "x")).await;
    receive(&mut target, &meta, &bytes).await.unwrap();
    assert_eq!(target.machine.applied_state().await.unwrap().0, Some(log_id(51)));
    assert_eq!(target.value("stale-only-on-target"), None);
    assert_eq!(target.value("key/007"), None);
    assert_eq!(target.value("key/042"), Some(b"value 42".to_vec()));
    assert_eq!(target.revision(), source.revision());
    // The idempotency table travels with the snapshot: a retry after failover replays.
    target.next_index = 52;
    assert!(target.apply_keyed(Some("idem-3"), put("key/003", "value 3")).await.replayed);
    // And the target can serve the same snapshot on.
    let current = target.machine.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
}

#[tokio::test]
async fn corrupt_or_mismatched_snapshots_are_refused_and_change_nothing() {
    let mut source = Fixture::new();
    for i in 0..10 {
        source.apply(put(&format!("k{i}"), "v")).await;
    }
    let (meta, bytes) = snapshot_into_bytes(&mut source).await;

    let mut target = Fixture::new();
    target.apply(put("mine", "kept")).await;
    let (own_meta, _) = snapshot_into_bytes(&mut target).await;
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    assert!(receive(&mut target, &meta, &flipped).await.is_err());
    assert!(receive(&mut target, &meta, &bytes[..bytes.len() - 3]).await.is_err());
    let mut other_meta = meta.clone();
    other_meta.snapshot_id = "someone-else".into();
    assert!(receive(&mut target, &other_meta, &bytes).await.is_err());
    assert_eq!(target.value("mine"), Some(b"kept".to_vec()));
    assert_eq!(target.value("k3"), None);
    // The node's own snapshot is still the one it serves.
    assert_eq!(target.machine.get_current_snapshot().await.unwrap().map(|s| s.meta), Some(own_meta));
    // And a good snapshot still installs afterwards.
    receive(&mut target, &meta, &bytes).await.unwrap();
    assert_eq!(target.value("k3"), Some(b"v".to_vec()));
}

#[tokio::test]
async fn an_interrupted_install_is_finished_on_open() {
    let mut source = Fixture::new();
    source.apply(put("from-snapshot", "yes")).await;
    let (meta, bytes) = snapshot_into_bytes(&mut source).await;
    let mut target = Fixture::new();
    receive(&mut target, &meta, &bytes).await.unwrap();
    // Simulate a crash in the middle of an install: marker set, data wiped.
    let Fixture { dir, machine, reader, .. } = target;
    drop((machine, reader));
    let path = dir.path().to_path_buf();
    {
        let store = super::store::StateStore::open(&path.join("state"), CACHE_BYTES_DEFAULT).unwrap();
        store.db().put_cf(store.cf(Cf::Meta), KEY_INSTALLING, b"1").unwrap();
        store.db().delete_cf(store.cf(Cf::Kv), b"from-snapshot").unwrap();
        let reader = StateReader::new(store.clone(), Default::default());
        assert!(matches!(reader.get("from-snapshot"), Err(super::store::ViewError::Installing)));
    }
    let reopened = StateMachine::open(&path, IdempotencyBounds::default(), CACHE_BYTES_DEFAULT).unwrap();
    assert_eq!(reopened.reader().get("from-snapshot").unwrap().value.map(|r| r.value), Some(b"yes".to_vec()));
}

/// A varied command stream: puts, CAS at guessed revisions, deletes, keyed requests,
/// and exact retries of earlier keyed requests.
fn workload(len: usize) -> Vec<Request> {
    let mut requests: Vec<Request> = Vec::with_capacity(len);
    for i in 0..len {
        // Every tenth request retries the keyed request five before it, unchanged.
        if i >= 10 && i % 10 == 0 {
            requests.push(requests[i - 5].clone());
            continue;
        }
        let key = format!("k{}", (i * 7 + 3) % 13);
        let command = match i % 4 {
            0 | 1 => put(&key, &i.to_string()),
            2 => put_if(&key, "cas", Precondition::ModRevision(i as u64 / 2)),
            _ => del(&key, Precondition::None),
        };
        let idempotency_key = (i % 5 == 0).then(|| format!("req-{i}"));
        requests.push(Request { idempotency_key, ..Request::from(command) });
    }
    requests
}

#[tokio::test]
async fn replicas_fed_the_same_log_agree_whatever_the_batching() {
    let requests = workload(240);
    // A applies one entry per call; B in batches of varying size (1, 2, ... 7, 1, ...).
    let mut a = Fixture::new();
    let mut responses_a = Vec::new();
    for request in &requests {
        responses_a.extend(a.apply_entries(vec![EntryPayload::Normal(request.clone())]).await);
    }
    let mut b = Fixture::new();
    let mut responses_b = Vec::new();
    let mut rest = requests.as_slice();
    let mut size = 1;
    while !rest.is_empty() {
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        responses_b.extend(b.apply_entries(batch.iter().cloned().map(EntryPayload::Normal).collect()).await);
        rest = tail;
        size = size % 7 + 1;
    }
    assert_eq!(responses_a, responses_b);
    assert!(responses_a.iter().any(|r| r.replayed), "the workload exercises replays");
    assert!(responses_a.iter().any(|r| matches!(r.outcome, Outcome::Rejected(_))), "and refusals");

    // C starts from a snapshot of a replica taken halfway, then applies the rest.
    let mut half = Fixture::new();
    for request in &requests[..120] {
        half.apply_entries(vec![EntryPayload::Normal(request.clone())]).await;
    }
    let (meta, bytes) = snapshot_into_bytes(&mut half).await;
    let mut c = Fixture::new();
    receive(&mut c, &meta, &bytes).await.unwrap();
    c.next_index = 121;
    let mut responses_c = Vec::new();
    for request in &requests[120..] {
        responses_c.extend(c.apply_entries(vec![EntryPayload::Normal(request.clone())]).await);
    }
    assert_eq!(responses_c, responses_a[120..]);

    let everything = |f: &Fixture| f.reader.list("", None, 1000).unwrap();
    assert_eq!(everything(&a), everything(&b));
    assert_eq!(everything(&a), everything(&c));
}

/// Grants a lease and returns its id (the log index of the grant).
async fn grant(f: &mut Fixture, ttl_ms: u64) -> u64 {
    match f.apply(Command::Lease(LeaseCommand::Grant { ttl_ms })).await {
        Outcome::Lease(LeaseOutcome::Alive { id, .. }) => id,
        other => panic!("grant failed: {other:?}"),
    }
}

pub(super) async fn tick(f: &mut Fixture, advance_ms: u64) -> Outcome {
    f.apply(Command::Tick { advance_ms }).await
}

#[tokio::test]
async fn leases_expire_only_when_ticks_pass_their_ttl() {
    let mut f = Fixture::new();
    let id = grant(&mut f, 1000).await;
    assert_eq!(id, 1, "a lease id is the log index of its grant");
    f.apply(put_leased("session/a", "x", id)).await;
    f.apply(put("plain", "y")).await;
    assert_eq!(tick(&mut f, 999).await, Outcome::Ticked { clock_ms: 999, expired: 0 });
    assert!(f.value("session/a").is_some(), "alive 1 ms before its TTL");
    let revision = f.revision();
    assert_eq!(tick(&mut f, 1).await, Outcome::Ticked { clock_ms: 1000, expired: 1 });
    assert_eq!(f.value("session/a"), None, "the attached key went with the lease");
    assert_eq!(f.value("plain"), Some(b"y".to_vec()));
    assert_eq!(f.revision(), revision + 1, "the deletion is a change");
    assert!(f.reader.lease(id, 10).unwrap().value.is_none());
    assert_eq!(f.apply(Command::Lease(LeaseCommand::KeepAlive { id })).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id })));
}

#[tokio::test]
async fn keep_alive_restarts_the_ttl_from_the_current_clock() {
    let mut f = Fixture::new();
    let id = grant(&mut f, 1000).await;
    tick(&mut f, 800).await;
    assert_eq!(f.apply(Command::Lease(LeaseCommand::KeepAlive { id })).await, Outcome::Lease(LeaseOutcome::Alive { id, ttl_ms: 1000, expires_at_ms: 1800 }));
    assert_eq!(tick(&mut f, 900).await, Outcome::Ticked { clock_ms: 1700, expired: 0 });
    assert_eq!(tick(&mut f, 100).await, Outcome::Ticked { clock_ms: 1800, expired: 1 });
}

#[tokio::test]
async fn leases_count_from_the_leaders_stamp_not_the_last_tick() {
    let mut f = Fixture::new();
    tick(&mut f, 100).await;
    // The leader stamped the grant at 700: 600 ms passed since the last tick, which
    // the next tick will count. The TTL runs from 700.
    let Outcome::Lease(LeaseOutcome::Alive { id, expires_at_ms, .. }) = f.apply(at(700, LeaseCommand::Grant { ttl_ms: 1000 })).await else { panic!() };
    assert_eq!(expires_at_ms, 1700);
    assert_eq!(tick(&mut f, 1599).await, Outcome::Ticked { clock_ms: 1699, expired: 0 });
    // A stamp behind the clock (a new leader's) counts from the clock instead, and a
    // keep-alive never shortens a lease.
    assert_eq!(f.apply(at(5, LeaseCommand::KeepAlive { id })).await, Outcome::Lease(LeaseOutcome::Alive { id, ttl_ms: 1000, expires_at_ms: 2699 }));
    assert_eq!(f.apply(Command::Lease(LeaseCommand::KeepAlive { id })).await, Outcome::Lease(LeaseOutcome::Alive { id, ttl_ms: 1000, expires_at_ms: 2699 }));
    // A retried keep-alive carries a new stamp but is the same request.
    let first = f.apply_keyed(Some("ka-1"), at(1800, LeaseCommand::KeepAlive { id })).await;
    let retry = f.apply_keyed(Some("ka-1"), at(1900, LeaseCommand::KeepAlive { id })).await;
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(retry.outcome, first.outcome);
}

#[tokio::test]
async fn a_keep_alive_and_a_tick_in_one_batch_apply_in_order() {
    let mut f = Fixture::new();
    let id = grant(&mut f, 1000).await;
    tick(&mut f, 900).await;
    // The keep-alive is still a pending write when the tick scans for expiries.
    let payloads = vec![Command::Lease(LeaseCommand::KeepAlive { id }), Command::Tick { advance_ms: 500 }]
        .into_iter()
        .map(|command| EntryPayload::Normal(Request::from(command)))
        .collect();
    let responses = f.apply_entries(payloads).await;
    assert_eq!(responses[1].outcome, Outcome::Ticked { clock_ms: 1400, expired: 0 });
    assert!(f.reader.lease(id, 10).unwrap().value.is_some());
}

#[tokio::test]
async fn revoking_deletes_attached_keys_and_detached_keys_survive() {
    let mut f = Fixture::new();
    let id = grant(&mut f, 60_000).await;
    for key in ["a", "b", "c"] {
        f.apply(put_leased(key, "v", id)).await;
    }
    f.apply(put("b", "now unleased")).await; // detaches b
    f.apply(del("c", Precondition::None)).await; // detaches c
    let lease = f.reader.lease(id, 10).unwrap().value.unwrap();
    assert_eq!((lease.keys.clone(), lease.record.key_count), (vec!["a".to_string()], 1));
    let Outcome::Lease(LeaseOutcome::Revoked { deleted_keys, .. }) = f.apply(Command::Lease(LeaseCommand::Revoke { id })).await else {
        panic!("revoke failed")
    };
    assert_eq!(deleted_keys, 1);
    assert_eq!(f.value("a"), None);
    assert_eq!(f.value("b"), Some(b"now unleased".to_vec()));
    assert_eq!(f.apply(Command::Lease(LeaseCommand::Revoke { id })).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id })));
}

#[tokio::test]
async fn a_key_cannot_attach_to_a_missing_lease_and_moves_between_leases() {
    let mut f = Fixture::new();
    assert_eq!(f.apply(put_leased("k", "v", 42)).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id: 42 })));
    assert_eq!(f.value("k"), None);
    let first = grant(&mut f, 1000).await;
    let second = grant(&mut f, 5000).await;
    f.apply(put_leased("k", "v", first)).await;
    f.apply(put_leased("k", "v2", second)).await;
    assert_eq!(f.reader.lease(first, 10).unwrap().value.unwrap().record.key_count, 0);
    tick(&mut f, 1000).await; // the first lease expires; k now belongs to the second
    assert_eq!(f.value("k"), Some(b"v2".to_vec()));
    tick(&mut f, 4000).await;
    assert_eq!(f.value("k"), None);
}

#[tokio::test]
async fn leases_and_the_clock_travel_in_snapshots() {
    let mut source = Fixture::new();
    let id = grant(&mut source, 1000).await;
    source.apply(put_leased("k", "v", id)).await;
    tick(&mut source, 400).await;
    let (meta, bytes) = snapshot_into_bytes(&mut source).await;
    let mut target = Fixture::new();
    receive(&mut target, &meta, &bytes).await.unwrap();
    target.next_index = source.next_index;
    assert_eq!(target.reader.next_deadline().unwrap().clock_ms, 400);
    assert_eq!(tick(&mut target, 599).await, Outcome::Ticked { clock_ms: 999, expired: 0 });
    assert_eq!(tick(&mut target, 1).await, Outcome::Ticked { clock_ms: 1000, expired: 1 });
    assert_eq!(target.value("k"), None);
}

fn acquire(name: &str, lease: u64, wait: bool) -> Command {
    Command::Lock(LockCommand::Acquire { name: name.into(), lease, wait })
}

fn fenced_put(key: &str, value: &str, lock: &str, token: u64) -> Command {
    let fence = Some(super::command::Fence { lock: lock.into(), token });
    Command::Kv(KvCommand::Put { key: key.into(), value: value.as_bytes().to_vec(), precondition: Precondition::None, lease: None, fence })
}

fn holding(token: u64, lease: u64) -> Option<super::lock::Holding> {
    Some(super::lock::Holding { token, lease })
}

#[tokio::test]
async fn locks_grant_in_order_with_growing_tokens() {
    let mut f = Fixture::new();
    let (a, b, c) = (grant(&mut f, 10_000).await, grant(&mut f, 10_000).await, grant(&mut f, 10_000).await);
    let Outcome::Lock(LockOutcome::Held { token: first, .. }) = f.apply(acquire("job", a, false)).await else { panic!("free lock not granted") };
    assert_eq!(first, 4, "the token is the granting entry's index");
    // Asking again as the holder is answered with the same holding.
    assert_eq!(f.apply(acquire("job", a, true)).await, Outcome::Lock(LockOutcome::Held { name: "job".into(), token: first, lease: a }));
    assert!(matches!(f.apply(acquire("job", b, false)).await, Outcome::Rejected(Rejection::Lock(LockRejection::Busy { waiters: 0, .. }))));
    assert_eq!(f.apply(acquire("job", b, true)).await, Outcome::Lock(LockOutcome::Waiting { name: "job".into(), position: 1 }));
    assert_eq!(f.apply(acquire("job", c, true)).await, Outcome::Lock(LockOutcome::Waiting { name: "job".into(), position: 2 }));
    // A stale token cannot release.
    let stale = f.apply(Command::Lock(LockCommand::Release { name: "job".into(), token: first - 1 })).await;
    assert!(matches!(stale, Outcome::Rejected(Rejection::Lock(LockRejection::StaleToken { current: Some(_), .. }))));
    let Outcome::Lock(LockOutcome::Released { next: Some(next), .. }) = f.apply(Command::Lock(LockCommand::Release { name: "job".into(), token: first })).await
    else {
        panic!("release failed")
    };
    assert_eq!(next.lease, b, "first come, first served");
    assert!(next.token > first);
    // The next one in line: c, after b releases.
    let Outcome::Lock(LockOutcome::Released { next: Some(after), .. }) =
        f.apply(Command::Lock(LockCommand::Release { name: "job".into(), token: next.token })).await
    else {
        panic!()
    };
    assert_eq!(after.lease, c);
    assert!(after.token > next.token);
    let Outcome::Lock(LockOutcome::Released { next: None, .. }) = f.apply(Command::Lock(LockCommand::Release { name: "job".into(), token: after.token })).await
    else {
        panic!()
    };
    assert_eq!(f.reader.lock("job").unwrap().value, Default::default(), "a free lock with no waiters has no record");
    // The same lease taking the lock again gets a new, larger token; its old one is dead.
    let Outcome::Lock(LockOutcome::Held { token: again, .. }) = f.apply(acquire("job", a, false)).await else { panic!() };
    assert!(again > after.token && again != first);
    assert!(matches!(f.apply(fenced_put("out", "x", "job", first)).await, Outcome::Rejected(Rejection::Lock(LockRejection::FenceRejected { .. }))));
    assert!(matches!(f.apply(fenced_put("out", "x", "job", again)).await, Outcome::Kv(KvOutcome::Put { .. })));
}

#[tokio::test]
async fn a_lease_that_ends_lets_go_of_its_lock_and_its_place_in_line() {
    let mut f = Fixture::new();
    let holder = grant(&mut f, 1000).await;
    let waiter = grant(&mut f, 60_000).await;
    let dropped = grant(&mut f, 60_000).await;
    let Outcome::Lock(LockOutcome::Held { token, .. }) = f.apply(acquire("leader", holder, false)).await else { panic!() };
    f.apply(acquire("leader", dropped, true)).await;
    f.apply(acquire("leader", waiter, true)).await;
    // A waiter whose lease is revoked leaves the line.
    f.apply(Command::Lease(LeaseCommand::Revoke { id: dropped })).await;
    assert_eq!(f.reader.lock("leader").unwrap().value.waiters, [waiter]);
    // The holder's lease expires: the tick that ends it grants the lock on.
    let index_of_tick = f.next_index;
    tick(&mut f, 1000).await;
    assert_eq!(f.reader.lock("leader").unwrap().value.holder, holding(index_of_tick, waiter));
    assert!(index_of_tick > token);
    assert_eq!(f.reader.lease(waiter, 10).unwrap().value.unwrap().locks, ["leader"]);
}

#[tokio::test]
async fn fenced_writes_apply_only_while_the_token_holds() {
    let mut f = Fixture::new();
    let first = grant(&mut f, 1000).await;
    let second = grant(&mut f, 60_000).await;
    let Outcome::Lock(LockOutcome::Held { token, .. }) = f.apply(acquire("res", first, false)).await else { panic!() };
    assert!(matches!(f.apply(fenced_put("data", "from first", "res", token)).await, Outcome::Kv(KvOutcome::Put { .. })));
    tick(&mut f, 1000).await; // first's lease expires
    let Outcome::Lock(LockOutcome::Held { token: newer, .. }) = f.apply(acquire("res", second, false)).await else { panic!() };
    assert!(newer > token);
    // The paused first holder wakes up and writes with its old token: refused.
    let late = f.apply(fenced_put("data", "late write", "res", token)).await;
    assert_eq!(late, Outcome::Rejected(Rejection::Lock(LockRejection::FenceRejected { lock: "res".into(), token, current: Some(newer) })));
    assert_eq!(f.value("data"), Some(b"from first".to_vec()));
    assert!(matches!(f.apply(fenced_put("data", "from second", "res", newer)).await, Outcome::Kv(KvOutcome::Put { .. })));
    // A fence on a lock nobody holds is refused too.
    assert!(matches!(
        f.apply(fenced_put("data", "x", "nothing", 1)).await,
        Outcome::Rejected(Rejection::Lock(LockRejection::FenceRejected { current: None, .. }))
    ));
}

#[tokio::test]
async fn a_waiter_that_gives_up_leaves_the_line_unless_it_was_granted() {
    let mut f = Fixture::new();
    let (a, b) = (grant(&mut f, 60_000).await, grant(&mut f, 60_000).await);
    let Outcome::Lock(LockOutcome::Held { token, .. }) = f.apply(acquire("q", a, false)).await else { panic!() };
    f.apply(acquire("q", b, true)).await;
    let cancelled = f.apply(Command::Lock(LockCommand::CancelWait { name: "q".into(), lease: b })).await;
    assert_eq!(cancelled, Outcome::Lock(LockOutcome::WaitCancelled { name: "q".into(), holder: holding(token, a) }));
    assert!(f.reader.lock("q").unwrap().value.waiters.is_empty());
    assert_eq!(f.reader.lease(b, 10).unwrap().value.unwrap().record.lock_count, 0);
    // Granted before it gave up: the cancel reports the grant instead.
    f.apply(acquire("q", b, true)).await;
    let Outcome::Lock(LockOutcome::Released { next: Some(next), .. }) = f.apply(Command::Lock(LockCommand::Release { name: "q".into(), token })).await else {
        panic!()
    };
    assert_eq!(
        f.apply(Command::Lock(LockCommand::CancelWait { name: "q".into(), lease: b })).await,
        Outcome::Lock(LockOutcome::Held { name: "q".into(), token: next.token, lease: b })
    );
    assert_eq!(f.apply(acquire("q", 999, false)).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id: 999 })));
}

pub(super) fn join(ring: &str, member: &str, lease: Option<u64>) -> Command {
    Command::Ring(RingCommand::Join(super::ring::Join {
        ring: ring.into(),
        member: member.into(),
        address: format!("{member}.local:7000"),
        weight: 1,
        metadata: String::new(),
        lease,
    }))
}

#[tokio::test]
async fn ring_changes_bump_the_epoch_and_leases_take_members_away() {
    let mut f = Fixture::new();
    assert_eq!(f.apply(join("cache", "a", None)).await, Outcome::Ring(RingOutcome::Changed { ring: "cache".into(), epoch: 1, members: 1 }));
    let lease = grant(&mut f, 1000).await;
    assert_eq!(f.apply(join("cache", "b", Some(lease))).await, Outcome::Ring(RingOutcome::Changed { ring: "cache".into(), epoch: 2, members: 2 }));
    // An update (same member) bumps the epoch but not the count.
    assert_eq!(f.apply(join("cache", "a", None)).await, Outcome::Ring(RingOutcome::Changed { ring: "cache".into(), epoch: 3, members: 2 }));
    assert_eq!(f.reader.lease(lease, 10).unwrap().value.unwrap().ring_members, [("cache".to_string(), "b".to_string())]);
    // b's holder stops renewing: b leaves with the lease, and the epoch moves.
    tick(&mut f, 1000).await;
    let ring = f.reader.ring("cache").unwrap().value;
    assert_eq!(ring.epoch, 4);
    assert_eq!(ring.members.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(
        f.apply(Command::Ring(RingCommand::Leave { ring: "cache".into(), member: "b".into() })).await,
        Outcome::Rejected(Rejection::Ring(RingRejection::MemberNotFound { ring: "cache".into(), member: "b".into() }))
    );
    assert_eq!(
        f.apply(Command::Ring(RingCommand::Leave { ring: "cache".into(), member: "a".into() })).await,
        Outcome::Ring(RingOutcome::Changed { ring: "cache".into(), epoch: 5, members: 0 })
    );
    assert_eq!(f.apply(join("cache", "c", Some(4242))).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id: 4242 })));
    assert_eq!(f.reader.ring("cache").unwrap().value.epoch, 5, "a refused join changes nothing");
}

#[tokio::test]
async fn a_ring_is_bounded() {
    let mut f = Fixture::new();
    for i in 0..super::ring::MEMBERS_PER_RING_MAX {
        f.apply(join("big", &format!("m{i:03}"), None)).await;
    }
    assert!(matches!(f.apply(join("big", "one-too-many", None)).await, Outcome::Rejected(Rejection::Ring(RingRejection::Full { .. }))));
    assert!(matches!(f.apply(join("big", "m000", None)).await, Outcome::Ring(RingOutcome::Changed { .. })), "updating a member is fine");
    // Apply re-checks the fixed bounds itself, whatever the API let through.
    for weight in [0, super::ring::WEIGHT_MAX + 1, u32::MAX] {
        let Command::Ring(RingCommand::Join(mut heavy)) = join("big", "m001", None) else { unreachable!() };
        heavy.weight = weight;
        assert!(
            matches!(f.apply(Command::Ring(RingCommand::Join(heavy))).await, Outcome::Rejected(Rejection::Ring(RingRejection::MemberInvalid { .. }))),
            "weight {weight}"
        );
    }
}

/// A snapshot's records (everything after its header, whose id differs per build).
pub(super) async fn state_bytes(f: &mut Fixture) -> Vec<u8> {
    let (_, bytes) = snapshot_into_bytes(f).await;
    let magic = b"CONCORD-SNAPSHOT-1\n".len();
    let meta_len = u32::from_le_bytes(bytes[magic..magic + 4].try_into().unwrap()) as usize;
    bytes[magic + 4 + meta_len..].to_vec()
}

/// Every record of `f`'s state, one per line (`family key = value`, in hex), in the
/// order a snapshot carries them.
pub(super) async fn state_lines(f: &mut Fixture) -> Vec<String> {
    let records = state_bytes(f).await;
    let mut lines = Vec::new();
    let mut rest = &records[..];
    let take = |rest: &mut &[u8], n: usize| {
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        head.to_vec()
    };
    let length = |bytes: Vec<u8>| u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize;
    while rest.first().is_some_and(|cf| *cf != 0) {
        let cf = take(&mut rest, 1)[0];
        let name = Cf::ALL.iter().find(|c| **c as u8 == cf).map_or("?", |c| c.name());
        let key_len = length(take(&mut rest, 4));
        let key = take(&mut rest, key_len);
        let value_len = length(take(&mut rest, 4));
        let value = take(&mut rest, value_len);
        lines.push(format!("{} = {}", crate::golden::line(name, &key), crate::golden::line("", &value).trim_start()));
    }
    // The end byte, the record count and the checksum close the file.
    assert_eq!(rest.len(), 1 + 8 + 8, "after the records: end byte, count, checksum");
    assert_eq!(u64::from_le_bytes(rest[1..9].try_into().unwrap()) as usize, lines.len());
    lines
}

/// Every primitive, with refusals, expiries and a lock handed on by a lease's end;
/// every third request keyed. Applied one request per entry from index 1, request
/// `i` is entry `i + 1` (the queue's receipt below counts on it).
pub(super) fn every_primitive() -> Vec<Request> {
    let mut requests: Vec<Request> = vec![
        LeaseCommand::Grant { ttl_ms: 1000 }.into(),
        at(10, LeaseCommand::Grant { ttl_ms: 5000 }),
        put_leased("session/1", "a", 1).into(),
        put("plain", "b").into(),
        LockCommand::Acquire { name: "leader".into(), lease: 1, wait: false }.into(),
        LockCommand::Acquire { name: "leader".into(), lease: 2, wait: true }.into(),
        join("ring", "m1", Some(1)).into(),
        join("ring", "m2", None).into(),
        fenced_put("guarded", "x", "leader", 5).into(),
        Command::Tick { advance_ms: 600 }.into(),
        at(650, LeaseCommand::KeepAlive { id: 2 }),
        Command::Tick { advance_ms: 500 }.into(), // lease 1 ends: key, ring member and lock go
        put_if("plain", "c", Precondition::ModRevision(99)).into(),
        del("plain", Precondition::None).into(),
        RingCommand::Leave { ring: "ring".into(), member: "m2".into() }.into(),
        // A lease granted, given a key and revoked within the same batch.
        at(1200, LeaseCommand::Grant { ttl_ms: 9000 }),
        put_leased("short/1", "gone soon", 16).into(),
        LeaseCommand::Revoke { id: 16 }.into(),
        // Topics: retention by count trims in the batch that publishes.
        TopicCommand::Configure { topic: "news".into(), settings: crate::state::topic::TopicSettings { max_messages: 2, ..Default::default() } }.into(),
        at(1300, TopicCommand::Publish { topic: "news".into(), payload: b"1".to_vec() }),
        at(1310, TopicCommand::Publish { topic: "news".into(), payload: b"2".to_vec() }),
        at(1320, TopicCommand::Publish { topic: "news".into(), payload: b"3".to_vec() }),
        at(1330, TopicCommand::Publish { topic: "gone".into(), payload: b"x".to_vec() }),
        TopicCommand::Delete { topic: "gone".into() }.into(),
    ];
    requests.extend((0..40).map(|i| put(&format!("bulk/{i}"), &i.to_string()).into()));
    // Queues, with a delivery acked and one given back; tokens; a prefix delete.
    let settings = super::queue::QueueSettings { max_deliveries: Some(2), dead_letter_queue: Some("dead".into()), ..Default::default() };
    requests.push(QueueCommand::Configure { queue: "jobs".into(), settings }.into());
    requests.extend((0..3).map(|i| at(1400, QueueCommand::Enqueue { queue: "jobs".into(), payload: vec![i; 3], delay_ms: 100 * i as u64 })));
    requests.push(at(1500, QueueCommand::Receive { queue: "jobs".into(), max: 2, visibility_ms: Some(5000) }));
    let received_at = requests.len() as u64;
    requests.push(QueueCommand::Ack { queue: "jobs".into(), receipt: super::queue::Receipt { id: 1, delivery: received_at } }.into());
    requests.push(at(1510, QueueCommand::Nack { queue: "jobs".into(), receipt: super::queue::Receipt { id: 2, delivery: received_at }, delay_ms: 50 }));
    let token = super::auth::TokenRecord { name: "ops".into(), role: super::auth::Role::Admin, prefixes: Vec::new(), secret_sha256: [7; 32] };
    requests.push(AuthCommand::TokenCreate(token).into());
    requests.push(KvCommand::DeletePrefix { prefix: "bulk/1".into() }.into());
    // Transactions: exactly-once work, then the same again (its receipt is stale now,
    // so the failure branch runs), then one refused at its second operation.
    requests.push(at(1600, QueueCommand::Enqueue { queue: "work".into(), payload: b"w1".to_vec(), delay_ms: 0 }));
    requests.push(at(1600, QueueCommand::Receive { queue: "work".into(), max: 1, visibility_ms: Some(5000) }));
    let receipt = super::queue::Receipt { id: 1, delivery: requests.len() as u64 };
    let work = super::txn_tests::exactly_once(receipt);
    requests.push(at(1610, work.clone()));
    requests.push(at(1610, work));
    requests.push(super::txn_tests::refused_at_second_op(receipt).into());
    for (i, request) in requests.iter_mut().enumerate() {
        request.idempotency_key = (i % 3 == 0).then(|| format!("k{i}"));
    }
    requests
}

/// What log format 4 added, after `every_primitive` (whose state a version-2 database
/// upgrades to): keys with a time to live (the clock reads 1100 here), one that
/// expires at the tick, one that keeps its expiry through a put, one that loses it to
/// a plain put; lists pushed, popped, moved, set, trimmed, emptied, replaced by a
/// string, and one that expires. Then format 5's: keys with flags, one that keeps
/// A put of `key` with `flags` (format 5).
fn put_flags(key: &str, value: &str, flags: u64) -> Command {
    let (key, value) = (key.into(), value.as_bytes().to_vec());
    Command::Kv(KvCommand::PutWithFlags { key, value, precondition: Precondition::None, lease: None, fence: None, ttl: Ttl::Clear, flags })
}

/// them, one whose flags a plain put clears, one whose flags go with it.
pub(super) fn additions_since_format_3() -> Vec<Request> {
    let list = |command: ListCommand| Request::from(Command::List(command));
    let push = |key: &str, items: &[&str], end| {
        list(ListCommand::Push { key: key.into(), items: items.iter().map(|item| item.as_bytes().to_vec()).collect(), end, only_existing: false })
    };
    let requests = vec![
        at(1100, put_ttl("ttl/gone", "1", Ttl::After { ttl_ms: 50 })),
        at(1100, put_ttl("ttl/kept", "2", Ttl::After { ttl_ms: 10_000 })),
        put_ttl("ttl/kept", "3", Ttl::Keep).into(),
        at(1100, put_ttl("ttl/cleared", "4", Ttl::After { ttl_ms: 50 })),
        put("ttl/cleared", "5").into(),
        push("list/q", &["a", "b", "c"], End::Right),
        push("list/q", &["z"], End::Left),
        list(ListCommand::Pop { key: "list/q".into(), end: End::Right, count: 1 }),
        list(ListCommand::Set { key: "list/q".into(), index: 1, item: b"A".to_vec() }),
        list(ListCommand::Move { source: "list/q".into(), destination: "list/r".into(), from: End::Left, to: End::Right }),
        push("list/q", &["x", "y", "x"], End::Right),
        list(ListCommand::Remove { key: "list/q".into(), count: 0, item: b"x".to_vec() }),
        list(ListCommand::Trim { key: "list/q".into(), start: 0, stop: -2 }),
        push("list/emptied", &["1"], End::Left),
        list(ListCommand::Pop { key: "list/emptied".into(), end: End::Left, count: 5 }),
        push("list/replaced", &["1", "2"], End::Left),
        put("list/replaced", "a string now").into(),
        push("list/expiring", &["1", "2"], End::Left),
        at(1100, KvCommand::Expire { key: "list/expiring".into(), ttl: Ttl::After { ttl_ms: 50 }, precondition: Precondition::None }),
        Command::Tick { advance_ms: 100 }.into(),
        put_flags("flags/kept", "1", 7).into(),
        put_flags("flags/cleared", "2", 8).into(),
        put("flags/cleared", "3").into(),
        put_flags("flags/deleted", "4", u64::MAX).into(),
        Command::Kv(KvCommand::Delete { key: "flags/deleted".into(), precondition: Precondition::None, fence: None }).into(),
    ];
    with_sessions(requests)
}

/// `requests` and then format 5's sessions: one whose key is let go with a lock delay
/// when it is revoked, one whose key goes with it, one a second session could not
/// take from, and one still holding its key. A session's id is its entry's index,
/// which follows `every_primitive` and `requests`.
fn with_sessions(mut requests: Vec<Request>) -> Vec<Request> {
    use super::session::{Behavior, SessionCommand};
    let create =
        |behavior, lock_delay_ms| at(1200, SessionCommand::Create { ttl_ms: 60_000, name: "worker".into(), node: "host-7".into(), behavior, lock_delay_ms });
    let acquire = |key: &str, session| at(1200, SessionCommand::Acquire { key: key.into(), value: b"v".to_vec(), flags: 0, session });
    let next_index = |requests: &Vec<Request>| (every_primitive().len() + requests.len()) as u64 + 1;
    let releasing = next_index(&requests);
    requests.extend([create(Behavior::Release, 5_000), acquire("held/released", releasing)]);
    let deleting = next_index(&requests);
    requests.extend([create(Behavior::Delete, 0), acquire("held/deleted", deleting), acquire("held/released", deleting)]);
    requests.extend([LeaseCommand::Revoke { id: releasing }.into(), LeaseCommand::Revoke { id: deleting }.into()]);
    let keeping = next_index(&requests);
    requests.extend([create(Behavior::Release, 0), acquire("held/kept", keeping)]);
    requests
}

/// `command` as the leader stamps it at `now_ms`.
pub(super) fn at(now_ms: u64, command: impl Into<Command>) -> Request {
    Request { now_ms, ..Request::from(command.into()) }
}

#[tokio::test]
async fn the_same_entries_give_byte_identical_state() {
    let requests: Vec<Request> = every_primitive().into_iter().chain(additions_since_format_3()).collect();
    let (mut one_by_one, mut all_at_once, responses) = apply_one_by_one_and_batched(&requests).await;
    assert!(matches!(responses[17].outcome, Outcome::Lease(LeaseOutcome::Revoked { deleted_keys: 1, .. })), "{:?}", responses[17]);
    assert_eq!(one_by_one.value("short/1"), None);
    assert_eq!(one_by_one.reader.lock("leader").unwrap().value.holder.map(|h| h.lease), Some(2), "the workload handed the lock on");
    assert_eq!(state_bytes(&mut one_by_one).await, state_bytes(&mut all_at_once).await);
}

/// Applies `requests` to one fixture entry by entry and to another in one batch,
/// checks both answered alike, and returns both and the answers.
pub(super) async fn apply_one_by_one_and_batched(requests: &[Request]) -> (Fixture, Fixture, Vec<Response>) {
    let mut one_by_one = Fixture::new();
    let mut responses = Vec::new();
    for request in requests {
        responses.extend(one_by_one.apply_entries(vec![EntryPayload::Normal(request.clone())]).await);
    }
    let mut all_at_once = Fixture::new();
    let batched = all_at_once.apply_entries(requests.iter().cloned().map(EntryPayload::Normal).collect()).await;
    assert_eq!(responses, batched, "the same answers whatever the batching");
    (one_by_one, all_at_once, responses)
}

#[test]
fn input_validation_against_limits() {
    let (key_bytes_max, value_bytes_max) = (8, 4);
    assert_eq!(kv::validate_key("", key_bytes_max), Err(InvalidInput::EmptyKey));
    assert_eq!(kv::validate_key("123456789", key_bytes_max), Err(InvalidInput::KeyTooLarge { len: 9, max: 8 }));
    assert_eq!(kv::validate_key("a\nb", key_bytes_max), Err(InvalidInput::KeyNotPrintable { at: 1 }));
    assert_eq!(kv::validate_key("a/b é", key_bytes_max), Ok(()));
    assert_eq!(kv::validate_value(b"12345", value_bytes_max), Err(InvalidInput::ValueTooLarge { len: 5, max: 4 }));
    assert_eq!(kv::validate_value(b"", value_bytes_max), Ok(()));
}

fn keyed(key: Option<&str>, command: Command) -> Request {
    Request { idempotency_key: key.map(String::from), ..Request::from(command) }
}

/// A batch entry applies its requests in order, each as if it were an entry of its
/// own: its own revision, outcome, precondition and idempotency key.
#[tokio::test]
async fn a_batch_applies_each_request_in_order_with_its_own_outcome() {
    let mut f = Fixture::new();
    let batch = Command::Batch(vec![
        keyed(None, put("a", "1")),
        keyed(Some("k1"), put("b", "1")),
        // Sees the put of "a" just before it in the same entry.
        keyed(None, put_if("a", "2", Precondition::ModRevision(1))),
        keyed(None, put_if("c", "x", Precondition::ModRevision(7))),
        keyed(None, del("b", Precondition::None)),
    ]);
    let Outcome::Batch(responses) = f.apply(batch).await else { panic!("a batch answers with a batch") };
    let outcomes: Vec<Outcome> = responses.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Kv(KvOutcome::Put { revision: 1, meta: meta(1, 1, 1), created: true }),
            Outcome::Kv(KvOutcome::Put { revision: 2, meta: meta(2, 2, 1), created: true }),
            Outcome::Kv(KvOutcome::Put { revision: 3, meta: meta(1, 3, 2), created: false }),
            Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { key: "c".into(), current: None })),
            Outcome::Kv(KvOutcome::Deleted { revision: 4, prev: meta(2, 2, 1) }),
        ]
    );
    assert_eq!((f.value("a"), f.value("b"), f.value("c")), (Some(b"2".to_vec()), None, None));
    assert_eq!(f.revision(), 4);

    // A retry of the keyed put, in a later batch, is replayed, not applied again.
    let retry = Command::Batch(vec![keyed(Some("k1"), put("b", "1")), keyed(None, put("d", "1"))]);
    let Outcome::Batch(responses) = f.apply(retry).await else { panic!("a batch answers with a batch") };
    assert!(responses[0].replayed);
    assert_eq!(responses[0].outcome, Outcome::Kv(KvOutcome::Put { revision: 2, meta: meta(2, 2, 1), created: true }));
    assert!(!responses[1].replayed);
    assert_eq!((f.value("b"), f.revision()), (None, 5));
}

/// Commands whose outcome depends on the entry's index (a lease id is the index) may
/// not share an entry: in a batch they are refused and change nothing.
#[tokio::test]
async fn a_batch_refuses_what_may_not_share_an_entry() {
    let mut f = Fixture::new();
    let batch = Command::Batch(vec![
        keyed(None, Command::Lease(LeaseCommand::Grant { ttl_ms: 10_000 })),
        keyed(None, Command::Lease(LeaseCommand::Grant { ttl_ms: 10_000 })),
        keyed(None, Command::Batch(vec![keyed(None, put("nested", "1"))])),
        keyed(None, put("a", "1")),
    ]);
    let Outcome::Batch(responses) = f.apply(batch).await else { panic!("a batch answers with a batch") };
    let outcomes: Vec<Outcome> = responses.into_iter().map(|r| r.outcome).collect();
    let refused = Outcome::Rejected(Rejection::NotBatchable);
    assert_eq!(outcomes[..3], [refused.clone(), refused.clone(), refused]);
    assert_eq!(outcomes[3], Outcome::Kv(KvOutcome::Put { revision: 1, meta: meta(1, 1, 1), created: true }));
    assert_eq!(f.value("nested"), None);
    assert_eq!(f.apply(Command::Lease(LeaseCommand::Revoke { id: 1 })).await, Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id: 1 })));
}

/// The counts, read from their record, against the keys and expiries counted one by
/// one.
fn counts_match_the_keys(f: &Fixture) {
    let counted = f.reader.key_counts().unwrap().value;
    let store = f.machine.store();
    let view = store.view();
    let count = |cf| view.iter_from(cf, &[]).count() as u64;
    assert_eq!(counted, super::counts::KeyCounts { keys: count(Cf::Kv) + count(Cf::Lists), expiring: count(Cf::KeyExpiry) });
}

#[tokio::test]
async fn the_key_counts_follow_every_way_a_key_comes_and_goes() {
    // Puts, deletes, a prefix delete, a lease's end, a revoke, transactions, expiries
    // set, kept, cleared and reached.
    let mut f = Fixture::new();
    for request in every_primitive().into_iter().chain(additions_since_format_3()) {
        f.apply_keyed(request.idempotency_key.clone().as_deref(), request).await;
        counts_match_the_keys(&f);
    }
    let counted = f.reader.key_counts().unwrap().value;
    assert!(counted.keys > 10 && counted.expiring == 1, "{counted:?}");
    // Counted again from scratch, as after an upgrade: the same.
    let recounted = super::counts::recount(&f.machine.store()).unwrap();
    assert_eq!(recounted, counted);
}
