"""The Redis door through a leader's death, on a cluster of the test's own (the
shared one stays whole for the other tests)."""

import threading
import time

import pytest
import redis

from conftest import Cluster, wait_until


@pytest.fixture
def own_cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


def answer_or_none(call):
    """The call's answer, or None while the cluster cannot give a definite one."""
    try:
        return call()
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.TryAgainError):
        return None


def test_a_ttl_is_neither_reset_nor_shortened_by_a_leader_change(own_cluster):
    leader = own_cluster.leader()
    survivor = own_cluster.followers()[0].client(socket_timeout=5)
    sent = time.monotonic()
    assert survivor.set("lock/owner", "me", px=8000)
    assert 0 < survivor.pttl("lock/owner") <= 8000
    # Let 4 of the 8 s run out with the key present, then kill the leader.
    while time.monotonic() - sent < 4:
        assert survivor.get("lock/owner") == b"me"
        time.sleep(0.2)
    killed = time.monotonic()
    leader.kill()
    own_cluster.wait_for_leader()
    failover = time.monotonic() - killed

    def gone():
        return time.monotonic() if answer_or_none(lambda: survivor.exists("lock/owner")) == 0 else None

    went = wait_until("the key to expire", gone, timeout_s=30)
    assert went - sent >= 8, f"expired {8 - (went - sent):.2f} s early"
    # About 4 s were left when the leader died; a reset would have given 8 more
    # after the new leader took over.
    after_failover = went - (killed + failover)
    assert after_failover < 7, f"the ttl was reset by the leader change: it lived {after_failover:.2f} s past the failover"


def test_a_brpop_waits_through_the_leaders_death_and_gets_the_next_push(own_cluster):
    survivors = own_cluster.followers()
    leader = own_cluster.leader()
    waiter = survivors[0].client(socket_timeout=60)
    got = {}

    def wait():
        got["item"] = waiter.brpop("jobs", timeout=40)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    leader.kill()
    own_cluster.wait_for_leader()
    assert "item" not in got, "the wait ended with the leader"
    producer = survivors[1].client(socket_timeout=10)
    wait_until("a push the new leader takes", lambda: answer_or_none(lambda: producer.lpush("jobs", "after the failover")))
    thread.join(timeout=45)
    assert got.get("item") == (b"jobs", b"after the failover"), got
    assert producer.exists("jobs") == 0
