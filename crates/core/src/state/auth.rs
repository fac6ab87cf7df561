//! Client tokens and whether they are required: the replicated half of client
//! authentication (the API half, which checks each request, is `api::access`).
//!
//! A token has an id (the log index of the entry that created it, so ids only grow
//! and never repeat), a role (`Read` ⊂ `Write` ⊂ `Admin`), optional name prefixes it
//! is confined to, and the SHA-256 of its secret. The secret itself is generated and
//! hashed at the API edge and shown to the caller once: it never enters the log, a
//! snapshot or the idempotency table.
//!
//! Requiring tokens (`enabled`) takes an admin token (the enabling entry names it and
//! apply re-checks it), and while they are required the last admin token cannot be
//! revoked, so the cluster cannot lock its administrators out by a write.
//!
//! Layout in `Cf::Auth`: `s` → `AuthSettings`; `t` ++ id (big-endian) → `TokenRecord`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::command::Outcome;
use super::store::{Batch, Cf, View, ViewError};
use crate::codec;

/// Most tokens the cluster holds.
pub const TOKENS_MAX: u64 = 1000;
/// Most name prefixes one token may be confined to.
pub const PREFIXES_MAX: usize = 16;
/// Longest prefix, in bytes (the longest key a node accepts by default).
pub const PREFIX_BYTES_MAX: usize = 1024;
/// Longest token name (a label for people), in bytes.
pub const NAME_BYTES_MAX: usize = 128;

const KEY_SETTINGS: &[u8] = b"s";
const TOKEN_TAG: u8 = b't';

/// What a token may do; each role includes the ones before it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: keys, leases, locks, queues' and topics' state, watches, subscriptions.
    Read,
    /// Reads and writes of data, including queue receives and lock acquisitions.
    Write,
    /// Everything, including membership changes, snapshots and tokens.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Read, Role::Write, Role::Admin].into_iter().find(|role| role.name() == text)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// Empty: any name. Otherwise the keys, queues, topics, locks and rings it may
    /// touch are those whose names start with one of these.
    pub prefixes: Vec<String>,
    pub secret_sha256: [u8; 32],
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// Every client request needs a token (see `api::access`).
    pub enabled: bool,
    pub tokens: u64,
    pub admins: u64,
}

impl TokenRecord {
    /// Why the token is outside the fixed bounds, if it is.
    pub fn invalid(&self) -> Option<String> {
        if self.name.len() > NAME_BYTES_MAX {
            return Some(format!("name is {} bytes, over {NAME_BYTES_MAX}", self.name.len()));
        }
        if self.prefixes.len() > PREFIXES_MAX {
            return Some(format!("{} prefixes, over {PREFIXES_MAX}", self.prefixes.len()));
        }
        if let Some(prefix) = self.prefixes.iter().find(|p| p.is_empty() || p.len() > PREFIX_BYTES_MAX) {
            return Some(format!("a prefix must be 1 to {PREFIX_BYTES_MAX} bytes, got {}", prefix.len()));
        }
        if self.role == Role::Admin && !self.prefixes.is_empty() {
            return Some("an admin token cannot be confined to prefixes (it manages the whole cluster)".into());
        }
        None
    }
}

