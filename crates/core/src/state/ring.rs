//! Rings: named sets of service members for consistent hashing, with epochs.
//!
//! A member has an address, a weight and free-form metadata, and may be attached to a
//! lease: it leaves the ring when the lease ends (health-checked membership, like a
//! Consul service registered with a session). Every change to a ring's membership
//! bumps its `epoch`, so a lookup answered "at epoch E" can be checked against the
//! membership at E. Placement itself is computed at read time (the client crate's `placement`).
//!
//! Layout (`Cf::Rings`): `ring` → `RingMeta` (epoch, member count), and
//! `ring` ++ `\0` ++ `member` → `RingMember`. Names are printable text (no `\0`), so a
//! ring's meta sorts just before its members.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::Outcome;
use super::lease;
use super::store::{Batch, Cf, View, ViewError};
use crate::codec;

/// Most members in one ring.
pub const MEMBERS_PER_RING_MAX: u64 = 128;
/// Largest weight of one member (its share of points is weight × 1024).
pub const WEIGHT_MAX: u32 = 8;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RingMember {
    pub address: String,
    pub weight: u32,
    pub metadata: String,
    pub lease: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingMeta {
    pub epoch: u64,
    pub members: u64,
}

/// Everything a join sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Join {
    pub ring: String,
    pub member: String,
    pub address: String,
    pub weight: u32,
    pub metadata: String,
    pub lease: Option<u64>,
}

fn member_key(ring: &str, member: &str) -> Vec<u8> {
    let mut key = ring.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(member.as_bytes());
    key
}

/// The name a ring membership is attached to its lease under.
pub fn attachment(ring: &str, member: &str) -> String {
    format!("{ring}\0{member}")
}

fn meta(batch: &Batch<'_>, ring: &str) -> Result<RingMeta, ViewError> {
    Ok(batch.get_decoded(Cf::Rings, ring.as_bytes())?.unwrap_or_default())
}

/// The epoch ring `ring` is at (0: it never had a member).
pub fn epoch(batch: &Batch<'_>, ring: &str) -> Result<u64, ViewError> {
    Ok(meta(batch, ring)?.epoch)
}

fn save_meta(batch: &mut Batch<'_>, ring: &str, meta: &RingMeta) -> Result<(), ViewError> {
    batch.put_encoded(Cf::Rings, ring.as_bytes(), meta)
}

