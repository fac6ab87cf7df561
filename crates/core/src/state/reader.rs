//! Read access to the state for the API: every answer says which applied entry and
//! which cluster revision it reflects, taken from the same point-in-time view.
//!
//! Reads here are local. The API makes them linearizable by first confirming
//! leadership (openraft's ReadIndex) and waiting until this node has applied up to
//! the read index; with `consistency=stale` it skips that and reports the index.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::auth::{self, AuthSettings, TokenPage, TokenRecord};
use super::command::KeyMeta;
use super::counts::{self, KeyCounts};
use super::expiry;
use super::expiry::Expiry;
use super::history::{self, HistoryRead};
use super::kv::{self, KvRecord, Page, StringRead};
use super::lease::{self, LeaseRecord, LeaseView};
use super::list::{self, ListRead, ListRecord};
use super::lock::{self, LockRecord};
use super::queue::{self, QueueRecord, QueueView};
use super::ring::{self, RingView};
use super::session::{self, SessionRecord};
use super::store::{Cf, Meta, NamedPage, StateStore, View, ViewError};
use super::topic::{self, TopicRead, TopicRecord};

/// What kind of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    String,
    List,
}

impl KeyKind {
    /// Redis's name for it (`TYPE`).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::String => "string",
            KeyKind::List => "list",
        }
    }
}

/// Key names with their kinds, and whether more follow (`StateReader::key_names`).
pub type KeyNames = (Vec<(String, KeyKind)>, bool);

/// String keys as read, and whether more follow (`StateReader::list_strings`).
pub type StringPage = (Vec<(String, StringRead)>, bool);

/// Sessions with their leases, and whether more follow (`StateReader::sessions`).
pub type SessionPage = (Vec<(u64, SessionRecord, LeaseRecord)>, bool);

/// A key of any kind as read, with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRead {
    String(StringRead),
    List { list: ListRecord, expiry: Option<Expiry> },
}

impl KeyRead {
    pub fn meta(&self) -> KeyMeta {
        match self {
            KeyRead::String(string) => string.record.meta,
            KeyRead::List { list, .. } => list.meta,
        }
    }

    pub fn expiry(&self) -> Option<Expiry> {
        match self {
            KeyRead::String(string) => string.expiry,
            KeyRead::List { expiry, .. } => *expiry,
        }
    }
}

/// A value read from the state and the position it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtIndex<T> {
    pub value: T,
    /// Index of the last log entry applied to the state that was read.
    pub applied_index: u64,
    /// The cluster revision at that point.
    pub revision: u64,
    /// The replicated clock at that point, in ms.
    pub clock_ms: u64,
}

#[derive(Clone)]
pub struct StateReader {
    store: StateStore,
    /// The state machine's in-memory copy of "tokens are required".
    tokens_required: Arc<AtomicBool>,
}

impl StateReader {
    pub(super) fn new(store: StateStore, tokens_required: Arc<AtomicBool>) -> Self {
        Self { store, tokens_required }
    }

    /// Whether tokens are required, as this node last applied, without a read of the
    /// store: false lets a request skip the token check. True only says to look:
    /// the check then reads the stored settings.
    pub fn tokens_required(&self) -> bool {
        self.tokens_required.load(Ordering::Acquire)
    }

    fn at<T>(meta: &Meta, value: T) -> AtIndex<T> {
        AtIndex { value, applied_index: meta.last_applied.map_or(0, |id| id.index), revision: meta.revision, clock_ms: meta.clock_ms }
    }

