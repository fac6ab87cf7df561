//! `MULTI`, `EXEC`, `DISCARD`, `WATCH` and `UNWATCH`: Redis's transactions, on the
//! image of the keys (`keyspace`), so `EXEC` is one atomic, linearizable step.
//!
//! After `MULTI`, each command is checked (known, right arity, keys Concord can hold)
//! and queued (`+QUEUED`); one that fails the check is refused and spoils the
//! transaction, and `EXEC` then answers `EXECABORT`, as in Redis. `EXEC` runs the
//! queue on the keys it names and the watched ones, and commits the changes in one
//! step; if a key `WATCH`ed since (its `mod_revision` when watched) has moved, it
//! answers null and changes nothing. After `EXEC` or `DISCARD` nothing is watched.
//! A command that fails inside the transaction (an `INCR` of text, say) answers its
//! error in `EXEC`'s array and changes nothing itself; the others still apply, as in
//! Redis.

use std::collections::BTreeSet;

use super::Door;
use super::commands::{self, Spec};
use super::connection::Session;
use super::keyspace::{self, Ran, Watched};
use super::reply::Reply;

/// Most commands one transaction queues.
pub const QUEUED_MAX: usize = 1024;

/// An open `MULTI`: its commands, and whether one was refused.
#[derive(Default)]
pub struct Queue {
    commands: Vec<(&'static Spec, Vec<Vec<u8>>)>,
    spoiled: bool,
}

/// Whether `spec` may be queued after `MULTI`: commands on keys, and `PING` and `ECHO`.
pub fn queueable(spec: &Spec) -> bool {
    commands::on_keys(spec) || matches!(spec.name, "ping" | "echo")
}

/// Queues a command of an open transaction (its name and arity checked), or refuses
/// it and spoils the transaction.
pub fn queue(door: &Door, queue: &mut Queue, spec: &'static Spec, args: &[Vec<u8>]) -> Reply {
    let checked = if !queueable(spec) {
        Err(Reply::err(format!("'{}' is not allowed inside a transaction on Concord (docs/redis.md)", spec.name)))
    } else if queue.commands.len() == QUEUED_MAX {
        Err(Reply::err(format!("a transaction queues at most {QUEUED_MAX} commands")))
    } else {
        commands::key_args(spec, args).try_for_each(|arg| keyspace::key(door, arg).map(drop))
    };
    match checked {
        Ok(()) => {
            queue.commands.push((spec, args.to_vec()));
            Reply::Simple("QUEUED".into())
        }
        Err(refused) => {
            queue.spoiled = true;
            refused
        }
    }
}

/// Marks the transaction spoiled by a command refused before it could be queued.
pub fn spoil(queue: &mut Queue) {
    queue.spoiled = true;
}

/// `EXEC`: runs the queue as one step.
pub async fn exec(door: &Door, session: &mut Session) -> Reply {
    let Some(queue) = session.multi.take() else {
        return Reply::err("EXEC without MULTI");
    };
    let watched = std::mem::take(&mut session.watched);
    if queue.spoiled {
        return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let queued: Vec<(&Spec, &[Vec<u8>])> = queue.commands.iter().map(|(spec, args)| (*spec, args.as_slice())).collect();
    match commands::together(door, &queued, &watched).await {
        Ok(Ran::Replies(replies)) => Reply::Array(replies),
        Ok(Ran::Aborted) => Reply::NullArray,
        Err(refused) => refused,
    }
}

/// `WATCH key...`: remembers each key's `mod_revision` now (a linearizable read).
pub async fn watch(door: &Door, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    if session.multi.is_some() {
        return Reply::err("WATCH inside MULTI is not allowed");
    }
    let keys = match args[1..].iter().map(|arg| keyspace::key(door, arg)).collect::<Result<BTreeSet<String>, Reply>>() {
        Ok(keys) => keys,
        Err(refused) => return refused,
    };
    match keyspace::read(door, &keys, &BTreeSet::new()).await {
        Ok(image) => {
            for (key, revision) in image.revisions() {
                session.watched.entry(key).or_insert(revision);
            }
            Reply::ok()
        }
        Err(refused) => refused,
    }
}

/// What `WATCH` left for the next `EXEC`, cleared by `UNWATCH`, `EXEC` and `DISCARD`.
pub fn unwatch(watched: &mut Watched) -> Reply {
    watched.clear();
    Reply::ok()
}
