//! The typed core every door calls (issue 14's "one core, many doors"): propose a
//! command and get its outcome, or make a read linearizable, with every consensus
//! failure a `ConsensusError`, not an HTTP status. The HTTP API maps the errors to
//! 503 and 504 (`api::consensus`); another door maps them to its own dialect.
//!
//! Any node serves any door's request: on a follower, a write goes to the leader as
//! the typed request (`raft::leader_link`, `POST /raft/write`), where `write_here`
//! proposes it; a linearizable read gets a read index from the leader
//! (`POST /raft/read_index`) and waits until this node has applied it. One hop: the
//! leader never sends either on, so a stale view of the leader cannot loop, and a
//! node that is no longer leader answers `NotLeader` (definite).
//!
//! Streams (watches, topic subscriptions) are read from this node's applied state
//! (`streams`), with the token decision of the request that opened them.
//!
//! A command that reads the clock (`Command::reads_clock`: lease
//! grants and keep-alives, queue and topic writes, transactions) is stamped here, as
//! it is proposed, so a door builds commands without the leader's clock. Writes go
//! through the proposer (puts and deletes, batched into shared entries) or straight
//! to openraft; reads through the batched ReadIndex (`raft::read_index`).
//! Both run on the leader. Before proposing, the leader checks that it heard from a
//! quorum recently: if not, nothing is proposed. After proposing, any failure to get
//! an answer leaves the outcome unknown, because the entry may still commit: that
//! includes openraft's `ForwardToLeader`, which it also sends for entries it appended
//! and then had to truncate, and which therefore does not prove the write did not
//! happen.

use std::sync::Arc;

use futures_util::Stream;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::authorize::{authority, authorize};
use crate::config::{Limits, RaftTiming};
use crate::raft::leader_link::LinkError;
use crate::raft::network::PeerNetwork;
use crate::raft::proposer::{self, ProposeError, Proposer};
use crate::raft::read_index::ReadIndex;
use crate::raft::{NodeId, Raft};
use crate::state::StateReader;
use crate::state::command::{Request, Response};
use crate::streams::{self, Ended, Source};
use crate::ticker::LeaderClock;

/// Why a write or a linearizable read did not complete. Every variant but
/// `OutcomeUnknown` is definite: nothing was proposed, so a retry is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ConsensusError {
    #[error("this node is not the leader (node {0} is); retry")]
    NotLeader(NodeId),
    #[error("the cluster has no leader right now (election in progress or no quorum); retry")]
    NoLeader,
    /// The leader could not be asked (no connection, or it refused the call before
    /// taking it): nothing was proposed.
    #[error("{0}")]
    LeaderUnreachable(String),
    /// A request a follower took without a token while the leader's state requires
    /// tokens (the follower had not applied the enable yet).
    #[error("this cluster requires a token: send Authorization: Bearer <token>")]
    TokenRequired,
    /// A request a follower took with token `0`, which the leader's state no longer
    /// holds (revoked; the follower had not applied the revoke yet).
    #[error("token {0} does not exist, was revoked, or its secret is wrong")]
    TokenRevoked(u64),
    /// The leader has not applied an entry of its own term yet, so it cannot tell
    /// which tokens hold.
    #[error("the leader is taking over (it has not applied the log of earlier terms yet); retry")]
    LeaderTakingOver,
    /// A command while `node` speaks only peer protocol `spoken`, which cannot carry
    /// it: a rolling upgrade is under way. (A leader of protocol 2 sent it for
    /// transactions.)
    #[error("node {node} speaks peer protocol {spoken} (an older release), which cannot carry this command; finish the rolling upgrade (docs/operations.md)")]
    UpgradeInProgress { node: NodeId, spoken: u32 },
    #[error("the leader has not heard from a quorum for {silent_ms} ms (limit {limit_ms} ms); retry")]
    NoQuorum { silent_ms: u64, limit_ms: u64 },
    #[error("too many writes are waiting to be proposed; nothing was changed, retry")]
    Busy,
    /// The leader cannot stamp the command with the replicated clock yet (it is taking
    /// over, or a tick failed).
    #[error("the leader cannot read the replicated clock right now (taking over, or a tick failed); retry")]
    ClockNotReady,
    /// A linearizable read could not be confirmed (leadership, or the read index not
    /// applied here in time); says why.
    #[error("{0}")]
    ReadNotConfirmed(String),
    /// The write was proposed and no answer came: it may or may not apply.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// The caller's token does not cover the command (`state::access`); decided on
    /// the node asked, never sent to a peer.
    #[error("{0}")]
    Forbidden(String),
}

