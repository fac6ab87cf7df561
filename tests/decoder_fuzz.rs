//! Fuzzing the decoders that read bytes a peer (or anyone who reaches `/raft/*`) sent:
//! the peer RPC frames (`/raft/append`, `/raft/vote`, `/raft/snapshot`, whose entries
//! carry every `Command`), the answers a node decodes from its peers, and a bare
//! `Request` (the command as stored in the log).
//!
//! A seeded mutation fuzzer, with no extra dependency and the same inputs every run:
//! it starts from valid frames of every kind and every command, and derives inputs by
//! truncating them at every length, flipping bits, overwriting bytes, planting huge
//! length prefixes, duplicating slices, and by pure noise, up to oversized frames.
//! Every input must decode to a value or to an error, never panic, and allocate at
//! most `ALLOC_PER_INPUT_BYTE` × its length + `ALLOC_SLACK_BYTES` at the peak: a
//! length prefix that claims gigabytes must not be believed.
//!
//! `CONCORD_FUZZ_ITERATIONS` (default 4000 per seed frame) makes a longer run by hand:
//! `CONCORD_FUZZ_ITERATIONS=200000 cargo test --release --test decoder_fuzz -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use concord::codec;
use concord::raft::{Entry, NodeId, TypeConfig};
use concord::state::command::{Command, Fence, Precondition, Receipt, Request, Response};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote};

const ALLOC_PER_INPUT_BYTE: usize = 16;
const ALLOC_SLACK_BYTES: usize = 4 << 20;

// --- allocation accounting, per thread ------------------------------------------

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; the thread-local
// cells only count (const-initialized, no destructor, so no allocation of their own).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + layout.size());
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get().saturating_sub(layout.size()) + new_size);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak of `run`, above what was live before it.
fn peak_allocation(run: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    run();
    PEAK.with(Cell::get).saturating_sub(base)
}

// --- the seed frames --------------------------------------------------------------

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(3, 1), index)
}

fn request(command: Command) -> Request {
    Request { idempotency_key: Some("retry-7f3a".into()), command }
}

/// One request of every command.
fn every_command() -> Vec<Request> {
    let fence = Some(Fence { lock: "db-writer".into(), token: 41 });
    let receipt = Receipt { id: 9, delivery: 2 };
    let put = Command::Put {
        key: "config/a".into(),
        value: b"value \x00\xff".to_vec(),
        precondition: Precondition::ModRevision(5),
        lease: Some(12),
        fence: fence.clone(),
    };
    [
        put.clone(),
        Command::Delete { key: "config/b".into(), precondition: Precondition::Exists, fence },
        Command::Tick { advance_ms: 250 },
        Command::LeaseGrant { ttl_ms: 10_000, now_ms: 77 },
        Command::LeaseKeepAlive { id: 12, now_ms: 78 },
        Command::LeaseRevoke { id: 12 },
        Command::LockAcquire { name: "db-writer".into(), lease: 12, wait: true },
        Command::LockRelease { name: "db-writer".into(), token: 41 },
        Command::LockCancelWait { name: "db-writer".into(), lease: 12 },
        Command::RingJoin(concord::state::ring::Join {
            ring: "cache".into(),
            member: "m1".into(),
            address: "10.0.0.1:80".into(),
            weight: 2,
            metadata: "zone=a".into(),
            lease: Some(12),
        }),
        Command::RingLeave { ring: "cache".into(), member: "m1".into() },
        Command::QueueConfigure { queue: "jobs".into(), settings: Default::default() },
        Command::QueueEnqueue { queue: "jobs".into(), payload: b"job 1".to_vec(), delay_ms: 5, now_ms: 79 },
        Command::QueueReceive { queue: "jobs".into(), max: 10, visibility_ms: Some(30_000), now_ms: 80 },
        Command::QueueAck { queue: "jobs".into(), receipt },
        Command::QueueNack { queue: "jobs".into(), receipt, delay_ms: 0, now_ms: 81 },
        Command::QueueExtend { queue: "jobs".into(), receipt, visibility_ms: 1000, now_ms: 82 },
        Command::QueueDelete { queue: "jobs".into() },
        Command::TopicConfigure { topic: "events".into(), settings: Default::default() },
        Command::TopicPublish { topic: "events".into(), payload: b"event".to_vec(), now_ms: 83 },
        Command::TopicDelete { topic: "events".into() },
        Command::Batch(vec![request(put.clone()), request(put)]),
        Command::TokenCreate(concord::state::auth::TokenRecord {
            name: "ci".into(),
            role: concord::state::auth::Role::Write,
            prefixes: vec!["app/".into()],
            secret_sha256: [0xab; 32],
        }),
        Command::TokenRevoke { id: 3 },
        Command::AuthEnable { by: 2 },
        Command::AuthDisable,
        Command::DeletePrefix { prefix: "jobs/".into() },
    ]
    .into_iter()
    .map(request)
    .collect()
}

fn membership() -> Membership<NodeId, BasicNode> {
    let nodes = (1..=3).map(|id| (id, BasicNode { addr: format!("127.0.0.1:700{id}") }));
    Membership::new(vec![[1, 2, 3].into()], nodes.collect::<std::collections::BTreeMap<_, _>>())
}

/// A decoder under test: the type it decodes, by name, and the call.
struct Target {
    name: &'static str,
    decode: fn(&[u8]) -> bool,
}

fn target<T: serde::de::DeserializeOwned>(name: &'static str) -> Target {
    Target { name, decode: |bytes| codec::decode::<T>(bytes).is_ok() }
}

