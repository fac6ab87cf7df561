//! `KEYS` and `SCAN`: the names of the keys, in key order, read page by page from
//! this node's state after a linearizable read point.
//!
//! `KEYS pattern` reads the keys starting with the pattern's literal head (all of them
//! for `*`) and answers those that match; it refuses to look at more than
//! `KEYS_SCANNED_MAX` keys (use `SCAN`), where Redis would block for as long as it
//! takes. `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` looks at `COUNT` keys (10 when not
//! given, at most `COUNT_MAX`) after the cursor's position and answers the next
//! cursor, `0` at the end. Because keys are read in key order, every key that exists
//! for the whole of a scan is returned exactly once, a guarantee Redis's hash-table
//! scan gives only as "at least once". A cursor is a number this node remembers (the
//! last key it reached) for `CURSORS_MAX` scans; an unknown one is an error. Keys a
//! token may not read are refused (`NOPERM`), not skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::Door;
use super::errors;
use super::glob;
use super::reply::Reply;
use crate::authorize::authorize;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::reader::KeyKind;

/// Most keys one `KEYS` looks at.
const KEYS_SCANNED_MAX: usize = 100_000;
/// Keys read per page (each read holds their values in memory).
const PAGE_KEYS: usize = 100;
/// Most keys one `SCAN` call looks at.
const COUNT_MAX: usize = 10_000;
/// Scans whose cursors this node remembers; the oldest is forgotten first.
const CURSORS_MAX: usize = 10_000;

/// The positions of this node's unfinished scans.
#[derive(Default)]
pub struct Cursors {
    table: Mutex<CursorTable>,
}

#[derive(Default)]
struct CursorTable {
    last_key: HashMap<u64, String>,
    order: VecDeque<u64>,
    next: u64,
}

impl Cursors {
    fn remember(&self, last_key: String) -> u64 {
        let mut table = self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.next += 1;
        let cursor = table.next;
        if table.order.len() == CURSORS_MAX
            && let Some(oldest) = table.order.pop_front()
        {
            table.last_key.remove(&oldest);
        }
        table.order.push_back(cursor);
        table.last_key.insert(cursor, last_key);
        cursor
    }

    fn position(&self, cursor: u64) -> Option<String> {
        let table = self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.last_key.get(&cursor).cloned()
    }
}

/// The part of `pattern` before its first special character: every match starts with it.
fn literal_head(pattern: &[u8]) -> String {
    let end = pattern.iter().position(|byte| matches!(byte, b'*' | b'?' | b'[' | b'\\')).unwrap_or(pattern.len());
    String::from_utf8_lossy(&pattern[..end]).into_owned()
}

/// Up to `limit` keys of any kind starting with `prefix` after `after`, with their
/// kinds, and whether more follow.
fn page(door: &Door, prefix: &str, after: Option<&str>, limit: usize) -> Result<(Vec<(String, KeyKind)>, bool), Reply> {
    Ok(door.reader.key_names(prefix, after, limit).map_err(errors::view)?.value)
}

/// `KEYS pattern`.
pub async fn keys(door: &Door, pattern: &[u8]) -> Reply {
    let prefix = literal_head(pattern);
    if let Err(e) = authorize(|| Access::prefix(Role::Read, &prefix)) {
        return errors::consensus(e);
    }
    if let Err(e) = door.core.linearize().await {
        return errors::consensus(e);
    }
    let (mut found, mut scanned, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let (keys, more) = match page(door, &prefix, after.as_deref(), PAGE_KEYS) {
            Ok(page) => page,
            Err(refused) => return refused,
        };
        scanned += keys.len();
        if scanned > KEYS_SCANNED_MAX {
            return Reply::err(format!("KEYS would look at more than {KEYS_SCANNED_MAX} keys; use SCAN"));
        }
        after = keys.last().map(|(key, _)| key.clone());
        found.extend(keys.into_iter().filter(|(key, _)| glob::matches(pattern, key.as_bytes())).map(|(key, _)| Reply::bulk(key)));
        if !more {
            return Reply::Array(found);
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub async fn scan(door: &Door, args: &[Vec<u8>]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|text| text.parse::<u64>().ok()) else {
        return Reply::err("invalid cursor");
    };
    let (mut pattern, mut count, mut of_type) = (None, 10, None);
    for option in args[2..].chunks(2) {
        match (option[0].to_ascii_lowercase().as_slice(), option.get(1)) {
            (b"match", Some(value)) => pattern = Some(value.clone()),
            (b"count", Some(value)) => match std::str::from_utf8(value).ok().and_then(|text| text.parse::<usize>().ok()) {
                Some(0) => return Reply::err("syntax error"),
                None => return Reply::err("value is not an integer or out of range"),
                Some(n) => count = n.min(COUNT_MAX),
            },
            (b"type", Some(value)) => of_type = Some(value.to_ascii_lowercase()),
            _ => return Reply::err("syntax error"),
        }
    }
    let prefix = pattern.as_deref().map(literal_head).unwrap_or_default();
    if let Err(e) = authorize(|| Access::prefix(Role::Read, &prefix)) {
        return errors::consensus(e);
    }
    let after = match cursor {
        0 => None,
        cursor => match door.scans.position(cursor) {
            Some(last_key) => Some(last_key),
            None => return Reply::err("invalid cursor"),
        },
    };
    if let Err(e) = door.core.linearize().await {
        return errors::consensus(e);
    }
    let (keys, more) = match page(door, &prefix, after.as_deref(), count) {
        Ok(page) => page,
        Err(refused) => return refused,
    };
    let next = match (more, keys.last()) {
        (true, Some((last, _))) => door.scans.remember(last.clone()),
        _ => 0,
    };
    let wanted = |(key, kind): &(String, KeyKind)| {
        pattern.as_deref().is_none_or(|pattern| glob::matches(pattern, key.as_bytes())) && of_type.as_deref().is_none_or(|t| t == kind.name().as_bytes())
    };
    let found = keys.into_iter().filter(wanted).map(|(key, _)| Reply::bulk(key)).collect();
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(found)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patterns_literal_head_ends_at_its_first_special_character() {
        assert_eq!(literal_head(b"user:*"), "user:");
        assert_eq!(literal_head(b"*"), "");
        assert_eq!(literal_head(b"a?b"), "a");
        assert_eq!(literal_head(b"exact"), "exact");
        assert_eq!(literal_head(b"x\\*"), "x");
    }

    #[test]
    fn cursors_name_positions_and_the_oldest_is_forgotten() {
        let cursors = Cursors::default();
        let first = cursors.remember("a".into());
        assert_eq!(cursors.position(first).as_deref(), Some("a"));
        for i in 0..CURSORS_MAX {
            cursors.remember(i.to_string());
        }
        assert_eq!(cursors.position(first), None);
        assert_eq!(cursors.position(0), None);
    }
}
