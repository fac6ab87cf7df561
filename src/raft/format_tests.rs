//! Consensus formats, pinned (`crate::golden`, `tests/golden/raft.txt`): what the log
//! store writes (the vote, the committed and purged log ids, entries of every kind)
//! and every peer frame, requests and answers, as `peer_server` and `network`
//! exchange them.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use openraft::{CommittedLeaderId, EntryPayload, Membership, SnapshotSegmentId, Vote};

use super::{Entry, LogId, Node, NodeId, SnapshotMeta, StoredMembership, TypeConfig};
use crate::admin::{AdminAnswer, AdminError, AdminRequest, ForwardedAdmin};
use crate::codec::encode;
use crate::golden;
use crate::service::{Authority, ConsensusError, ForwardedWrite};
use crate::state::command::{Command, KeyMeta, Outcome, Precondition, Request, Response};
use crate::state::kv::{KvCommand, KvOutcome};
use crate::wire::cluster::{ClusterStatus, LastContact, MemberAdded, MemberRemoved, MemberStatus, NodeStatus, SnapshotBuilt};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn membership() -> Membership<NodeId, Node> {
    let nodes: BTreeMap<NodeId, Node> = (1..=3).map(|id| (id, Node { addr: format!("127.0.0.1:700{id}") })).collect();
    Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
}

fn entries() -> Vec<(&'static str, Entry)> {
    let put = Command::Kv(KvCommand::Put { key: "k".into(), value: b"v".to_vec(), precondition: Precondition::None, lease: None, fence: None });
    vec![
        ("blank", Entry { log_id: log_id(2, 10), payload: EntryPayload::Blank }),
        ("normal", Entry { log_id: log_id(2, 11), payload: EntryPayload::Normal(Request { idempotency_key: Some("key-1".into()), ..Request::from(put) }) }),
        ("membership", Entry { log_id: log_id(2, 12), payload: EntryPayload::Membership(membership()) }),
    ]
}