/// Valid encodings of every frame, each with the decoder that reads it.
fn seeds() -> Vec<(Vec<u8>, Target)> {
    let vote = Vote::new_committed(3, 1);
    let mut entries: Vec<Entry> =
        every_command().into_iter().enumerate().map(|(i, r)| Entry { log_id: log_id(10 + i as u64), payload: EntryPayload::Normal(r) }).collect();
    entries.push(Entry { log_id: log_id(40), payload: EntryPayload::Blank });
    entries.push(Entry { log_id: log_id(41), payload: EntryPayload::Membership(membership()) });
    let append: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest { vote, prev_log_id: Some(log_id(9)), leader_commit: Some(log_id(9)), entries };
    let snapshot: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
        vote,
        meta: SnapshotMeta {
            last_log_id: Some(log_id(41)),
            last_membership: StoredMembership::new(Some(log_id(41)), membership()),
            snapshot_id: "3-41-1".into(),
        },
        offset: 1 << 20,
        data: (0..=255u8).cycle().take(4096).collect(),
        done: false,
    };
    let encode = |value: &dyn erased::Encode| value.encode();
    let mut seeds = vec![
        (encode(&append), target::<AppendEntriesRequest<TypeConfig>>("AppendEntriesRequest")),
        (encode(&VoteRequest::new(vote, Some(log_id(41)))), target::<VoteRequest<NodeId>>("VoteRequest")),
        (encode(&snapshot), target::<InstallSnapshotRequest<TypeConfig>>("InstallSnapshotRequest")),
        (
            encode(&Ok::<_, RaftError<NodeId>>(AppendEntriesResponse::<NodeId>::Success)),
            target::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>("append answer"),
        ),
        (
            encode(&Ok::<_, RaftError<NodeId>>(VoteResponse::new(vote, Some(log_id(41)), true))),
            target::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>("vote answer"),
        ),
        (
            encode(&Ok::<_, RaftError<NodeId, InstallSnapshotError>>(InstallSnapshotResponse { vote })),
            target::<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>>("snapshot answer"),
        ),
        (encode(&Response::fresh(concord::state::command::Outcome::Noop)), target::<Response>("Response")),
    ];
    seeds.extend(every_command().iter().map(|r| (encode(r), target::<Request>("Request"))));
    seeds
}

/// `codec::encode` for values of different types in one list.
mod erased {
    pub trait Encode {
        fn encode(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            concord::codec::encode(self).expect("a seed frame encodes")
        }
    }
}

// --- mutation ---------------------------------------------------------------------

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Varint encodings of lengths no frame could hold.
const HUGE_VARINTS: [&[u8]; 3] =
    [&[0xff, 0xff, 0xff, 0xff, 0x0f], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &[0x80, 0x80, 0x80, 0x80, 0x08]];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
        }
        2 => {
            let at = rng.below(bytes.len() + 1);
            let huge = HUGE_VARINTS[rng.below(HUGE_VARINTS.len())];
            bytes.splice(at..at, huge.iter().copied());
        }
        3 => {
            let from = rng.below(bytes.len());
            let to = from + rng.below(bytes.len() - from + 1);
            let slice = bytes[from..to].to_vec();
            let at = rng.below(bytes.len() + 1);
            for _ in 0..=rng.below(64) {
                bytes.splice(at..at, slice.iter().copied());
            }
        }
        4 => bytes.truncate(rng.below(bytes.len())),
        _ => bytes = (0..rng.below(512)).map(|_| rng.next() as u8).collect(),
    }
    bytes
}

/// Decodes `input` with `target`: no panic, bounded allocation; true if it decoded.
fn check(target: &Target, input: &[u8]) -> bool {
    let mut outcome = None;
    let peak = peak_allocation(|| outcome = Some(catch_unwind(AssertUnwindSafe(|| (target.decode)(input)))));
    let bound = ALLOC_PER_INPUT_BYTE * input.len() + ALLOC_SLACK_BYTES;
    let shown = &input[..input.len().min(64)];
    match outcome {
        Some(Ok(decoded)) => {
            assert!(peak <= bound, "{}: decoding {} bytes allocated {peak} bytes (bound {bound}); input starts {shown:02x?}", target.name, input.len());
            decoded
        }
        _ => panic!("{}: decoding panicked on {} bytes starting {shown:02x?}", target.name, input.len()),
    }
}

#[test]
fn hostile_frames_are_rejected_without_panics_or_unbounded_allocation() {
    let iterations: usize = std::env::var("CONCORD_FUZZ_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(4000);
    // Panics are caught and reported by `check`; keep the default hook quiet about them.
    let seeds = seeds();
    let mut tried = 0usize;
    let mut decoded = 0usize;
    for (index, (seed, target)) in seeds.iter().enumerate() {
        assert!(check(target, seed), "{}: the seed frame itself decodes", target.name);
        for length in 0..seed.len() {
            assert!(!check(target, &seed[..length]), "{}: a frame truncated to {length} of {} bytes decoded", target.name, seed.len());
            tried += 1;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
        for _ in 0..iterations {
            decoded += usize::from(check(target, &mutate(seed, &mut rng)));
            tried += 1;
        }
    }
    // Oversized frames: 16 MiB of noise, and a valid length prefix of 16 MiB with
    // nothing behind it, for every decoder.
    let mut rng = Rng(7);
    let noise: Vec<u8> = (0..16 << 20).map(|_| rng.next() as u8).collect();
    for (_, target) in &seeds {
        check(target, &noise);
        check(target, &[0x80, 0x80, 0x80, 0x08]);
        tried += 2;
    }
    eprintln!("decoder fuzz: {tried} inputs over {} seed frames, {decoded} of the mutated ones still decoded", seeds.len());
    assert!(tried > seeds.len() * iterations);
}
