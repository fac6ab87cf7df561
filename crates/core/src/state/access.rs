//! What a request needs of the caller's token, decided on the typed request: the role,
//! and the names it touches. A command says it itself (`Command::access`), a read is
//! described by its door with the constructors here, and a door checks the caller's
//! token against it (`Caller::permits`), so every door (the HTTP API, Redis's, Consul's)
//! enforces the same rules without a table of routes of its own.
//!
//! The rules: `read` reads, `write` changes, `admin` manages tokens and the cluster;
//! each role includes the ones before it. A token confined to prefixes may touch only
//! keys, locks, queues, topics and rings whose names start with one of them, and list,
//! watch or delete by prefix only under one of them. Leases carry no name: any `write`
//! token may use them.

use super::auth::Role;

/// What a request needs: `role` and every name in `touches`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    pub touches: Vec<Touches>,
}

/// A name a request touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touches {
    /// The key, lock, queue, topic or ring of this name (`what` says which, for the
    /// refusal's words).
    Name { what: &'static str, name: String },
    /// Everything whose name starts with this (a listing, a watch, a prefix delete).
    Prefix(String),
}

impl Access {
    /// Needs `role`, and touches no name (leases, the cluster's status, tokens).
    pub fn unnamed(role: Role) -> Self {
        Self { role, touches: Vec::new() }
    }

    /// Needs `role` for the `what` called `name`.
    pub fn name(role: Role, what: &'static str, name: &str) -> Self {
        Self { role, touches: vec![Touches::Name { what, name: name.to_string() }] }
    }

    /// Needs `role` for everything under `prefix`.
    pub fn prefix(role: Role, prefix: &str) -> Self {
        Self { role, touches: vec![Touches::Prefix(prefix.to_string())] }
    }

    /// Needs what both need.
    pub fn and(mut self, other: Access) -> Self {
        self.role = self.role.max(other.role);
        self.touches.extend(other.touches);
        self
    }
}

/// A caller whose token was checked: who, with which role and names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub prefixes: Vec<String>,
}

impl Caller {
    /// May this caller touch the resource called `name`?
    pub fn may_name(&self, name: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Whether this caller's token covers `access`; if not, why, in words for the caller.
    pub fn permits(&self, access: &Access) -> Result<(), String> {
        if self.role < access.role {
            return Err(format!("token {} has role {}; this request needs {}", self.id, self.role.name(), access.role.name()));
        }
        for touched in &access.touches {
            match touched {
                Touches::Name { what, name } if !self.may_name(name) => {
                    return Err(format!("token {} may only name {what}s starting with {:?}, not {name:?}", self.id, self.prefixes));
                }
                Touches::Prefix(prefix) if !self.may_name(prefix) => {
                    return Err(format!(
                        "token {} may only list, watch and delete under {:?}; ask with a prefix inside one of them, not {prefix:?}",
                        self.id, self.prefixes
                    ));
                }
                Touches::Name { .. } | Touches::Prefix(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, prefixes: &[&str]) -> Caller {
        Caller { id: 7, name: "t".into(), role, prefixes: prefixes.iter().map(|p| p.to_string()).collect() }
    }

    #[test]
    fn roles_include_lower_roles_and_prefixes_confine_names() {
        let write_app = caller(Role::Write, &["app/"]);
        assert!(write_app.permits(&Access::name(Role::Read, "key", "app/x")).is_ok());
        assert!(write_app.permits(&Access::name(Role::Write, "key", "app/x")).is_ok());
        assert!(write_app.permits(&Access::name(Role::Write, "queue", "ap")).unwrap_err().contains("may only name queues starting with"));
        assert!(write_app.permits(&Access::unnamed(Role::Admin)).unwrap_err().contains("needs admin"));
        assert!(write_app.permits(&Access::prefix(Role::Read, "app/sub")).is_ok());
        assert!(write_app.permits(&Access::prefix(Role::Read, "")).unwrap_err().contains("may only list, watch and delete under"));
        // Every name counts: one outside the prefixes refuses the whole request.
        let both = Access::name(Role::Write, "key", "app/x").and(Access::name(Role::Write, "lock", "other"));
        assert!(write_app.permits(&both).is_err());
        let read_any = caller(Role::Read, &[]);
        assert!(read_any.permits(&Access::prefix(Role::Read, "")).is_ok());
        assert!(read_any.permits(&Access::unnamed(Role::Write)).is_err());
        assert_eq!(Access::unnamed(Role::Read).and(Access::unnamed(Role::Admin)).role, Role::Admin);
    }

    /// What commands touch, as their primitives say.
    #[test]
    fn a_command_touches_every_name_it_reaches() {
        use crate::state::command::{Command, Fence, Precondition, Receipt, Request};
        use crate::state::kv::KvCommand;
        use crate::state::queue::{QueueCommand, QueueSettings};
        use crate::state::txn::{Condition, KeyTest, Txn, TxnOp};
        let names = |command: Command| -> (Role, Vec<String>) {
            let access = command.access();
            let touched = access.touches.into_iter().map(|t| match t {
                Touches::Name { what, name } => format!("{what} {name}"),
                Touches::Prefix(prefix) => format!("under {prefix}"),
            });
            (access.role, touched.collect())
        };
        let fenced = KvCommand::Put {
            key: "app/k".into(),
            value: Vec::new(),
            precondition: Precondition::None,
            lease: None,
            fence: Some(Fence { lock: "db".into(), token: 1 }),
        };
        assert_eq!(names(fenced.clone().into()), (Role::Write, vec!["key app/k".into(), "lock db".into()]));
        let settings = QueueSettings { dead_letter_queue: Some("dead".into()), ..QueueSettings::default() };
        assert_eq!(names(QueueCommand::Configure { queue: "jobs".into(), settings }.into()), (Role::Write, vec!["queue jobs".into(), "queue dead".into()]));
        let receipt = Receipt { id: 1, delivery: 2 };
        let txn = Txn {
            compare: vec![
                Condition::Key { key: "a".into(), test: KeyTest::Exists },
                Condition::LeaseAlive { lease: 3 },
                Condition::ReceiptValid { queue: "q".into(), receipt },
            ],
            success: vec![TxnOp::List { prefix: "p/".into(), limit: 1 }, TxnOp::Publish { topic: "t".into(), payload: Vec::new() }],
            failure: vec![TxnOp::LockRelease { lock: "l".into(), token: 1 }, TxnOp::LeaseRevoke { lease: 3 }],
        };
        let expected = ["key a", "queue q", "under p/", "topic t", "lock l"].map(String::from).to_vec();
        assert_eq!(names(txn.into()), (Role::Write, expected));
        let batch =
            Command::Batch(vec![Request::from(fenced), Request::from(KvCommand::Delete { key: "x".into(), precondition: Precondition::None, fence: None })]);
        assert_eq!(names(batch).1, ["key app/k", "lock db", "key x"]);
        assert_eq!(names(crate::state::auth::AuthCommand::Disable.into()).0, Role::Admin);
    }
}
