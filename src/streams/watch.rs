//! A watch: every put and delete of a key under a prefix, from a revision on, in
//! revision order and without gaps, read from the change history (`state::history`),
//! one revision's changes at a time. The bounded history may no longer hold the
//! revision asked for, when the watch opens or when a watcher falls that far behind:
//! then the watch is `Compacted`, with the first revision still held.

use super::{Source, Step};
use crate::state::StateReader;
use crate::state::history::Event;
use crate::state::store::ViewError;

/// Most events one history read hands to the stream.
const EVENTS_PER_READ: usize = 1000;

/// The changes of one revision under the watched prefix (several for a transaction or
/// a prefix delete), in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionChanges {
    pub revision: u64,
    pub events: Vec<Event>,
}

/// Revision `from` is no longer in the change history, which starts at `first_revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub from: u64,
    pub first_revision: u64,
}

pub struct Watch {
    prefix: String,
    next_revision: u64,
}

impl Watch {
    /// A watch of `prefix` from revision `from` (at least 1), or from the next revision.
    pub fn open(reader: &StateReader, prefix: String, from: Option<u64>) -> Result<Result<Self, Compacted>, ViewError> {
        let from = match from {
            Some(from) => from,
            None => reader.position()?.revision + 1,
        };
        Ok(match reader.history(&prefix, from, 1)?.value {
            Err(first_revision) => Err(Compacted { from, first_revision }),
            Ok(_) => Ok(Self { prefix, next_revision: from }),
        })
    }
}

impl Source for Watch {
    type Item = RevisionChanges;
    type End = Compacted;

    fn next(&mut self, reader: &StateReader) -> Result<Step<RevisionChanges, Compacted>, ViewError> {
        let read = reader.history(&self.prefix, self.next_revision, EVENTS_PER_READ)?;
        let (events, next) = match read.value {
            Err(first_revision) => return Ok(Step::End(Compacted { from: self.next_revision, first_revision })),
            Ok(found) => found,
        };
        self.next_revision = next;
        if events.is_empty() {
            // Caught up, or a stretch of other keys was skipped: then read on at once.
            return Ok(if next > read.revision { Step::Wait } else { Step::Items(Vec::new()) });
        }
        // A read ends at a revision boundary, so every group is a whole revision.
        let mut revisions: Vec<RevisionChanges> = Vec::new();
        for event in events {
            match revisions.last_mut() {
                Some(last) if last.revision == event.revision => last.events.push(event),
                _ => revisions.push(RevisionChanges { revision: event.revision, events: vec![event] }),
            }
        }
        Ok(Step::Items(revisions))
    }
}
