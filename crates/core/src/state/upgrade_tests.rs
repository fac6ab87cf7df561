//! The upgrade from format version 2 (`v2`). The frozen encoding must read and write
//! exactly the bytes version 2 pinned (`tests/golden/*-v2.txt`, the golden files of
//! that release), and a state database version 2 left behind, opened in place or
//! installed from a snapshot, must become the current one: the same records, and
//! every remembered request still recognised when it is retried.

use std::collections::HashMap;

use super::command::{Outcome, Request, Response};
use super::format_tests::of_format_4;
use super::machine::CACHE_BYTES_DEFAULT;
use super::snapshot::SnapshotFiles;
use super::store::{Cf, StateStore};
use super::tests::{Fixture, additions_since_format_3, every_primitive, receive, state_lines};
use super::v2;
use crate::{codec, golden};

#[test]
fn every_version_2_sample_converts_to_its_current_twin_and_back() {
    let mut current: HashMap<String, Vec<u8>> = golden::read("commands.txt").into_iter().collect();
    current.retain(|name, _| !of_format_4(name));
    let old = golden::read("commands-v2.txt");
    assert_eq!(old.len(), current.len(), "one version-2 sample per current one");
    for (name, bytes) in old {
        let (up, down) = match name.split('.').next() {
            Some("command") => {
                let request = Request::from(codec::decode::<v2::Request>(&bytes).unwrap());
                (codec::encode(&request).unwrap(), codec::encode(&v2::Request::from(request)).unwrap())
            }
            Some("outcome") => {
                let response = Response::from(codec::decode::<v2::Response>(&bytes).unwrap());
                (codec::encode(&response).unwrap(), codec::encode(&v2::Response::from(response)).unwrap())
            }
            _ => {
                let outcome = Outcome::from(codec::decode::<v2::Outcome>(&bytes).unwrap());
                (codec::encode(&outcome).unwrap(), codec::encode(&v2::Outcome::from(outcome)).unwrap())
            }
        };
        assert_eq!(Some(&up), current.get(&name), "{name}: upgraded, it is the current sample");
        assert_eq!(down, bytes, "{name}: and down again, the version-2 bytes");
    }
}

/// The state database version 2 left after `every_primitive` (pinned by that
/// release), written record by record under `dir`.
fn version_2_store(dir: &std::path::Path) -> StateStore {
    let store = StateStore::open(&dir.join("state"), CACHE_BYTES_DEFAULT).unwrap();
    for (name, value) in golden::read("state-v2.txt") {
        let (family, key) = name.split_once(' ').unwrap();
        let cf = *Cf::ALL.iter().find(|cf| cf.name() == family).unwrap();
        let key: Vec<u8> = (0..key.len()).step_by(2).map(|at| u8::from_str_radix(&key[at..at + 2], 16).unwrap()).collect();
        store.db().put_cf(store.cf(cf), key, value).unwrap();
    }
    store.sync().unwrap();
    store
}

/// `f`, given what format 4 added, holds what the current release holds after
/// `every_primitive` and those, but for the fingerprints of the remembered requests,
/// and each keyed request retried is answered from the table as the first time.
async fn check_upgraded(f: &mut Fixture) {
    f.continue_after_applied().await;
    for request in additions_since_format_3() {
        f.apply(request).await;
    }
    let pinned: Vec<String> =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/state.txt")).unwrap().lines().map(String::from).collect();
    let fingerprinted = |line: &String| line.starts_with("idem ");
    let now = state_lines(f).await;
    assert_eq!(now.iter().filter(|l| !fingerprinted(l)).collect::<Vec<_>>(), pinned.iter().filter(|l| !fingerprinted(l)).collect::<Vec<_>>());
    assert_eq!(now.iter().filter(|l| fingerprinted(l)).count(), pinned.iter().filter(|l| fingerprinted(l)).count());

    let mut fresh = Fixture::new();
    let mut retried = 0;
    for request in every_primitive() {
        let key = request.idempotency_key.clone();
        let first = fresh.apply_keyed(key.as_deref(), request.clone()).await;
        if key.is_some() {
            let again = f.apply_keyed(key.as_deref(), Request { now_ms: request.now_ms + 1, ..request }).await;
            assert_eq!(again, Response { replayed: true, outcome: first.outcome }, "{key:?}");
            retried += 1;
        }
    }
    assert_eq!(retried, 26);
}

#[tokio::test]
async fn a_version_2_state_database_is_upgraded_as_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    drop(version_2_store(dir.path()));
    check_upgraded(&mut Fixture::open_in(dir).await).await;
}

#[tokio::test]
async fn a_version_2_snapshot_is_upgraded_as_it_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let store = version_2_store(dir.path());
    let files = SnapshotFiles::open(&dir.path().join("snapshots")).unwrap();
    let meta = files.build(&store, "v2").unwrap();
    let (_, mut file) = files.current().unwrap().unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).unwrap();
    let mut target = Fixture::new();
    receive(&mut target, &meta, &bytes).await.unwrap();
    check_upgraded(&mut target).await;
}
