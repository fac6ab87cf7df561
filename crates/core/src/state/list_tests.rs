//! Unit tests of lists: Redis's order and edge cases, one kind per key, and a list
//! replaced or deleted whole leaving nothing a new list would see.

use super::command::{Command, Outcome, Precondition, Rejection};
use super::expiry::Ttl;
use super::kv::{KvCommand, KvOutcome, KvRejection};
use super::list::{End, ListCommand, ListOutcome, ListRead, ListRejection};
use super::tests::{Fixture, at, tick};
use super::txn::{Condition, KeyTest, Txn, TxnOp};

fn push(key: &str, items: &[&str], end: End) -> Command {
    Command::List(ListCommand::Push { key: key.into(), items: items.iter().map(|item| item.as_bytes().to_vec()).collect(), end, only_existing: false })
}

fn list(command: ListCommand) -> Command {
    Command::List(command)
}

/// The items of `key` as a reader sees them (`None`: no list).
fn items(f: &Fixture, key: &str) -> Option<Vec<String>> {
    match f.reader.list_items(key, 0, -1).unwrap().value {
        ListRead::Items { items, .. } => Some(items.into_iter().map(|item| String::from_utf8(item).unwrap()).collect()),
        ListRead::Absent | ListRead::NotAList => None,
    }
}

fn strings(words: &[&str]) -> Option<Vec<String>> {
    Some(words.iter().map(|word| word.to_string()).collect())
}

#[tokio::test]
async fn pushes_and_pops_keep_redis_order_at_both_ends_and_an_emptied_list_goes() {
    let mut f = Fixture::new();
    assert!(matches!(f.apply(push("q", &["a", "b"], End::Left)).await, Outcome::List(ListOutcome::Pushed { len: 2, .. })));
    f.apply(push("q", &["c", "d"], End::Right)).await;
    assert_eq!(items(&f, "q"), strings(&["b", "a", "c", "d"]), "LPUSH a b leaves b first");
    let popped = f.apply(list(ListCommand::Pop { key: "q".into(), end: End::Right, count: 3 })).await;
    assert!(matches!(popped, Outcome::List(ListOutcome::Popped { ref items, .. }) if *items == [b"d".to_vec(), b"c".to_vec(), b"a".to_vec()]), "{popped:?}");
    let revision = f.reader.position().unwrap().revision;
    let last = f.apply(list(ListCommand::Pop { key: "q".into(), end: End::Left, count: 9 })).await;
    assert!(matches!(last, Outcome::List(ListOutcome::Popped { ref items, .. }) if *items == [b"b".to_vec()]));
    assert_eq!(items(&f, "q"), None, "emptied, so gone");
    let (events, _) = f.reader.history("q", revision + 1, 10).unwrap().value.unwrap();
    assert_eq!(events.len(), 1, "a watch sees the list go");
    let nothing = f.apply(list(ListCommand::Pop { key: "q".into(), end: End::Left, count: 1 })).await;
    assert!(
        matches!(nothing, Outcome::List(ListOutcome::Popped { ref items, revision: at }) if items.is_empty() && at == revision + 1),
        "no change, no revision"
    );
    let only_existing = ListCommand::Push { key: "q".into(), items: vec![b"x".to_vec()], end: End::Left, only_existing: true };
    assert!(matches!(f.apply(list(only_existing)).await, Outcome::List(ListOutcome::Pushed { len: 0, .. })));
    assert_eq!(items(&f, "q"), None, "LPUSHX makes no list");
    assert_eq!(f.reader.key_counts().unwrap().value.keys, 0);
}

#[tokio::test]
async fn a_key_is_a_string_or_a_list_and_a_put_or_delete_takes_a_list_whole() {
    let mut f = Fixture::new();
    f.apply(Command::Kv(KvCommand::Put { key: "s".into(), value: b"v".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    for command in [push("s", &["x"], End::Left), list(ListCommand::Pop { key: "s".into(), end: End::Left, count: 1 })] {
        assert_eq!(f.apply(command).await, Outcome::Rejected(Rejection::List(ListRejection::WrongType { key: "s".into() })));
    }
    f.apply(push("l", &["1", "2", "3"], End::Right)).await;
    // A create-only put sees the list; a plain one replaces it.
    let create_only = KvCommand::Put { key: "l".into(), value: b"v".to_vec(), precondition: Precondition::Absent, lease: None, fence: None };
    assert!(matches!(f.apply(Command::Kv(create_only)).await, Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. }))));
    let put = KvCommand::Put { key: "l".into(), value: b"now a string".to_vec(), precondition: Precondition::Exists, lease: None, fence: None };
    assert!(matches!(f.apply(Command::Kv(put)).await, Outcome::Kv(KvOutcome::Put { .. })));
    assert_eq!(items(&f, "l"), None);
    // The key back as a list: none of the old items shows through.
    f.apply(Command::Kv(KvCommand::Delete { key: "l".into(), precondition: Precondition::None, fence: None })).await;
    f.apply(push("l", &["new"], End::Right)).await;
    assert_eq!(items(&f, "l"), strings(&["new"]));
    // A delete takes a list too, whatever its length.
    f.apply(push("l", &["1", "2"], End::Left)).await;
    assert!(matches!(
        f.apply(Command::Kv(KvCommand::Delete { key: "l".into(), precondition: Precondition::Exists, fence: None })).await,
        Outcome::Kv(KvOutcome::Deleted { .. })
    ));
    f.apply(push("l", &["again"], End::Left)).await;
    assert_eq!(items(&f, "l"), strings(&["again"]));
    assert_eq!(f.reader.key_counts().unwrap().value.keys, 2);
}

