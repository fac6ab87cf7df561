//! Fencing tokens over RESP: `CONCORD.FENCE key`, Concord's own command, answers the
//! revision that created `key` as it stands (null when it does not exist).
//!
//! A lock taken the Redis way, `SET lock <random> NX PX 30000`, creates its key, and
//! every creation takes a new cluster revision, higher than any before it. So the
//! key's creation revision is a fencing token: it stays the same while the holder
//! keeps the lock (`PEXPIRE` and redis-py's `extend` do not create the key again) and
//! is higher for every later holder. A storage service that remembers the highest
//! token it has seen can refuse a holder whose lock has passed to another (what
//! Redlock cannot give: its locks carry no order). Inside Concord, a write is made
//! conditional on the token in one atomic step, by a script or by `WATCH`:
//!
//! ```text
//! EVAL "if redis.call('concord.fence', KEYS[1]) ~= tonumber(ARGV[1]) then
//!         return redis.error_reply('FENCED the lock has passed on') end
//!       return redis.call('set', KEYS[2], ARGV[2])" 2 lock data <token> <value>
//! ```

use super::keyspace::Keyspace;
use super::reply::Reply;

/// `CONCORD.FENCE key`.
pub fn run(space: &mut Keyspace, args: &[Vec<u8>]) -> Reply {
    match space.create_revision(&String::from_utf8_lossy(&args[1])) {
        Ok(Some(revision)) => Reply::Integer(revision as i64),
        Ok(None) => Reply::Null,
        Err(refused) => refused,
    }
}
