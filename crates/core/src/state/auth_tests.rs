//! Unit tests of client tokens in the state machine: ids, counts, the limit, and the
//! rules apply enforces whatever the API checked (admin to enable, last admin kept).

use super::auth::{AuthCommand, AuthOutcome, AuthRejection};
use super::auth::{Role, TOKENS_MAX, TokenRecord};
use super::command::{Command, Outcome, Rejection};
use super::tests::Fixture;

fn token(role: Role, prefixes: &[&str]) -> Command {
    Command::Auth(AuthCommand::TokenCreate(TokenRecord {
        name: "t".into(),
        role,
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        secret_sha256: [7; 32],
    }))
}

async fn create(f: &mut Fixture, role: Role) -> u64 {
    match f.apply(token(role, &[])).await {
        Outcome::Auth(AuthOutcome::TokenCreated { id }) => id,
        other => panic!("create answered {other:?}"),
    }
}

#[tokio::test]
async fn ids_are_log_indexes_and_enabling_takes_an_admin_that_still_exists() {
    let mut f = Fixture::new();
    let reader = create(&mut f, Role::Read).await;
    let admin = create(&mut f, Role::Admin).await;
    assert_eq!((reader, admin), (1, 2), "a token's id is its entry's index");
    assert_eq!(
        f.apply(Command::Auth(AuthCommand::Enable { by: reader })).await,
        Outcome::Rejected(Rejection::Auth(AuthRejection::NotAdminToken { id: reader }))
    );
    assert_eq!(f.apply(Command::Auth(AuthCommand::Enable { by: 99 })).await, Outcome::Rejected(Rejection::Auth(AuthRejection::NotAdminToken { id: 99 })));
    assert!(!f.reader.auth_settings().unwrap().value.enabled, "a refused enable changed nothing");
    // Revoked between the API's check and apply: refused.
    let second = create(&mut f, Role::Admin).await;
    assert_eq!(f.apply(Command::Auth(AuthCommand::TokenRevoke { id: second })).await, Outcome::Auth(AuthOutcome::TokenRevoked { id: second }));
    assert_eq!(
        f.apply(Command::Auth(AuthCommand::Enable { by: second })).await,
        Outcome::Rejected(Rejection::Auth(AuthRejection::NotAdminToken { id: second }))
    );
    assert!(!f.reader.tokens_required(), "not yet required");
    assert_eq!(f.apply(Command::Auth(AuthCommand::Enable { by: admin })).await, Outcome::Auth(AuthOutcome::Changed { enabled: true }));
    assert!(f.reader.tokens_required(), "the in-memory copy follows the applied enable");
    let settings = f.reader.auth_settings().unwrap().value;
    assert_eq!((settings.enabled, settings.tokens, settings.admins), (true, 2, 1));
    let stored = f.reader.token(reader).unwrap().value.unwrap();
    assert_eq!((stored.role, stored.secret_sha256), (Role::Read, [7; 32]));
}

#[tokio::test]
async fn the_last_admin_token_stays_while_tokens_are_required() {
    let mut f = Fixture::new();
    let admin = create(&mut f, Role::Admin).await;
    let other = create(&mut f, Role::Admin).await;
    f.apply(Command::Auth(AuthCommand::Enable { by: admin })).await;
    assert_eq!(f.apply(Command::Auth(AuthCommand::TokenRevoke { id: other })).await, Outcome::Auth(AuthOutcome::TokenRevoked { id: other }));
    assert_eq!(
        f.apply(Command::Auth(AuthCommand::TokenRevoke { id: admin })).await,
        Outcome::Rejected(Rejection::Auth(AuthRejection::LastAdminToken { id: admin }))
    );
    assert!(f.reader.token(admin).unwrap().value.is_some());
    assert_eq!(
        f.apply(Command::Auth(AuthCommand::TokenRevoke { id: other })).await,
        Outcome::Rejected(Rejection::Auth(AuthRejection::TokenNotFound { id: other }))
    );
    // Once tokens are not required, it may go.
    assert_eq!(f.apply(Command::Auth(AuthCommand::Disable)).await, Outcome::Auth(AuthOutcome::Changed { enabled: false }));
    assert!(!f.reader.tokens_required(), "and the applied disable");
    assert_eq!(f.apply(Command::Auth(AuthCommand::TokenRevoke { id: admin })).await, Outcome::Auth(AuthOutcome::TokenRevoked { id: admin }));
    let settings = f.reader.auth_settings().unwrap().value;
    assert_eq!((settings.tokens, settings.admins), (0, 0));
}

#[tokio::test]
async fn tokens_are_bounded_in_number_and_shape_and_listed_in_pages() {
    let mut f = Fixture::new();
    for invalid in [token(Role::Admin, &["a/"]), token(Role::Read, &[""]), token(Role::Read, &["p"; 17])] {
        assert!(matches!(f.apply(invalid).await, Outcome::Rejected(Rejection::Auth(AuthRejection::TokenInvalid { .. }))));
    }
    for _ in 0..TOKENS_MAX {
        create(&mut f, Role::Read).await;
    }
    assert_eq!(f.apply(token(Role::Read, &[])).await, Outcome::Rejected(Rejection::Auth(AuthRejection::TokenLimit { limit: TOKENS_MAX })));
    let (first, more) = f.reader.tokens(None, 600).unwrap().value;
    let last = first.last().unwrap().0;
    let (rest, end) = f.reader.tokens(Some(last), 600).unwrap().value;
    assert!(more && !end);
    assert_eq!(first.len() + rest.len(), TOKENS_MAX as usize);
    assert!(rest.iter().all(|(id, _)| *id > last));
    assert_eq!(f.reader.tokens(Some(u64::MAX), 10).unwrap().value.0.len(), 0);
}
