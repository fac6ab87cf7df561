//! Which cluster a node belongs to, and the check that keeps other clusters out.
//!
//! Every peer RPC carries `Concord-Cluster: <id>`, and a node answers 403, without
//! handing anything to Raft, when the id is not its own. Without it a node of
//! another cluster that reaches this one's address (a reused port, a stale config)
//! would be taken for a member: its votes and appends would disturb the cluster, and
//! a leader receiving appends in its own name trips openraft's invariants.
//!
//! The id is the hash of the initial membership (every initial member computes the
//! same one), or, for a node started with `--join`, the id the cluster it joins
//! reports. It is written to `cluster-id` in the data directory at first start and
//! read from there afterwards, so it never changes for a node. This is a guard
//! against accidents, not authentication: anyone can send the header.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::NodeId;

pub const CLUSTER_HEADER: &str = "concord-cluster";
const FILE_NAME: &str = "cluster-id";

/// The node's cluster id, once known (a joining node learns it from the cluster).
#[derive(Clone, Default)]
pub struct ClusterIdentity {
    id: Arc<OnceLock<String>>,
    file: Option<Arc<PathBuf>>,
}

/// The id of a cluster formed with `members`: FNV-1a 64 of `id=addr,...` in id order.
pub fn id_of(members: &BTreeMap<NodeId, String>) -> String {
    let canonical = members.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",");
    format!("{:016x}", crate::placement::hash(&canonical))
}

impl ClusterIdentity {
    /// Loads the id from `data_dir`, or derives it from `initial_cluster` and stores
    /// it; stays unknown for a joining node until `learn`.
    pub fn open(data_dir: &Path, initial_cluster: &BTreeMap<NodeId, String>) -> std::io::Result<Self> {
        let file = data_dir.join(FILE_NAME);
        let identity = ClusterIdentity { id: Arc::default(), file: Some(Arc::new(file.clone())) };
        match std::fs::read_to_string(&file) {
            Ok(stored) => identity.set(stored.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !initial_cluster.is_empty() => identity.learn(id_of(initial_cluster))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(identity)
    }

    fn set(&self, id: String) {
        let _ = self.id.set(id);
    }

    pub fn get(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    /// Adopts `id` (once) and stores it durably.
    pub fn learn(&self, id: String) -> std::io::Result<()> {
        if let Some(file) = &self.file {
            let mut out = std::fs::File::create(file.as_path())?;
            out.write_all(id.as_bytes())?;
            out.sync_all()?;
        }
        self.set(id);
        Ok(())
    }
}

/// The peer routes' guard: 403 for another cluster's (or no) id, 503 while this node
/// does not know its own yet.
pub async fn require_same_cluster(State(identity): State<ClusterIdentity>, request: Request, next: Next) -> Response {
    let Some(own) = identity.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "this node does not know its cluster yet (it is joining)").into_response();
    };
    let theirs = request.headers().get(CLUSTER_HEADER).and_then(|v| v.to_str().ok());
    if theirs != Some(own) {
        let message = format!("this node belongs to cluster {own}; the request came from {}", theirs.unwrap_or("no cluster"));
        return (StatusCode::FORBIDDEN, message).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_follows_the_membership_and_is_stored() {
        let a: BTreeMap<NodeId, String> = [(1, "h:1".to_string()), (2, "h:2".to_string())].into();
        let b: BTreeMap<NodeId, String> = [(1, "h:1".to_string()), (2, "h:3".to_string())].into();
        assert_ne!(id_of(&a), id_of(&b));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ClusterIdentity::open(dir.path(), &a).unwrap().get(), Some(id_of(&a).as_str()));
        // Once stored, the file wins over flags given later.
        assert_eq!(ClusterIdentity::open(dir.path(), &b).unwrap().get(), Some(id_of(&a).as_str()));
        let joiner = tempfile::tempdir().unwrap();
        let identity = ClusterIdentity::open(joiner.path(), &BTreeMap::new()).unwrap();
        assert_eq!(identity.get(), None);
        identity.learn("abc".into()).unwrap();
        assert_eq!(ClusterIdentity::open(joiner.path(), &BTreeMap::new()).unwrap().get(), Some("abc"));
    }
}
