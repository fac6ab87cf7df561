//! The upgrade from peer protocol and log format 2 (`frames`, `state::v2`): every
//! frame version 2 pinned (`tests/golden/raft-v2.txt`, the golden file of that
//! release) decodes to the current frame of the same name and encodes back to the
//! same bytes, and a log database version 2 left behind is rewritten as it opens.

use std::collections::HashMap;

use openraft::RaftLogReader;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest};

use super::TypeConfig;
use super::frames::Frame;
use super::log_store::LogStore;
use crate::service::{ConsensusError, ForwardedWrite};
use crate::state::command::Response;
use crate::state::v2;
use crate::{codec, golden};

/// `bytes`, a version-2 frame, read as one and written in versions 3 and 2.
fn convert<F: Frame>(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let frame = F::decode_in(bytes, 2).unwrap();
    (frame.encode_in(3).unwrap(), frame.encode_in(2).unwrap())
}

#[test]
fn every_version_2_frame_converts_to_its_current_twin_and_back() {
    let current: HashMap<String, Vec<u8>> = golden::read("raft.txt").into_iter().collect();
    let old = golden::read("raft-v2.txt");
    let added: Vec<&String> = current.keys().filter(|name| !old.iter().any(|(old_name, _)| old_name == *name)).collect();
    // New in version 3: cluster administration, and an answer only the node asked
    // gives (a forbidden write is refused there, never sent to the leader).
    let new_in_3 = |name: &str| name.starts_with("peer.admin.") || name == "peer.write.answer.forbidden";
    assert!(added.iter().all(|name| new_in_3(name)), "only the frames new in version 3 are not in version 2: {added:?}");
    let mut converted = Vec::new();
    for (name, bytes) in old {
        let (up, down) = match name.as_str() {
            name if name.starts_with("log.entry.") => {
                let entry = v2::entry_up(codec::decode(&bytes).unwrap());
                (codec::encode(&entry).unwrap(), codec::encode(&v2::entry_down(entry)).unwrap())
            }
            "peer.append.request" => convert::<AppendEntriesRequest<TypeConfig>>(&bytes),
            "peer.write.request.open" | "peer.write.request.token" => convert::<ForwardedWrite>(&bytes),
            name if name.starts_with("peer.write.answer.") => convert::<Result<Response, ConsensusError>>(&bytes),
            "peer.snapshot.request" => {
                let request = InstallSnapshotRequest::<TypeConfig>::decode_in(&bytes, 2).unwrap();
                assert!(request.encode_in(2).is_err(), "no snapshot of this release goes to a node of version 2");
                (request.encode_in(3).unwrap(), bytes.clone())
            }
            // The vote and log ids, and frames no version changed: the same bytes.
            _ => (bytes.clone(), bytes.clone()),
        };
        assert_eq!(Some(&up), current.get(&name), "{name}: upgraded, it is the current frame");
        assert_eq!(down, bytes, "{name}: and down again, the version-2 bytes");
        if up != bytes {
            converted.push(name);
        }
    }
    assert_eq!(converted, ["log.entry.normal", "peer.append.request", "peer.write.request.open", "peer.write.request.token", "peer.write.answer.ok"]);
}

#[tokio::test]
async fn a_version_2_log_is_rewritten_as_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let old: HashMap<String, Vec<u8>> = golden::read("raft-v2.txt").into_iter().collect();
    let current: HashMap<String, Vec<u8>> = golden::read("raft.txt").into_iter().collect();
    let kinds = ["blank", "normal", "membership"];
    {
        // The log database as version 2 wrote it: entries 10 to 12, stamped 2.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, dir.path(), ["logs", "meta"]).unwrap();
        for (index, kind) in (10u64..).zip(kinds) {
            db.put_cf(db.cf_handle("logs").unwrap(), index.to_be_bytes(), &old[&format!("log.entry.{kind}")]).unwrap();
        }
        db.put_cf(db.cf_handle("meta").unwrap(), crate::format_version::FORMAT_VERSION_KEY, 2u32.to_le_bytes()).unwrap();
    }
    let mut log = LogStore::open(dir.path()).unwrap();
    let entries = log.try_get_log_entries(10..13).await.unwrap();
    let read: Vec<Vec<u8>> = entries.iter().map(|entry| codec::encode(entry).unwrap()).collect();
    let expected: Vec<Vec<u8>> = kinds.iter().map(|kind| current[&format!("log.entry.{kind}")].clone()).collect();
    assert_eq!(read, expected, "each entry as the current release writes it");
    drop(log);
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), ["logs", "meta"]).unwrap();
    let stamped = db.get_cf(db.cf_handle("meta").unwrap(), crate::format_version::FORMAT_VERSION_KEY).unwrap();
    assert_eq!(stamped, Some(crate::format_version::LOG_FORMAT.current().to_le_bytes().to_vec()));
}