    /// Runs `read` on one point-in-time view and its metadata.
    fn read<T>(&self, read: impl FnOnce(&View<'_>, &Meta) -> Result<T, ViewError>) -> Result<AtIndex<T>, ViewError> {
        let view = self.store.view();
        let meta = view.meta()?;
        Ok(Self::at(&meta, read(&view, &meta)?))
    }

    pub fn get(&self, key: &str) -> Result<AtIndex<Option<KvRecord>>, ViewError> {
        self.read(|view, _| kv::get(view, key))
    }

    /// A string key with its expiry and flags.
    pub fn get_string(&self, key: &str) -> Result<AtIndex<Option<StringRead>>, ViewError> {
        self.read(|view, _| kv::get_string(view, key))
    }

    /// Several keys of any kind with their expiries, read from one point-in-time view
    /// (the Redis door's).
    pub fn get_all(&self, keys: &[String]) -> Result<AtIndex<Vec<Option<KeyRead>>>, ViewError> {
        self.read(|view, _| {
            let read = |key: &String| -> Result<Option<KeyRead>, ViewError> {
                if let Some(string) = kv::get_string(view, key)? {
                    return Ok(Some(KeyRead::String(string)));
                }
                let Some(list) = list::get(view, key)? else { return Ok(None) };
                Ok(Some(KeyRead::List { list, expiry: expiry::get(view, key)? }))
            };
            keys.iter().map(read).collect()
        })
    }

    /// The names of the keys of any kind (strings and lists) starting with `prefix`
    /// and strictly after `after`, in byte order, at most `limit` of them, with their
    /// kind; and whether more follow (Redis's `KEYS` and `SCAN`).
    pub fn key_names(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<AtIndex<KeyNames>, ViewError> {
        self.read(|view, _| {
            let start = match after {
                Some(after) if after >= prefix => format!("{after}\0"),
                _ => prefix.to_string(),
            };
            // Each family's names with the prefix, in order; then the two merged.
            let names = |cf, kind| {
                view.iter_from(cf, start.as_bytes())
                    .map(move |item| item.map(|(key, _)| (key, kind)))
                    .take_while(|item| item.as_ref().map_or(true, |(key, _)| key.starts_with(prefix.as_bytes())))
            };
            let (mut strings, mut lists) = (names(Cf::Kv, KeyKind::String).peekable(), names(Cf::Lists, KeyKind::List).peekable());
            let mut found = Vec::new();
            loop {
                let next = match (strings.peek(), lists.peek()) {
                    (Some(Ok((string, _))), Some(Ok((list, _)))) if list < string => lists.next(),
                    (Some(_), _) => strings.next(),
                    (None, _) => lists.next(),
                };
                let Some(next) = next else { return Ok((found, false)) };
                if found.len() == limit {
                    return Ok((found, true));
                }
                let (key, kind) = next?;
                let key = String::from_utf8(key.to_vec()).map_err(|_| ViewError::Corrupt("a stored key is not UTF-8".to_string()))?;
                found.push((key, kind));
            }
        })
    }

    pub fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<AtIndex<Page>, ViewError> {
        self.read(|view, _| kv::list(view, prefix, after, limit))
    }

    /// Up to `limit` string keys starting with `prefix`, each with its expiry, flags
    /// and hold, from one view; and whether more remain.
    pub fn list_strings(&self, prefix: &str, limit: usize) -> Result<AtIndex<StringPage>, ViewError> {
        self.read(|view, _| {
            let page = kv::list(view, prefix, None, limit)?;
            let read = |(key, record): (String, KvRecord)| -> Result<_, ViewError> {
                let read = kv::with_attachments(view, &key, record)?;
                Ok((key, read))
            };
            Ok((page.items.into_iter().map(read).collect::<Result<Vec<_>, _>>()?, page.more))
        })
    }

    /// Session `id` (Consul's) with its lease, if it exists.
    pub fn session(&self, id: u64) -> Result<AtIndex<Option<(SessionRecord, LeaseRecord)>>, ViewError> {
        self.read(|view, _| session::get(view, id))
    }

    /// Up to `limit` sessions by id, with their leases; and whether more exist.
    pub fn sessions(&self, limit: usize) -> Result<AtIndex<SessionPage>, ViewError> {
        self.read(|view, _| session::list(view, limit))
    }

    /// Lease `id` with up to `keys_limit` of its keys.
    pub fn lease(&self, id: u64, keys_limit: usize) -> Result<AtIndex<Option<LeaseView>>, ViewError> {
        self.read(|view, _| lease::get(view, id, keys_limit))
    }

    /// Lock `name`: holder and waiters.
    pub fn lock(&self, name: &str) -> Result<AtIndex<LockRecord>, ViewError> {
        self.read(|view, _| lock::get(view, name))
    }

    /// Ring `name`: epoch and members.
    pub fn ring(&self, name: &str) -> Result<AtIndex<RingView>, ViewError> {
        self.read(|view, _| ring::get(view, name))
    }

    /// Queue `name`: settings, counters, oldest message.
    pub fn queue(&self, name: &str) -> Result<AtIndex<Option<QueueView>>, ViewError> {
        self.read(|view, _| queue::get(view, name))
    }

    /// Queues after `after`, at most `limit`, and whether more follow.
    pub fn queues(&self, after: Option<&str>, limit: usize) -> Result<AtIndex<NamedPage<QueueRecord>>, ViewError> {
        self.read(|view, _| view.named_page(Cf::Queues, after, limit))
    }

    /// Topics after `after`, at most `limit`, and whether more follow.
    pub fn topics(&self, after: Option<&str>, limit: usize) -> Result<AtIndex<NamedPage<TopicRecord>>, ViewError> {
        self.read(|view, _| view.named_page(Cf::Topics, after, limit))
    }

    /// Topic `name`'s record.
    pub fn topic(&self, name: &str) -> Result<AtIndex<Option<TopicRecord>>, ViewError> {
        self.read(|view, _| topic::get(view, name))
    }

    /// Messages of topic `name` from offset `from` (see `topic::read`).
    pub fn topic_messages(&self, name: &str, from: u64, limit: usize, bytes_max: usize) -> Result<AtIndex<TopicRead>, ViewError> {
        self.read(|view, _| topic::read(view, name, from, limit, bytes_max))
    }

    /// The items of list `key` from `start` to `stop` (see `list::read`).
    pub fn list_items(&self, key: &str, start: i64, stop: i64) -> Result<AtIndex<ListRead>, ViewError> {
        self.read(|view, _| list::read(view, key, start, stop))
    }

    /// How many keys there are, and how many have an expiry.
    pub fn key_counts(&self) -> Result<AtIndex<KeyCounts>, ViewError> {
        self.read(|view, _| counts::get(view))
    }

    /// The earliest lease expiry, key expiry or queue timer, if any (the ticker's
    /// next deadline).
    pub fn next_deadline(&self) -> Result<AtIndex<Option<u64>>, ViewError> {
        self.read(|view, _| Ok([lease::next_expiry(view)?, expiry::next(view)?, queue::next_timer(view)?].into_iter().flatten().min()))
    }

    /// Key changes under `prefix` from revision `from` (see `history::read`).
    pub fn history(&self, prefix: &str, from: u64, limit: usize) -> Result<AtIndex<HistoryRead>, ViewError> {
        self.read(|view, meta| history::read(view, meta, prefix, from, limit))
    }

    /// Whether tokens are required, and how many exist.
    pub fn auth_settings(&self) -> Result<AtIndex<AuthSettings>, ViewError> {
        self.read(|view, _| auth::settings(view))
    }

    /// Client token `id`, if it exists.
    pub fn token(&self, id: u64) -> Result<AtIndex<Option<TokenRecord>>, ViewError> {
        self.read(|view, _| auth::token(view, id))
    }

    /// Tokens with ids above `after`, at most `limit`, and whether more follow.
    pub fn tokens(&self, after: Option<u64>, limit: usize) -> Result<AtIndex<TokenPage>, ViewError> {
        self.read(|view, _| auth::tokens(view, after, limit))
    }

    /// The applied position alone (for `/ready` and `/v1/cluster`).
    pub fn position(&self) -> Result<AtIndex<()>, ViewError> {
        Ok(Self::at(&self.store.view().meta()?, ()))
    }
}