#[tokio::test]
async fn move_set_remove_and_trim_follow_redis() {
    let mut f = Fixture::new();
    f.apply(push("l", &["a", "b", "c"], End::Right)).await;
    let rotate = ListCommand::Move { source: "l".into(), destination: "l".into(), from: End::Right, to: End::Left };
    assert!(matches!(f.apply(list(rotate)).await, Outcome::List(ListOutcome::Moved { item: Some(ref item), .. }) if item == b"c"));
    assert_eq!(items(&f, "l"), strings(&["c", "a", "b"]));
    let over = ListCommand::Move { source: "l".into(), destination: "m".into(), from: End::Left, to: End::Right };
    f.apply(list(over)).await;
    assert_eq!((items(&f, "l"), items(&f, "m")), (strings(&["a", "b"]), strings(&["c"])));
    let missing = ListCommand::Move { source: "none".into(), destination: "m".into(), from: End::Left, to: End::Right };
    assert!(matches!(f.apply(list(missing)).await, Outcome::List(ListOutcome::Moved { item: None, .. })));

    f.apply(list(ListCommand::Set { key: "l".into(), index: -1, item: b"B".to_vec() })).await;
    assert_eq!(items(&f, "l"), strings(&["a", "B"]));
    let out_of_range = ListCommand::Set { key: "l".into(), index: 2, item: b"x".to_vec() };
    assert_eq!(f.apply(list(out_of_range)).await, Outcome::Rejected(Rejection::List(ListRejection::IndexOutOfRange { key: "l".into(), index: 2 })));
    let no_such_key = ListCommand::Set { key: "none".into(), index: 0, item: b"x".to_vec() };
    assert_eq!(f.apply(list(no_such_key)).await, Outcome::Rejected(Rejection::List(ListRejection::NoSuchKey { key: "none".into() })));

    f.apply(push("r", &["x", "1", "x", "2", "x"], End::Right)).await;
    let remove = |count| list(ListCommand::Remove { key: "r".into(), count, item: b"x".to_vec() });
    assert!(matches!(f.apply(remove(-1)).await, Outcome::List(ListOutcome::Removed { removed: 1, .. })));
    assert_eq!(items(&f, "r"), strings(&["x", "1", "x", "2"]), "the last one, counting from the right");
    assert!(matches!(f.apply(remove(1)).await, Outcome::List(ListOutcome::Removed { removed: 1, .. })));
    assert_eq!(items(&f, "r"), strings(&["1", "x", "2"]));
    assert!(matches!(f.apply(remove(0)).await, Outcome::List(ListOutcome::Removed { removed: 1, .. })));
    assert_eq!(items(&f, "r"), strings(&["1", "2"]));

    f.apply(push("t", &["0", "1", "2", "3", "4"], End::Right)).await;
    let trim = |start, stop| list(ListCommand::Trim { key: "t".into(), start, stop });
    f.apply(trim(1, -2)).await;
    assert_eq!(items(&f, "t"), strings(&["1", "2", "3"]));
    f.apply(trim(-100, 100)).await;
    assert_eq!(items(&f, "t"), strings(&["1", "2", "3"]), "out-of-range ends are clamped");
    f.apply(trim(2, 1)).await;
    assert_eq!(items(&f, "t"), None, "start after stop empties it");
}

#[tokio::test]
async fn pushes_are_bounded_and_a_refused_one_changes_nothing() {
    let mut f = Fixture::new();
    let empty = ListCommand::Push { key: "l".into(), items: Vec::new(), end: End::Left, only_existing: false };
    assert!(matches!(f.apply(list(empty)).await, Outcome::Rejected(Rejection::List(ListRejection::Invalid { .. }))));
    let too_many = ListCommand::Push { key: "l".into(), items: vec![Vec::new(); super::list::ITEMS_PER_COMMAND_MAX + 1], end: End::Left, only_existing: false };
    assert!(matches!(f.apply(list(too_many)).await, Outcome::Rejected(Rejection::List(ListRejection::Invalid { .. }))));
    assert_eq!(items(&f, "l"), None);
    assert_eq!(f.reader.position().unwrap().revision, 0);
}

