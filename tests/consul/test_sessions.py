"""Consul's sessions and locks through python-consul / py-consul: a session is a
Concord lease, `acquire` takes a key for one session at a time, `LockIndex` counts
its holders, and when a session ends its keys are let go (with the lock delay) or
deleted, as its behavior says."""

import json
import time

import consul
import pytest

from conftest import wait_until


def test_the_issues_program_takes_a_lock_that_cannot_be_held_twice(cluster, key):
    first, second = (node.client() for node in cluster.nodes[:2])
    session = first.session.create(ttl=10, behavior='release')
    assert first.kv.put(f'{key}leader', 'me', acquire=session) is True
    _, data = second.kv.get(f'{key}leader')
    assert (data['Session'], data['LockIndex'], data['Value']) == (session, 1, b'me')
    other = second.session.create(ttl=10)
    assert second.kv.put(f'{key}leader', 'you', acquire=other) is False, "held by the first session"
    assert first.kv.put(f'{key}leader', 'me again', acquire=session) is True, "the holder may write again"
    assert second.kv.get(f'{key}leader')[1]['LockIndex'] == 1, "the same holder: no new acquisition"
    assert second.kv.put(f'{key}leader', 'x', release=other) is False, "only the holder releases"
    assert first.kv.put(f'{key}leader', 'done', release=session) is True
    _, data = second.kv.get(f'{key}leader')
    assert 'Session' not in data and data['Value'] == b'done'
    assert second.kv.put(f'{key}leader', 'you', acquire=other) is True, "an explicit release has no lock delay"
    assert first.kv.get(f'{key}leader')[1]['LockIndex'] == 2, "LockIndex counts the holders: a fencing token"
    # A plain write keeps the lock; a delete takes it away with the key.
    first.kv.put(f'{key}leader', 'plain')
    assert first.kv.get(f'{key}leader')[1]['Session'] == other
    first.kv.delete(f'{key}leader')
    assert first.kv.put(f'{key}leader', 'anew', acquire=session) is True
    assert first.kv.get(f'{key}leader')[1]['LockIndex'] == 1, "a new key counts from 1"


def test_a_session_ending_lets_its_keys_go_after_the_lock_delay_or_deletes_them(cluster, key):
    c = cluster.nodes[0].client()
    releasing = c.session.create(ttl=30, lock_delay=2)
    deleting = c.session.create(ttl=30, behavior='delete')
    assert c.kv.put(f'{key}released', 'r', acquire=releasing) and c.kv.put(f'{key}deleted', 'd', acquire=deleting)
    assert c.session.destroy(releasing) and c.session.destroy(deleting)
    destroyed = time.monotonic()
    assert c.kv.get(f'{key}deleted')[1] is None, "behavior delete: the key went with the session"
    _, data = c.kv.get(f'{key}released')
    assert 'Session' not in data and data['Value'] == b'r', "behavior release: the key stays, held by no one"
    taker = c.session.create(ttl=30)
    assert c.kv.put(f'{key}released', 'mine', acquire=taker) is False, "within the lock delay"
    wait_until("the lock delay to pass", lambda: c.kv.put(f'{key}released', 'mine', acquire=taker), timeout_s=15)
    assert time.monotonic() - destroyed >= 1.5, "not before the delay (2 s, less the time to destroy)"
    assert c.kv.get(f'{key}released')[1]['LockIndex'] == 2


def test_info_list_node_renew_and_destroy(cluster):
    c = cluster.nodes[1].client()
    session = c.session.create(name='worker', node='host-7', ttl=20, lock_delay=5)
    _, info = c.session.info(session)
    assert (info['ID'], info['Name'], info['Node'], info['Behavior'], info['TTL']) == (session, 'worker', 'host-7', 'release', '20s')
    assert info['LockDelay'] == 5_000_000_000 and info['CreateIndex'] >= 1
    assert session in [entry['ID'] for entry in c.session.list()[1]]
    assert [entry['ID'] for entry in c.session.node('host-7')[1]] == [session]
    assert c.session.node('no-such-node')[1] == []
    renewed = c.session.renew(session)
    assert renewed['ID'] == session
    assert c.session.destroy(session) is True
    assert c.session.info(session)[1] is None
    with pytest.raises(consul.NotFound):
        c.session.renew(session)


def test_a_session_ends_no_earlier_than_its_ttl_and_its_lock_goes_with_it(cluster, key):
    c = cluster.nodes[2].client()
    created = time.monotonic()
    session = c.session.create(ttl=10, lock_delay=0)
    assert c.kv.put(f'{key}lock', 'held', acquire=session) is True
    gone = wait_until("the session to expire", lambda: time.monotonic() if c.session.info(session)[1] is None else None, timeout_s=30)
    assert gone - created >= 10, "never before its TTL, on the replicated clock"
    _, data = c.kv.get(f'{key}lock')
    assert 'Session' not in data, "its lock was let go in the same step"


@pytest.mark.parametrize("body,says", [
    ({"TTL": "5s"}, "Invalid Session TTL"),
    ({"TTL": "25h"}, "Invalid Session TTL"),
    ({"Behavior": "forget"}, "Invalid Behavior"),
    ({"LockDelay": "2m"}, "Invalid LockDelay"),
    ({"TTL": 12}, ""),
])
def test_bad_sessions_are_refused_with_nothing_created(cluster, body, says):
    node = cluster.nodes[0]
    before = len(node.client().session.list()[1])
    status, text = node.consul_http("/v1/session/create", method="PUT", body=json.dumps(body).encode())
    if says:
        assert status == 400 and says in text.decode(), text
        assert len(node.client().session.list()[1]) == before
    else:
        assert status == 200, "a number is nanoseconds, 12 of them below 1,000: seconds"


def test_bad_locking_requests_are_refused_and_change_nothing(cluster, key):
    node = cluster.nodes[1]
    c = node.client()
    session = c.session.create(ttl=10)
    c.kv.put(f'{key}k', 'kept')
    for path, status, says in [
        (f"/v1/kv/{key}k?acquire=00000000-0000-4000-0000-00000fffffff", 500, "invalid session"),
        (f"/v1/kv/{key}k?acquire=not-a-session", 500, "invalid session"),
        (f"/v1/kv/{key}k?acquire={session}&cas=0", 400, "Conflicting flags"),
    ]:
        got, text = node.consul_http(path, method="PUT", body=b"changed")
        assert got == status and says in text.decode(), (path, text)
    status, _ = node.consul_http("/v1/session/create", method="PUT", body=b"{not json")
    assert status == 400
    _, data = c.kv.get(f'{key}k')
    assert data['Value'] == b'kept' and 'Session' not in data