impl ConsensusError {
    /// True when nothing was proposed.
    pub fn is_definite(&self) -> bool {
        !matches!(self, ConsensusError::OutcomeUnknown(_))
    }
}

/// The core service of one node: what a door needs to write and to read.
#[derive(Clone)]
pub struct Core {
    node_id: NodeId,
    raft: Raft,
    /// One entry for many puts and deletes.
    proposer: Proposer,
    /// One leadership check for many linearizable reads.
    read_index: ReadIndex,
    /// The leader's reading of the replicated clock, to stamp commands with.
    clock: Arc<LeaderClock>,
    limits: Arc<Limits>,
    timing: Arc<RaftTiming>,
    /// Calls to the leader, from a follower (`raft::leader_link`).
    peers: PeerNetwork,
    /// This node's applied state: the tokens, for a follower's `Authority`.
    reader: StateReader,
    /// Writes other nodes sent here, in progress (`limits.concurrent_requests_max`;
    /// `Busy` beyond it): each node bounds its own clients, and this bounds them all.
    forwarded: Arc<Semaphore>,
}

/// Whether this node's applied tokens may decide a request: always on a follower
/// (its decision goes to the leader with the request, `Authority`); on a leader, once
/// it has applied an entry of its own term, and with it everything committed before
/// (a new leader's state may still lack a revoke, or the enable, its predecessor
/// committed).
pub fn tokens_decidable(metrics: &openraft::RaftMetrics<NodeId, crate::raft::Node>) -> bool {
    metrics.state != ServerState::Leader || metrics.last_applied.is_some_and(|applied| applied.leader_id.term == metrics.current_term)
}

/// What the node that took a request decided its token check with: no token was
/// required there, or token `id` passed. The leader re-checks both facts against its
/// own state when a follower sends it the write or asks it for a read index: tokens
/// never change once made (role and prefixes are fixed), so the follower's check of
/// role and names stays valid, and only whether tokens are required and whether the
/// token still exists can have moved since the follower's state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    NoTokenRequired,
    Token(u64),
}

/// A write a follower sends the leader, with what the follower decided its token
/// check with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ForwardedWrite {
    pub authority: Authority,
    pub request: Request,
}

/// Where the leader is, as this node knows it.
pub enum Leader {
    Here,
    At { id: NodeId, addr: String },
}

/// What the parts of a node give its core.
pub struct CoreParts {
    pub node_id: NodeId,
    pub raft: Raft,
    pub clock: Arc<LeaderClock>,
    pub limits: Arc<Limits>,
    pub timing: Arc<RaftTiming>,
    pub peers: PeerNetwork,
    pub reader: StateReader,
}

impl Core {
    pub fn new(parts: CoreParts) -> Self {
        let CoreParts { node_id, raft, clock, limits, timing, peers, reader } = parts;
        // An entry is at most one request body, as the peer body limit assumes.
        let proposer = Proposer::spawn(raft.clone(), limits.concurrent_requests_max, limits.body_bytes_max, limits.write_timeout());
        let read_index = ReadIndex::spawn(raft.clone(), limits.concurrent_requests_max, limits.read_timeout());
        let forwarded = Arc::new(Semaphore::new(limits.concurrent_requests_max));
        Self { node_id, raft, proposer, read_index, clock, limits, timing, peers, reader, forwarded }
    }

    /// The calls to the leader (`raft::leader_link`), for what else runs on it (`admin`).
    pub fn peers(&self) -> &PeerNetwork {
        &self.peers
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The leader and its address, or `NoLeader` when no leader is known (or it is
    /// not in this node's membership yet).
    pub fn leader(&self) -> Result<Leader, ConsensusError> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        match metrics.current_leader {
            Some(id) if id == self.node_id => Ok(Leader::Here),
            Some(id) => match metrics.membership_config.membership().get_node(&id) {
                Some(node) => Ok(Leader::At { id, addr: node.addr.clone() }),
                None => Err(ConsensusError::NoLeader),
            },
            None => Err(ConsensusError::NoLeader),
        }
    }

    /// `Ok` if this node is the leader and a quorum acknowledged it recently.
    pub fn ensure_leader_with_quorum(&self) -> Result<(), ConsensusError> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader {
            return Err(metrics.current_leader.map_or(ConsensusError::NoLeader, ConsensusError::NotLeader));
        }
        // No acknowledgement recorded yet means a leader elected moments ago, by a
        // quorum's votes: let it serve (a write it cannot commit gets the unknown path).
        let limit_ms = self.timing.election_timeout_max_ms;
        match metrics.millis_since_quorum_ack {
            Some(silent_ms) if silent_ms > limit_ms => Err(ConsensusError::NoQuorum { silent_ms, limit_ms }),
            _ => Ok(()),
        }
    }