#[tokio::test]
async fn a_list_expires_takes_part_in_transactions_and_is_watched_by_revision() {
    let mut f = Fixture::new();
    f.apply(push("l", &["a"], End::Left)).await;
    let revision = f.reader.position().unwrap().revision;
    // A transaction conditioned on the list's revision pushes onto it and pops another.
    let pushed = TxnOp::OnList(ListCommand::Push { key: "l".into(), items: vec![b"b".to_vec()], end: End::Left, only_existing: false });
    let txn =
        |at| Txn { compare: vec![Condition::Key { key: "l".into(), test: KeyTest::ModRevision(at) }], success: vec![pushed.clone()], failure: Vec::new() };
    assert!(matches!(f.apply(at(1, txn(revision))).await, Outcome::Txn(outcome) if outcome.succeeded));
    assert!(matches!(f.apply(at(1, txn(revision))).await, Outcome::Txn(outcome) if !outcome.succeeded), "the list moved since");
    assert_eq!(items(&f, "l"), strings(&["b", "a"]));
    // An expiry on a list, set and reached.
    let expire = KvCommand::Expire { key: "l".into(), ttl: Ttl::After { ttl_ms: 100 }, precondition: Precondition::None };
    assert!(matches!(f.apply(at(0, expire)).await, Outcome::Kv(KvOutcome::Put { .. })));
    assert_eq!(f.reader.get_string("l").unwrap().value, None, "a list is not a string");
    tick(&mut f, 99).await;
    assert!(items(&f, "l").is_some());
    tick(&mut f, 1).await;
    assert_eq!(items(&f, "l"), None);
    assert_eq!(f.reader.key_counts().unwrap().value, Default::default());
}

#[tokio::test]
async fn key_names_merge_strings_and_lists_in_order_within_the_prefix() {
    use super::reader::KeyKind::{List, String as Str};
    let mut f = Fixture::new();
    for key in ["a/1", "a/3", "b/1"] {
        f.apply(Command::Kv(KvCommand::Put { key: key.into(), value: b"v".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    }
    for key in ["a/0", "a/2", "a/4", "c/1"] {
        f.apply(push(key, &["x"], End::Left)).await;
    }
    let names = |after: Option<&str>, limit| f.reader.key_names("a/", after, limit).unwrap().value;
    let all = vec![("a/0".to_string(), List), ("a/1".into(), Str), ("a/2".into(), List), ("a/3".into(), Str), ("a/4".into(), List)];
    assert_eq!(names(None, 10), (all.clone(), false));
    assert_eq!(names(None, 2), (all[..2].to_vec(), true));
    assert_eq!(names(Some("a/1"), 2), (all[2..4].to_vec(), true));
    assert_eq!(names(Some("a/3"), 2), (all[4..].to_vec(), false));
    assert_eq!(f.reader.key_names("", None, 100).unwrap().value.0.len(), 7);
}

/// The outcome's revision, which the model is given rather than counting.
fn revision_of(outcome: &ListOutcome) -> u64 {
    match outcome {
        ListOutcome::Pushed { revision, .. }
        | ListOutcome::Popped { revision, .. }
        | ListOutcome::Moved { revision, .. }
        | ListOutcome::Set { revision }
        | ListOutcome::Removed { revision, .. }
        | ListOutcome::Trimmed { revision } => *revision,
    }
}

#[tokio::test]
async fn the_stored_lists_agree_with_the_model_command_by_command() {
    use super::list_model::{self, Lists};
    // A small xorshift: the same 3,000 commands each run, over three keys and three
    // item values, so removals and moves meet equal items, empty lists and rotations.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let (mut f, mut model) = (Fixture::new(), Lists::new());
    let keys = ["a", "b", "c"];
    for step in 0..3_000 {
        let key = keys[next(3) as usize].to_string();
        let end = if next(2) == 0 { End::Left } else { End::Right };
        let item = || format!("{}", step % 3).into_bytes();
        let index = next(9) as i64 - 4;
        let command = match next(7) {
            0 | 1 => ListCommand::Push { key, items: (0..=next(3)).map(|_| item()).collect(), end, only_existing: next(5) == 0 },
            2 => ListCommand::Pop { key, end, count: next(4) as u32 },
            3 => {
                ListCommand::Move { source: key, destination: keys[next(3) as usize].into(), from: end, to: if next(2) == 0 { End::Left } else { End::Right } }
            }
            4 => ListCommand::Set { key, index, item: item() },
            5 => ListCommand::Remove { key, count: index, item: item() },
            _ => ListCommand::Trim { key, start: index, stop: next(9) as i64 - 4 },
        };
        let stored = match f.apply(list(command.clone())).await {
            Outcome::List(outcome) => Ok(outcome),
            Outcome::Rejected(Rejection::List(refused)) => Err(refused),
            other => panic!("step {step}: {other:?}"),
        };
        let revision = stored.as_ref().map_or(0, revision_of);
        assert_eq!(list_model::apply(&mut model, &command, revision), stored, "step {step}: {command}");
        for key in keys {
            let modelled = model.get(key).map(|list| list.iter().map(|item| String::from_utf8(item.clone()).unwrap()).collect());
            assert_eq!(items(&f, key), modelled, "step {step}: list {key} after {command}");
        }
    }
}
