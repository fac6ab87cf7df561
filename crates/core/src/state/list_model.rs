//! What each list command means, on lists held in memory: the plain statement of the
//! semantics that `list` implements on stored items.
//!
//! The Redis door runs the list commands of a transaction or a script on it, so it can
//! answer them before the step commits (`resp::keyspace`), and the tests of the stored
//! lists check that the state machine agrees with it command by command
//! (`list_tests`). Both use the same bounds and helpers (`list::push_refused`,
//! `removing`, `position`, `clamp`), so they cannot drift apart on an edge.

use std::collections::{BTreeMap, VecDeque};

use super::list::{self, End, LEN_MAX, ListCommand, ListOutcome, ListRejection};

/// The lists a command may touch, by key; a key not here holds no list.
pub type Lists = BTreeMap<String, VecDeque<Vec<u8>>>;

fn push_at(list: &mut VecDeque<Vec<u8>>, item: Vec<u8>, end: End) {
    match end {
        End::Left => list.push_front(item),
        End::Right => list.push_back(item),
    }
}

fn pop_at(list: &mut VecDeque<Vec<u8>>, end: End) -> Option<Vec<u8>> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

/// Removes `key` from `lists` if its list is empty, as the state machine deletes an
/// emptied list.
fn drop_if_empty(lists: &mut Lists, key: &str) {
    if lists.get(key).is_some_and(VecDeque::is_empty) {
        lists.remove(key);
    }
}

/// Applies `command` to `lists`. Every key it names that holds a string must have been
/// refused by the caller (`WrongType`): here a key is a list or absent. The outcome
/// carries `revision` (the caller's, since nothing here counts revisions).
pub fn apply(lists: &mut Lists, command: &ListCommand, revision: u64) -> Result<ListOutcome, ListRejection> {
    match command {
        ListCommand::Push { key, items, end, only_existing } => {
            if let Some(refused) = list::push_refused(items.len()) {
                return Err(refused);
            }
            let len = lists.get(key).map_or(0, VecDeque::len) as u64;
            if len == 0 && *only_existing {
                return Ok(ListOutcome::Pushed { len: 0, revision });
            }
            if len + items.len() as u64 > LEN_MAX {
                return Err(ListRejection::TooLong { key: key.clone(), limit: LEN_MAX });
            }
            let list = lists.entry(key.clone()).or_default();
            items.iter().for_each(|item| push_at(list, item.clone(), *end));
            Ok(ListOutcome::Pushed { len: list.len() as u64, revision })
        }
        ListCommand::Pop { key, end, count } => {
            let Some(list) = lists.get_mut(key) else { return Ok(ListOutcome::Popped { items: Vec::new(), revision }) };
            let taking = (*count as usize).min(list::ITEMS_PER_COMMAND_MAX).min(list.len());
            let items = (0..taking).filter_map(|_| pop_at(list, *end)).collect();
            drop_if_empty(lists, key);
            Ok(ListOutcome::Popped { items, revision })
        }
        ListCommand::Move { source, destination, from, to } => {
            if !lists.contains_key(source) {
                return Ok(ListOutcome::Moved { item: None, revision });
            }
            if source != destination && lists.get(destination).is_some_and(|list| list.len() as u64 >= LEN_MAX) {
                return Err(ListRejection::TooLong { key: destination.clone(), limit: LEN_MAX });
            }
            let item = lists.get_mut(source).and_then(|list| pop_at(list, *from));
            drop_if_empty(lists, source);
            if let Some(item) = &item {
                push_at(lists.entry(destination.clone()).or_default(), item.clone(), *to);
            }
            Ok(ListOutcome::Moved { item, revision })
        }
        ListCommand::Set { key, index, item } => {
            let Some(list) = lists.get_mut(key) else { return Err(ListRejection::NoSuchKey { key: key.clone() }) };
            let Some(at) = list::position(*index, list.len() as u64) else {
                return Err(ListRejection::IndexOutOfRange { key: key.clone(), index: *index });
            };
            list[at as usize] = item.clone();
            Ok(ListOutcome::Set { revision })
        }
        ListCommand::Remove { key, count, item } => {
            let Some(list) = lists.get_mut(key) else { return Ok(ListOutcome::Removed { removed: 0, revision }) };
            let doomed = list::removing(list.make_contiguous(), *count, item);
            let mut at = 0;
            list.retain(|_| {
                at += 1;
                !doomed.contains(&(at - 1))
            });
            drop_if_empty(lists, key);
            Ok(ListOutcome::Removed { removed: doomed.len() as u64, revision })
        }
        ListCommand::Trim { key, start, stop } => {
            let Some(list) = lists.get_mut(key) else { return Ok(ListOutcome::Trimmed { revision }) };
            match list::clamp(*start, *stop, list.len() as u64) {
                Some((start, stop)) => {
                    list.truncate(stop as usize + 1);
                    list.drain(..start as usize);
                }
                None => list.clear(),
            }
            drop_if_empty(lists, key);
            Ok(ListOutcome::Trimmed { revision })
        }
    }
}