    /// Applies `request` through the leader: here, or sent to it.
    pub async fn write(&self, request: Request) -> Result<Response, ConsensusError> {
        authorize(|| request.command.access())?;
        match self.leader()? {
            Leader::Here => self.write_here(request).await,
            Leader::At { id, addr } => {
                let forwarded = ForwardedWrite { authority: authority(), request };
                match self.peers.call_leader(id, &addr, "write", &forwarded, self.limits.forward_timeout()).await {
                    Ok(answer) => answer,
                    Err(LinkError::NotSent(why)) => {
                        Err(ConsensusError::LeaderUnreachable(format!("cannot ask leader {id} at {addr}: {why}; nothing was changed, retry")))
                    }
                    Err(LinkError::Lost(why)) => Err(ConsensusError::OutcomeUnknown(format!(
                        "sent the write to leader {id}, then {why}; it may have applied. Retry with the same Idempotency-Key"
                    ))),
                }
            }
        }
    }

    /// On the leader: whether a follower's token decision still holds here.
    fn check_authority(&self, authority: Authority) -> Result<(), ConsensusError> {
        if !tokens_decidable(&self.raft.metrics().borrow()) {
            return Err(ConsensusError::LeaderTakingOver);
        }
        let read = |e: crate::state::store::ViewError| ConsensusError::ReadNotConfirmed(format!("cannot read the tokens: {e}"));
        match authority {
            Authority::NoTokenRequired if self.reader.tokens_required() => Err(ConsensusError::TokenRequired),
            Authority::NoTokenRequired => Ok(()),
            Authority::Token(id) => match self.reader.token(id).map_err(read)?.value {
                Some(_) => Ok(()),
                None => Err(ConsensusError::TokenRevoked(id)),
            },
        }
    }