fn token_key(id: u64) -> [u8; 9] {
    let mut key = [TOKEN_TAG; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn settings_in(batch: &Batch<'_>) -> Result<AuthSettings, ViewError> {
    Ok(batch.get_decoded(Cf::Auth, KEY_SETTINGS)?.unwrap_or_default())
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AuthCommand {
    /// Create a client token; its id is the entry's log index.
    TokenCreate(TokenRecord),
    TokenRevoke {
        id: u64,
    },
    /// Require tokens from now on; `by` is the admin token that asked.
    Enable {
        by: u64,
    },
    Disable,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    TokenCreated {
        id: u64,
    },
    TokenRevoked {
        id: u64,
    },
    /// Tokens are now required (`enabled`) or not.
    Changed {
        enabled: bool,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AuthRejection {
    /// A token outside the fixed bounds (name, prefixes, an admin with prefixes).
    TokenInvalid {
        reason: String,
    },
    /// The cluster holds its maximum number of tokens.
    TokenLimit {
        limit: u64,
    },
    TokenNotFound {
        id: u64,
    },
    /// Tokens are required and `id` is the last admin token.
    LastAdminToken {
        id: u64,
    },
    /// Requiring tokens was asked with `id`, which is not (or no longer) an admin token.
    NotAdminToken {
        id: u64,
    },
}

impl AuthCommand {
    /// Tokens are managed with an `admin` token.
    pub fn access(&self) -> Access {
        Access::unnamed(Role::Admin)
    }
}

impl fmt::Display for AuthCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never the secret's hash: logs are read by more people than tokens should be.
            AuthCommand::TokenCreate(token) => write!(f, "create token {:?} ({})", token.name, token.role.name()),
            AuthCommand::TokenRevoke { id } => write!(f, "revoke token {id}"),
            AuthCommand::Enable { by } => write!(f, "require tokens (asked by token {by})"),
            AuthCommand::Disable => write!(f, "stop requiring tokens"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, index: u64, command: AuthCommand) -> Result<Outcome, ViewError> {
    match command {
        AuthCommand::TokenCreate(token) => create(batch, index, token),
        AuthCommand::TokenRevoke { id } => revoke(batch, id),
        AuthCommand::Enable { by } => enable(batch, by),
        AuthCommand::Disable => set_enabled(batch, false),
    }
}

fn token_in(batch: &Batch<'_>, id: u64) -> Result<Option<TokenRecord>, ViewError> {
    batch.get_decoded(Cf::Auth, &token_key(id))
}

/// Stores `token` (as `AuthCommand::TokenCreate` carries it) under id `index`.
fn create(batch: &mut Batch<'_>, index: u64, token: TokenRecord) -> Result<Outcome, ViewError> {
    if let Some(reason) = token.invalid() {
        return Ok(AuthRejection::TokenInvalid { reason }.into());
    }
    let mut settings = settings_in(batch)?;
    if settings.tokens >= TOKENS_MAX {
        return Ok(AuthRejection::TokenLimit { limit: TOKENS_MAX }.into());
    }
    settings.tokens += 1;
    settings.admins += u64::from(token.role == Role::Admin);
    batch.put_encoded(Cf::Auth, &token_key(index), &token)?;
    batch.put_encoded(Cf::Auth, KEY_SETTINGS, &settings)?;
    Ok(AuthOutcome::TokenCreated { id: index }.into())
}

fn revoke(batch: &mut Batch<'_>, id: u64) -> Result<Outcome, ViewError> {
    let Some(record) = token_in(batch, id)? else {
        return Ok(AuthRejection::TokenNotFound { id }.into());
    };
    let mut settings = settings_in(batch)?;
    if settings.enabled && record.role == Role::Admin && settings.admins <= 1 {
        return Ok(AuthRejection::LastAdminToken { id }.into());
    }
    settings.tokens = settings.tokens.saturating_sub(1);
    settings.admins = settings.admins.saturating_sub(u64::from(record.role == Role::Admin));
    batch.delete(Cf::Auth, &token_key(id));
    batch.put_encoded(Cf::Auth, KEY_SETTINGS, &settings)?;
    Ok(AuthOutcome::TokenRevoked { id }.into())
}

/// Requires tokens from now on; `by` must be an admin token (checked again here:
/// it may have been revoked since the API checked it).
fn enable(batch: &mut Batch<'_>, by: u64) -> Result<Outcome, ViewError> {
    match token_in(batch, by)? {
        Some(record) if record.role == Role::Admin => {}
        _ => return Ok(AuthRejection::NotAdminToken { id: by }.into()),
    }
    set_enabled(batch, true)
}

fn set_enabled(batch: &mut Batch<'_>, enabled: bool) -> Result<Outcome, ViewError> {
    let settings = AuthSettings { enabled, ..settings_in(batch)? };
    batch.put_encoded(Cf::Auth, KEY_SETTINGS, &settings)?;
    Ok(AuthOutcome::Changed { enabled }.into())
}

pub fn settings(view: &View<'_>) -> Result<AuthSettings, ViewError> {
    match view.get(Cf::Auth, KEY_SETTINGS)? {
        None => Ok(AuthSettings::default()),
        Some(bytes) => Ok(codec::decode(&bytes)?),
    }
}

pub fn token(view: &View<'_>, id: u64) -> Result<Option<TokenRecord>, ViewError> {
    match view.get(Cf::Auth, &token_key(id))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
    }
}

/// One page of tokens by id, and whether more follow.
pub type TokenPage = (Vec<(u64, TokenRecord)>, bool);

/// Tokens with ids above `after`, in id order, at most `limit`, and whether more follow.
pub fn tokens(view: &View<'_>, after: Option<u64>, limit: usize) -> Result<TokenPage, ViewError> {
    let start = match after {
        None => token_key(0),
        Some(after) => match after.checked_add(1) {
            Some(next) => token_key(next),
            None => return Ok((Vec::new(), false)),
        },
    };
    let mut page = Vec::new();
    for item in view.iter_from(Cf::Auth, &start) {
        let (key, value) = item?;
        let Some(id) = key.strip_prefix(&[TOKEN_TAG]).and_then(|id| <[u8; 8]>::try_from(id).ok()).map(u64::from_be_bytes) else {
            break;
        };
        if page.len() == limit {
            return Ok((page, true));
        }
        page.push((id, codec::decode(&value)?));
    }
    Ok((page, false))
}