/// Longest address and metadata, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 256;
pub const METADATA_BYTES_MAX: usize = 4096;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RingCommand {
    /// Join (or update) a ring member.
    Join(Join),
    /// Remove a ring member.
    Leave { ring: String, member: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RingOutcome {
    /// Ring `ring` changed: it is now at `epoch` with `members` members.
    Changed { ring: String, epoch: u64, members: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RingRejection {
    /// Ring `ring` has its maximum number of members.
    Full {
        ring: String,
        limit: u64,
    },
    MemberNotFound {
        ring: String,
        member: String,
    },
    /// A join outside the fixed bounds (weight, address, metadata).
    MemberInvalid {
        ring: String,
        member: String,
    },
}

impl RingCommand {
    pub fn access(&self) -> Access {
        match self {
            RingCommand::Join(Join { ring, .. }) | RingCommand::Leave { ring, .. } => Access::name(Role::Write, "ring", ring),
        }
    }
}

impl fmt::Display for RingCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingCommand::Join(join) => write!(f, "ring {:?}: join {:?} at {:?}", join.ring, join.member, join.address),
            RingCommand::Leave { ring, member } => write!(f, "ring {ring:?}: {member:?} leaves"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, command: RingCommand) -> Result<Outcome, ViewError> {
    match command {
        RingCommand::Join(member) => join(batch, member),
        RingCommand::Leave { ring, member } => leave(batch, &ring, &member),
    }
}

fn join(batch: &mut Batch<'_>, join: Join) -> Result<Outcome, ViewError> {
    // Re-checked here (the API checks first): a weight bounds the circle's size.
    if !(1..=WEIGHT_MAX).contains(&join.weight) || join.address.is_empty() || join.address.len() > ADDRESS_BYTES_MAX || join.metadata.len() > METADATA_BYTES_MAX
    {
        return Ok(RingRejection::MemberInvalid { ring: join.ring, member: join.member }.into());
    }
    let key = member_key(&join.ring, &join.member);
    let current: Option<RingMember> = batch.get_decoded(Cf::Rings, &key)?;
    let mut ring = meta(batch, &join.ring)?;
    if current.is_none() && ring.members >= MEMBERS_PER_RING_MAX {
        return Ok(RingRejection::Full { ring: join.ring, limit: MEMBERS_PER_RING_MAX }.into());
    }
    let current_lease = current.as_ref().and_then(|m| m.lease);
    let name = attachment(&join.ring, &join.member);
    if join.lease != current_lease {
        if let Some(id) = join.lease
            && let Err(rejection) = lease::check_attach_kind(batch, id, lease::Attached::RingMember)?
        {
            return Ok(Outcome::Rejected(rejection));
        }
        if let Some(old) = current_lease {
            lease::detach(batch, old, lease::Attached::RingMember, &name)?;
        }
        if let Some(id) = join.lease {
            lease::attach(batch, id, lease::Attached::RingMember, &name)?;
        }
    }
    if current.is_none() {
        ring.members += 1;
    }
    ring.epoch += 1;
    let member = RingMember { address: join.address, weight: join.weight, metadata: join.metadata, lease: join.lease };
    batch.put_encoded(Cf::Rings, &key, &member)?;
    save_meta(batch, &join.ring, &ring)?;
    Ok(RingOutcome::Changed { ring: join.ring, epoch: ring.epoch, members: ring.members }.into())
}

fn leave(batch: &mut Batch<'_>, ring_name: &str, member: &str) -> Result<Outcome, ViewError> {
    let key = member_key(ring_name, member);
    let Some(current) = batch.get_decoded::<RingMember>(Cf::Rings, &key)? else {
        return Ok(RingRejection::MemberNotFound { ring: ring_name.to_string(), member: member.to_string() }.into());
    };
    if let Some(id) = current.lease {
        lease::detach(batch, id, lease::Attached::RingMember, &attachment(ring_name, member))?;
    }
    let ring = remove(batch, ring_name, member)?;
    Ok(RingOutcome::Changed { ring: ring_name.to_string(), epoch: ring.epoch, members: ring.members }.into())
}

/// Removes a member (its lease attachment is the caller's business) and bumps the epoch.
fn remove(batch: &mut Batch<'_>, ring_name: &str, member: &str) -> Result<RingMeta, ViewError> {
    batch.delete(Cf::Rings, &member_key(ring_name, member));
    let mut ring = meta(batch, ring_name)?;
    ring.members = ring.members.saturating_sub(1);
    ring.epoch += 1;
    save_meta(batch, ring_name, &ring)?;
    Ok(ring)
}

/// The lease of a member ended: it leaves (`name` is its `attachment`).
pub fn lease_ended(batch: &mut Batch<'_>, name: &str, lease_id: u64) -> Result<(), ViewError> {
    let Some((ring_name, member)) = name.split_once('\0') else {
        return Err(ViewError::Corrupt(format!("ring attachment {name:?} has no separator")));
    };
    let owned = batch.get_decoded::<RingMember>(Cf::Rings, &member_key(ring_name, member))?.is_some_and(|m| m.lease == Some(lease_id));
    if owned {
        remove(batch, ring_name, member)?;
    }
    Ok(())
}

/// A ring as read: its epoch and members in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingView {
    pub epoch: u64,
    pub members: Vec<(String, RingMember)>,
}

pub fn get(view: &View<'_>, ring_name: &str) -> Result<RingView, ViewError> {
    let meta: RingMeta = match view.get(Cf::Rings, ring_name.as_bytes())? {
        None => return Ok(RingView::default()),
        Some(bytes) => codec::decode(&bytes)?,
    };
    let prefix = member_key(ring_name, "");
    let mut members = Vec::new();
    for item in view.iter_from(Cf::Rings, &prefix) {
        let (key, value) = item?;
        if !key.starts_with(&prefix) || members.len() as u64 >= MEMBERS_PER_RING_MAX {
            break;
        }
        let name = String::from_utf8(key[prefix.len()..].to_vec()).map_err(|_| ViewError::Corrupt("a ring member name is not UTF-8".into()))?;
        members.push((name, codec::decode(&value)?));
    }
    Ok(RingView { epoch: meta.epoch, members })
}