#[test]
fn the_log_and_every_peer_frame_encode_as_pinned() {
    let vote = Vote::new_committed(2, 1);
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(2, 12)),
        last_membership: StoredMembership::new(Some(log_id(1, 1)), membership()),
        snapshot_id: "2-12-1700000000".into(),
    };
    let mut lines = vec![
        golden::line("log.vote", &encode(&vote).unwrap()),
        golden::line("log.vote_uncommitted", &encode(&Vote::new(3, 2)).unwrap()),
        golden::line("log.log_id", &encode(&Some(log_id(2, 12))).unwrap()),
        golden::line("snapshot.meta", &encode(&meta).unwrap()),
    ];
    for (name, entry) in entries() {
        lines.push(golden::line(&format!("log.entry.{name}"), &encode(&entry).unwrap()));
    }
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(log_id(2, 9)),
        entries: entries().into_iter().map(|(_, e)| e).collect(),
        leader_commit: Some(log_id(2, 9)),
    };
    lines.push(golden::line("peer.append.request", &encode(&append).unwrap()));
    type AppendAnswer = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
    let append_answers: [(&str, AppendAnswer); 5] = [
        ("success", Ok(AppendEntriesResponse::Success)),
        ("partial", Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(2, 11))))),
        ("conflict", Ok(AppendEntriesResponse::Conflict)),
        ("higher_vote", Ok(AppendEntriesResponse::HigherVote(Vote::new(3, 2)))),
        ("stopped", Err(RaftError::Fatal(Fatal::Stopped))),
    ];
    for (name, answer) in append_answers {
        lines.push(golden::line(&format!("peer.append.answer.{name}"), &encode(&answer).unwrap()));
    }
    let vote_request = VoteRequest { vote: Vote::new(3, 2), last_log_id: Some(log_id(2, 12)) };
    lines.push(golden::line("peer.vote.request", &encode(&vote_request).unwrap()));
    let vote_answer: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
        Ok(VoteResponse { vote: Vote::new(3, 2), vote_granted: true, last_log_id: Some(log_id(2, 12)) });
    lines.push(golden::line("peer.vote.answer", &encode(&vote_answer).unwrap()));
    let chunk = InstallSnapshotRequest::<TypeConfig> { vote, meta, offset: 4096, data: vec![1, 2, 3], done: false };
    lines.push(golden::line("peer.snapshot.request", &encode(&chunk).unwrap()));
    type SnapshotAnswer = Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;
    let mismatch = SnapshotMismatch { expect: SnapshotSegmentId { id: "a".into(), offset: 0 }, got: SnapshotSegmentId { id: "a".into(), offset: 4096 } };
    let snapshot_answers: [(&str, SnapshotAnswer); 2] =
        [("ok", Ok(InstallSnapshotResponse { vote })), ("mismatch", Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch))))];
    for (name, answer) in snapshot_answers {
        lines.push(golden::line(&format!("peer.snapshot.answer.{name}"), &encode(&answer).unwrap()));
    }
    // A follower's calls at the command level (`raft::leader_link`).
    let Some((_, Entry { payload: EntryPayload::Normal(request), .. })) = entries().into_iter().nth(1) else { unreachable!("entry 1 is normal") };
    for (name, authority) in [("open", Authority::NoTokenRequired), ("token", Authority::Token(7))] {
        let forwarded = ForwardedWrite { authority, request: request.clone() };
        lines.push(golden::line(&format!("peer.write.request.{name}"), &encode(&forwarded).unwrap()));
    }
    let written =
        Response::fresh(Outcome::Kv(KvOutcome::Put { revision: 5, meta: KeyMeta { create_revision: 5, mod_revision: 5, version: 1 }, created: true }));
    lines.push(golden::line("peer.write.answer.ok", &encode(&Ok::<_, ConsensusError>(written)).unwrap()));
    for error in consensus_errors() {
        let name = consensus_error_variant(&error);
        lines.push(golden::line(&format!("peer.write.answer.{name}"), &encode(&Err::<Response, _>(error)).unwrap()));
    }
    lines.push(golden::line("peer.read_index.request", &encode(&Authority::Token(7)).unwrap()));
    lines.push(golden::line("peer.read_index.answer.ok", &encode(&Ok::<u64, ConsensusError>(42)).unwrap()));
    lines.extend(admin_frames());
    golden::check("raft.txt", &lines);
}