    /// Admits work another node sent here to run on the leader, which it took with
    /// `authority`: within the bound of such work, once the leader's re-check holds.
    pub fn admit_forwarded(&self, authority: Authority) -> Result<tokio::sync::SemaphorePermit<'_>, ConsensusError> {
        let Ok(permit) = self.forwarded.try_acquire() else { return Err(ConsensusError::Busy) };
        self.check_authority(authority)?;
        Ok(permit)
    }

    /// A write another node sent here (`POST /raft/write`): proposed only if this
    /// node is the leader, never sent on.
    pub async fn write_forwarded(&self, forwarded: ForwardedWrite) -> Result<Response, ConsensusError> {
        let _permit = self.admit_forwarded(forwarded.authority)?;
        self.write_here(forwarded.request).await
    }

    /// A read index another node asked for (`POST /raft/read_index`), for a request
    /// it took with `authority`.
    pub async fn read_index_forwarded(&self, authority: Authority) -> Result<u64, ConsensusError> {
        self.check_authority(authority)?;
        self.read_index_here().await
    }

    /// On the leader: refuses a command of a log format some member is known not to
    /// read yet (a rolling upgrade under way, `raft::protocol::peer_behind`), before
    /// anything is proposed.
    fn check_members_carry(&self, request: &Request) -> Result<(), ConsensusError> {
        let format = request.command.format_since();
        if crate::raft::protocol::carrying(format) <= crate::raft::protocol::PROTOCOL_VERSION_OLDEST {
            return Ok(());
        }
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let peers = membership.nodes().map(|(id, _)| *id).filter(|id| *id != self.node_id);
        match crate::raft::protocol::peer_behind(format, peers, |peer| self.peers.speaks(peer)) {
            None => Ok(()),
            Some((node, spoken)) => Err(ConsensusError::UpgradeInProgress { node, spoken }),
        }
    }

    /// On the leader: stamps `request` with the leader's clock if its command carries
    /// a stamp, proposes it (in a batch with other writes when it may share an entry)
    /// and waits, at most the write timeout, for it to be applied.
    async fn write_here(&self, mut request: Request) -> Result<Response, ConsensusError> {
        self.ensure_leader_with_quorum()?;
        self.check_members_carry(&request)?;
        if request.command.reads_clock() {
            request.now_ms = self.clock.fresh_now_ms(&self.raft).await.ok_or(ConsensusError::ClockNotReady)?;
        }
        let limit = self.limits.write_timeout();
        let written = match request.command.is_batchable() {
            true => tokio::time::timeout(limit, self.proposer.propose(request)).await,
            false => tokio::time::timeout(limit, proposer::client_write(&self.raft, request, limit)).await,
        };
        match written {
            Ok(Ok(response)) => Ok(response),
            Err(_) => Err(ConsensusError::OutcomeUnknown(format!(
                "the write was proposed but not committed within {} ms; it may still apply. Retry with the same Idempotency-Key to learn the outcome",
                limit.as_millis()
            ))),
            Ok(Err(ProposeError::Busy)) => Err(ConsensusError::Busy),
            Ok(Err(ProposeError::LeaderChanged)) => Err(ConsensusError::OutcomeUnknown(
                "leadership changed while the write was in flight; it may or may not have applied. Retry with the same Idempotency-Key".into(),
            )),
            Ok(Err(ProposeError::Failed(reason))) => Err(ConsensusError::OutcomeUnknown(format!("the write failed after it was proposed: {reason}"))),
        }
    }

    /// Waits, at most the read timeout, until reading this node's state is
    /// linearizable: a read index from the leader (this node's own ReadIndex, shared
    /// with the reads waiting alongside, or the leader's, asked for), then that index
    /// applied here.
    pub async fn linearize(&self) -> Result<(), ConsensusError> {
        let limit = self.limits.read_timeout();
        let deadline = tokio::time::Instant::now() + limit;
        let read_index = match self.leader()? {
            Leader::Here => self.read_index_here().await?,
            Leader::At { id, addr } => match self.peers.call_leader::<_, Result<u64, ConsensusError>>(id, &addr, "read_index", &authority(), limit).await {
                Ok(answer) => answer?,
                Err(e) => return Err(ConsensusError::ReadNotConfirmed(format!("cannot get a read index from leader {id} at {addr}: {e}"))),
            },
        };
        if read_index == 0 {
            return Ok(());
        }
        let mut metrics = self.raft.metrics();
        let applied = metrics.wait_for(|m| m.last_applied.is_some_and(|id| id.index >= read_index));
        match tokio::time::timeout_at(deadline, applied).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ConsensusError::ReadNotConfirmed("this node is shutting down".into())),
            Err(_) => Err(ConsensusError::ReadNotConfirmed(format!("read index {read_index} not applied here within {} ms", limit.as_millis()))),
        }
    }

    /// Waits, at most the read timeout, until this node can decide a token check
    /// (`tokens_decidable`); `LeaderTakingOver` if it cannot yet.
    pub async fn wait_tokens_decidable(&self) -> Result<(), ConsensusError> {
        if tokens_decidable(&self.raft.metrics().borrow()) {
            return Ok(());
        }
        let wait = self.raft.wait(Some(self.limits.read_timeout()));
        wait.metrics(tokens_decidable, "the new leader to apply the log of earlier terms").await.map(drop).map_err(|_| ConsensusError::LeaderTakingOver)
    }

    /// `source`'s items as this node applies them (`streams`), for as long as this node
    /// grants the token decision this task's request was taken with; then why it ended.
    pub fn follow<S: Source>(&self, source: S) -> impl Stream<Item = Result<S::Item, Ended<S::End>>> + Send + 'static {
        streams::follow(self.reader.clone(), self.raft.metrics(), authority(), source)
    }

    /// On the leader (`POST /raft/read_index` asks for it): confirms leadership with
    /// a quorum (ReadIndex) and returns the index a linearizable read must wait for
    /// (0: nothing to wait for).
    async fn read_index_here(&self) -> Result<u64, ConsensusError> {
        self.ensure_leader_with_quorum()?;
        let limit = self.limits.read_timeout();
        match tokio::time::timeout(limit, self.read_index.confirm()).await {
            Ok(Ok(read_index)) => Ok(read_index.unwrap_or(0)),
            Ok(Err(reason)) => Err(ConsensusError::ReadNotConfirmed(format!("cannot confirm leadership for a linearizable read: {reason}"))),
            Err(_) => Err(ConsensusError::ReadNotConfirmed(format!("leadership not confirmed within {} ms", limit.as_millis()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_decides_only_after_applying_an_entry_of_its_term() {
        let applied_in = |term: u64| Some(openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), 10));
        let metrics = |state, current_term, last_applied| {
            let mut metrics = openraft::RaftMetrics::new_initial(1);
            (metrics.state, metrics.current_term, metrics.last_applied) = (state, current_term, last_applied);
            metrics
        };
        use openraft::ServerState::{Follower, Leader};
        assert!(!tokens_decidable(&metrics(Leader, 3, applied_in(2))), "a new leader with its predecessor's entries only");
        assert!(!tokens_decidable(&metrics(Leader, 1, None)));
        assert!(tokens_decidable(&metrics(Leader, 3, applied_in(3))));
        assert!(tokens_decidable(&metrics(Follower, 3, applied_in(2))), "a follower decides from its own state");
    }
}
