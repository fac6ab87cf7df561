//! Fuzzing the decoders that read bytes a peer (or anyone who reaches `/raft/*`) sent:
//! the peer RPC frames (`/raft/append`, `/raft/vote`, `/raft/snapshot`, whose entries
//! carry every `Command`), the answers a node decodes from its peers, and a bare
//! `Request` (the command as stored in the log).
//!
//! A seeded mutation fuzzer, with no extra dependency and the same inputs every run:
//! it starts from valid frames of every kind, every command, outcome and rejection
//! (the samples pinned in `tests/golden/`, so a new one is fuzzed once pinned), and
//! derives inputs by
//! truncating them at every length, flipping bits, overwriting bytes, planting huge
//! length prefixes, duplicating slices, and by pure noise, up to oversized frames.
//! Every input must decode to a value or to an error, never panic, and allocate at
//! most `ALLOC_PER_INPUT_BYTE` × its length + `ALLOC_SLACK_BYTES` at the peak: a
//! length prefix that claims gigabytes must not be believed.
//!
//! `CONCORD_FUZZ_ITERATIONS` (default 1500 per seed frame) makes a longer run by hand:
//! `CONCORD_FUZZ_ITERATIONS=200000 cargo test --release --test decoder_fuzz -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use concord::admin::{AdminAnswer, AdminError, ForwardedAdmin};
use concord::codec;
use concord::raft::frames::Frame;
use concord::raft::{Entry, NodeId, TypeConfig};
use concord::service::{Authority, ConsensusError, ForwardedWrite};
use concord::state::command::{Outcome, Request, Response};
use concord::state::txn::TxnOp;
use concord::state::v2;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, LogId, SnapshotMeta, Vote};

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

/// A decoder under test: the type it decodes, by name, and the call.
struct Target {
    name: &'static str,
    decode: fn(&[u8]) -> bool,
}

fn target<T: serde::de::DeserializeOwned>(name: &'static str) -> Target {
    Target { name, decode: |bytes| codec::decode::<T>(bytes).is_ok() }
}

/// The decoder of a pinned sample, by its name in `tests/golden/`.
fn target_of(name: &str) -> Option<Target> {
    let prefixed = |prefix: &str| name.starts_with(prefix);
    Some(match name {
        _ if prefixed("command.") => target::<Request>("Request"),
        _ if prefixed("outcome.") => target::<Response>("Response"),
        _ if prefixed("rejection.") => target::<Outcome>("Outcome"),
        _ if prefixed("txn_op.") => target::<TxnOp>("TxnOp"),
        _ if prefixed("log.vote") => target::<Vote<NodeId>>("Vote"),
        "log.log_id" => target::<Option<LogId<NodeId>>>("log id"),
        _ if prefixed("log.entry.") => target::<Entry>("Entry"),
        "snapshot.meta" => target::<SnapshotMeta<NodeId, BasicNode>>("SnapshotMeta"),
        "peer.append.request" => target::<AppendEntriesRequest<TypeConfig>>("AppendEntriesRequest"),
        _ if prefixed("peer.append.answer.") => target::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>("append answer"),
        "peer.vote.request" => target::<VoteRequest<NodeId>>("VoteRequest"),
        "peer.vote.answer" => target::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>("vote answer"),
        "peer.snapshot.request" => target::<InstallSnapshotRequest<TypeConfig>>("InstallSnapshotRequest"),
        _ if prefixed("peer.snapshot.answer.") => target::<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>>("snapshot answer"),
        _ if prefixed("peer.write.request.") => target::<ForwardedWrite>("forwarded write"),
        _ if prefixed("peer.write.answer.") => target::<Result<Response, ConsensusError>>("forwarded write's answer"),
        "peer.read_index.request" => target::<Authority>("read index request"),
        _ if prefixed("peer.read_index.answer.") => target::<Result<u64, ConsensusError>>("read index answer"),
        _ if prefixed("peer.admin.request.") => target::<ForwardedAdmin>("administration request"),
        _ if prefixed("peer.admin.answer.") => target::<Result<AdminAnswer, AdminError>>("administration answer"),
        _ => return None,
    })
}

/// The decoder of a sample the previous release pinned (`*-v2.txt`), as a node reads
/// it from a peer of that release (`raft::frames`) or from a database it upgrades.
fn target_of_v2(name: &str) -> Option<Target> {
    let prefixed = |prefix: &str| name.starts_with(prefix);
    Some(match name {
        _ if prefixed("command.") => target::<v2::Request>("version-2 Request"),
        _ if prefixed("outcome.") => target::<v2::Response>("version-2 Response"),
        _ if prefixed("rejection.") => target::<v2::Outcome>("version-2 Outcome"),
        _ if prefixed("log.entry.") => target::<v2::Entry>("version-2 Entry"),
        "peer.append.request" => frame::<AppendEntriesRequest<TypeConfig>>("version-2 AppendEntriesRequest"),
        _ if prefixed("peer.write.request.") => frame::<ForwardedWrite>("version-2 forwarded write"),
        _ if prefixed("peer.write.answer.") => frame::<Result<Response, ConsensusError>>("version-2 forwarded write's answer"),
        _ => return target_of(name),
    })
}

/// How a golden file's samples find their decoders.
type TargetOf = fn(&str) -> Option<Target>;

fn frame<F: Frame>(name: &'static str) -> Target {
    Target { name, decode: |bytes| F::decode_in(bytes, 2).is_ok() }
}

/// Valid encodings of every frame, each with the decoder that reads it: the samples
/// pinned in `tests/golden/` (every command, outcome and rejection; the vote, log
/// entries, and every peer frame and answer), so whatever is pinned is fuzzed too;
/// and those of the previous release, which a node still reads.
fn seeds() -> Vec<(Vec<u8>, Target)> {
    let mut seeds = Vec::new();
    let files: [(&str, TargetOf); 4] = [("commands.txt", target_of), ("raft.txt", target_of), ("commands-v2.txt", target_of_v2), ("raft-v2.txt", target_of_v2)];
    for (file, target_of) in files {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in text.lines() {
            let (name, hex) = line.split_once(' ').unwrap_or_else(|| panic!("{file}: not `name hex`: {line}"));
            let target = target_of(name).unwrap_or_else(|| panic!("{file}: no decoder for the pinned sample {name}"));
            let bytes = (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect();
            seeds.push((bytes, target));
        }
    }
    seeds
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
    // An empty frame (the read-index request is `()`) grows a byte to mutate.
    if bytes.is_empty() {
        bytes.push(rng.next() as u8);
    }
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
    let iterations: usize = std::env::var("CONCORD_FUZZ_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(1500);
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