/// Cluster administration sent to the leader (`/raft/admin`): every request and every
/// answer, by its variant (no wildcard, so a new one must be sampled).
fn admin_frames() -> Vec<String> {
    let requests =
        [AdminRequest::Status, AdminRequest::AddMember { id: 4, addr: "127.0.0.1:7004".into() }, AdminRequest::RemoveMember { id: 4 }, AdminRequest::Snapshot];
    let mut lines = Vec::new();
    for request in requests {
        let name = match request {
            AdminRequest::Status => "status",
            AdminRequest::AddMember { .. } => "add_member",
            AdminRequest::RemoveMember { .. } => "remove_member",
            AdminRequest::Snapshot => "snapshot",
        };
        lines.push(golden::line(&format!("peer.admin.request.{name}"), &encode(&ForwardedAdmin { authority: Authority::Token(7), request }).unwrap()));
    }
    let contact = LastContact { ok: false, answered: true, error: Some("answered 401".into()), ms_ago: 1500 };
    let member = |id: u64, role: &str| MemberStatus { id, addr: format!("127.0.0.1:700{id}"), role: role.into(), matched_index: Some(12), last_contact: None };
    let status = ClusterStatus {
        node: NodeStatus { id: 1, state: "leader".into(), log_fsyncs: 99 },
        cluster_id: Some("0123456789abcdef".into()),
        leader: Some(1),
        term: 2,
        last_log_index: Some(12),
        commit_index: Some(12),
        applied_index: Some(12),
        snapshot_index: None,
        purged_index: None,
        membership_log_index: Some(1),
        members: vec![member(1, "leader"), MemberStatus { last_contact: Some(contact), ..member(2, "learner") }],
    };
    let answers = vec![
        Ok(AdminAnswer::Status(status)),
        Ok(AdminAnswer::Added(MemberAdded { id: 4, addr: "127.0.0.1:7004".into(), role: "voter".into(), changed: false, membership_log_index: None })),
        Ok(AdminAnswer::Removed(MemberRemoved { id: 4, removed: true, membership_log_index: 15 })),
        Ok(AdminAnswer::Snapshot(SnapshotBuilt { built: true, snapshot_index: Some(12), requested_index: None })),
        Err(AdminError::Consensus(ConsensusError::NotLeader(2))),
        Err(AdminError::InvalidId),
        Err(AdminError::InvalidAddr("nowhere".into())),
        Err(AdminError::MemberIdInUse { id: 4, known: "127.0.0.1:7005".into() }),
        Err(AdminError::MemberNotFound(4)),
        Err(AdminError::LastVoter),
        Err(AdminError::MembershipConflict("in progress".into())),
        Err(AdminError::Unavailable("raft is not running".into())),
        Err(AdminError::OutcomeUnknown("lost".into())),
    ];
    for answer in answers {
        let name = match &answer {
            Ok(AdminAnswer::Status(_)) => "status",
            Ok(AdminAnswer::Added(_)) => "added",
            Ok(AdminAnswer::Removed(_)) => "removed",
            Ok(AdminAnswer::Snapshot(_)) => "snapshot",
            Err(AdminError::Consensus(_)) => "consensus",
            Err(AdminError::InvalidId) => "invalid_id",
            Err(AdminError::InvalidAddr(_)) => "invalid_addr",
            Err(AdminError::MemberIdInUse { .. }) => "member_id_in_use",
            Err(AdminError::MemberNotFound(_)) => "member_not_found",
            Err(AdminError::LastVoter) => "last_voter",
            Err(AdminError::MembershipConflict(_)) => "membership_conflict",
            Err(AdminError::Unavailable(_)) => "unavailable",
            Err(AdminError::OutcomeUnknown(_)) => "outcome_unknown",
        };
        lines.push(golden::line(&format!("peer.admin.answer.{name}"), &encode(&answer).unwrap()));
    }
    lines
}

/// Names a consensus error by its variant; no wildcard, so a new one must be sampled.
fn consensus_error_variant(error: &ConsensusError) -> &'static str {
    match error {
        ConsensusError::NotLeader(_) => "not_leader",
        ConsensusError::NoLeader => "no_leader",
        ConsensusError::LeaderUnreachable(_) => "leader_unreachable",
        ConsensusError::UpgradeInProgress { .. } => "upgrade_in_progress",
        ConsensusError::TokenRequired => "token_required",
        ConsensusError::TokenRevoked(_) => "token_revoked",
        ConsensusError::LeaderTakingOver => "leader_taking_over",
        ConsensusError::NoQuorum { .. } => "no_quorum",
        ConsensusError::Busy => "busy",
        ConsensusError::ClockNotReady => "clock_not_ready",
        ConsensusError::ReadNotConfirmed(_) => "read_not_confirmed",
        ConsensusError::OutcomeUnknown(_) => "outcome_unknown",
        ConsensusError::Forbidden(_) => "forbidden",
    }
}

fn consensus_errors() -> Vec<ConsensusError> {
    let errors = vec![
        ConsensusError::NotLeader(2),
        ConsensusError::NoLeader,
        ConsensusError::LeaderUnreachable("no connection".into()),
        ConsensusError::UpgradeInProgress { node: 3, spoken: 1 },
        ConsensusError::TokenRequired,
        ConsensusError::TokenRevoked(7),
        ConsensusError::LeaderTakingOver,
        ConsensusError::NoQuorum { silent_ms: 900, limit_ms: 600 },
        ConsensusError::Busy,
        ConsensusError::ClockNotReady,
        ConsensusError::ReadNotConfirmed("late".into()),
        ConsensusError::OutcomeUnknown("lost".into()),
        ConsensusError::Forbidden("token 7 has role read".into()),
    ];
    let names: std::collections::BTreeSet<_> = errors.iter().map(consensus_error_variant).collect();
    assert_eq!(names.len(), 13, "one sample per variant");
    errors
}
