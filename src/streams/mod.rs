//! Typed streams of what this node applies, for every door: watches of key changes
//! (`watch`) and topic subscriptions (`subscription`).
//!
//! A `Source` reads what is new from this node's applied state; `follow` turns it into
//! an async stream of its items. When there is nothing new, the stream waits until
//! this node applies another entry (Raft's metrics change), so it never polls on a
//! timer and never misses a change: a change made between a read and the wait wakes
//! the wait at once. Streams are served by the node asked, from the entries it has
//! applied. How many may be open is the door's bound (`api::stream::permit`).
//!
//! A stream keeps the token decision it was opened with (`Authority`) and ends once
//! this node no longer grants it: `TokenRevoked` when it applies the revoke of the
//! token that opened the stream, `TokenRequired` when the stream was opened while no
//! token was required and it applies the enable. The check runs whenever the stream
//! is woken, which every applied entry does, those two included. Token ids never
//! repeat, so "the id still exists" is "not revoked".

pub mod subscription;
pub mod watch;

use std::collections::VecDeque;

use futures_util::Stream;

use crate::raft::{Node, NodeId};
use crate::service::Authority;
use crate::state::StateReader;
use crate::state::store::ViewError;

/// What a source has for the stream now.
pub enum Step<T, E> {
    /// Items to send (possibly none, when the source wants to be asked again at once).
    Items(Vec<T>),
    /// Nothing new: ask again after the next applied entry.
    Wait,
    /// The stream is over, for this reason.
    End(E),
}

/// What a stream reads from the applied state, item by item.
pub trait Source: Send + 'static {
    type Item: Send + 'static;
    /// Why the source itself ends a stream.
    type End: Send + 'static;
    fn next(&mut self, reader: &StateReader) -> Result<Step<Self::Item, Self::End>, ViewError>;
}

/// Why a stream ended: its last item.
#[derive(Debug)]
pub enum Ended<E> {
    /// The source's own reason (a watcher fell behind the history, a topic is gone).
    Source(E),
    /// Token `0`, which opened the stream, was revoked.
    TokenRevoked(u64),
    /// The stream was opened while no token was required, and now tokens are.
    TokenRequired,
    /// The applied state could not be read.
    Failed(ViewError),
}

type Metrics = tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, Node>>;

struct Follower<S: Source> {
    source: S,
    pending: VecDeque<S::Item>,
    reader: StateReader,
    applied: Metrics,
    opened_with: Authority,
    ended: bool,
}

impl<S: Source> Follower<S> {
    /// The next item, the reason the stream ended, or `None` after that (or when the
    /// node shuts down).
    async fn next(&mut self) -> Option<Result<S::Item, Ended<S::End>>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.ended {
                return None;
            }
            let end = match self.access_ended() {
                Some(end) => end,
                None => match self.source.next(&self.reader) {
                    Ok(Step::Items(items)) => {
                        self.pending.extend(items);
                        continue;
                    }
                    // A snapshot being installed: the state is back after the next entry.
                    Ok(Step::Wait) | Err(ViewError::Installing) => {
                        if self.applied.changed().await.is_err() {
                            return None;
                        }
                        continue;
                    }
                    Ok(Step::End(end)) => Ended::Source(end),
                    Err(e) => Ended::Failed(e),
                },
            };
            self.ended = true;
            return Some(Err(end));
        }
    }

    /// Why this node no longer grants the stream, if it does not. A read that fails (a
    /// snapshot being installed) decides nothing: the source meets the same state and
    /// waits for the next entry, and the check runs again.
    fn access_ended(&self) -> Option<Ended<S::End>> {
        if !self.reader.tokens_required() {
            return None;
        }
        match self.opened_with {
            Authority::NoTokenRequired => Some(Ended::TokenRequired),
            Authority::Token(id) => match self.reader.token(id) {
                Ok(found) if found.value.is_none() => Some(Ended::TokenRevoked(id)),
                _ => None,
            },
        }
    }
}

/// `source`'s items as this node applies them, for as long as it grants
/// `opened_with`; then the reason it ended, and nothing after.
pub fn follow<S: Source>(
    reader: StateReader,
    applied: Metrics,
    opened_with: Authority,
    source: S,
) -> impl Stream<Item = Result<S::Item, Ended<S::End>>> + Send {
    let follower = Follower { source, pending: VecDeque::new(), reader, applied, opened_with, ended: false };
    futures_util::stream::unfold(follower, |mut follower| async move {
        let item = follower.next().await?;
        Some((item, follower))
    })
}
