"""Scripts through redis-py: its Lock, which is built on them, unchanged; scripts as
atomic steps under contention from several nodes; and what a script may not do."""

import threading
import time

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError

from conftest import wait_until


def other_node(cluster, protocol):
    """A client of the node the `r` fixture does not use."""
    return cluster.followers()[-1].client(protocol=protocol, socket_timeout=10)


def test_the_lock_of_redis_py_acquires_extends_reacquires_and_releases(r, cluster, protocol, key):
    name = f"{key}lock"
    lock = r.lock(name, timeout=5)
    assert lock.acquire(blocking=False)
    rival = other_node(cluster, protocol).lock(name, timeout=5)
    assert not rival.acquire(blocking=False), "held by the first"
    assert lock.owned() and lock.locked() and rival.locked() and not rival.owned()
    assert lock.extend(5)
    assert 5000 < r.pttl(name) <= 10000, "extend adds to what is left"
    assert lock.extend(3, replace_ttl=True)
    assert r.pttl(name) <= 3000
    assert lock.reacquire()
    assert 3000 < r.pttl(name) <= 5000, "reacquire sets the timeout again"
    lock.release()
    assert rival.acquire(blocking=False)
    with pytest.raises(LockError):
        lock.release()
    rival.release()
    with r.lock(name, timeout=5):
        assert r.exists(name) == 1
    assert r.exists(name) == 0


def test_a_blocking_acquire_waits_for_the_release_on_another_node(r, cluster, protocol, key):
    name = f"{key}lock"
    holder = r.lock(name, timeout=10)
    assert holder.acquire()
    waited = {}

    def wait_for_it():
        waiter = other_node(cluster, protocol).lock(name, timeout=10, sleep=0.05, blocking_timeout=10)
        started = time.monotonic()
        waited["acquired"] = waiter.acquire()
        waited["after_s"] = time.monotonic() - started
        waiter.release()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    time.sleep(0.5)
    assert "acquired" not in waited, "it did not wait"
    holder.release()
    thread.join(timeout=15)
    assert waited["acquired"] and waited["after_s"] >= 0.4, waited


def test_a_lock_whose_timeout_passes_is_gone_and_its_holder_told_so(r, key):
    name = f"{key}lock"
    lock = r.lock(name, timeout=1)
    sent = time.monotonic()
    assert lock.acquire()
    went = wait_until("the lock to expire", lambda: time.monotonic() if r.exists(name) == 0 else None, timeout_s=10)
    assert went - sent >= 1, "expired before its timeout"
    with pytest.raises(LockNotOwnedError):
        lock.reacquire()
    with pytest.raises(LockNotOwnedError):
        lock.extend(1)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    with pytest.raises(LockError):
        r.lock(name, timeout=1, blocking_timeout=0.01).release()


INCREMENT = "local n = tonumber(redis.call('get', KEYS[1]) or '0') + 1 redis.call('set', KEYS[1], n) return n"


def test_scripts_from_six_clients_on_three_nodes_lose_no_update(cluster, protocol, key):
    counter = f"{key}counter"
    clients = [node.client(protocol=protocol, socket_timeout=10) for node in cluster.nodes for _ in range(2)]
    increment = clients[0].register_script(INCREMENT)
    seen = []

    def work(client):
        for _ in range(15):
            seen.append(increment(keys=[counter], client=client))

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 91)), "each run saw its own value, none lost"
    assert clients[0].get(counter) == b"90"


def test_a_script_that_fails_changes_nothing_and_one_may_touch_only_its_keys(r, key):
    r.set(f"{key}a", "before")
    failing = "redis.call('set', KEYS[1], 'after') return redis.call('incr', KEYS[1])"
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.eval(failing, 1, f"{key}a")
    assert r.get(f"{key}a") == b"before", "the set before the error was undone"
    with pytest.raises(redis.ResponseError, match="did not declare"):
        r.eval("return redis.call('get', 'undeclared')", 0)
    with pytest.raises(redis.ResponseError, match="cannot be called from a script"):
        r.eval("return redis.call('publish', 'c', 'm')", 0)
    with pytest.raises(redis.ResponseError, match="instructions"):
        r.eval("while true do end", 0)
    with pytest.raises(redis.ResponseError, match="Error compiling"):
        r.eval("return (", 0)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.eval("return redis.pcall('incr', KEYS[1])", 1, f"{key}a")
    assert r.eval("local answer = redis.pcall('incr', KEYS[1]) return answer.err ~= nil", 1, f"{key}a") == 1


def test_evalsha_needs_a_loaded_script_and_the_cache_is_the_nodes(r, cluster, protocol):
    sha = r.script_load("return 'loaded'")
    assert r.evalsha(sha, 0) == b"loaded"
    assert r.script_exists(sha, "0" * 40) == [True, False]
    elsewhere = cluster.leader().client(protocol=protocol)
    with pytest.raises(redis.exceptions.NoScriptError):
        elsewhere.evalsha(sha, 0)
    r.script_flush()
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha(sha, 0)


FENCED_SET = """
if redis.call('concord.fence', KEYS[1]) ~= tonumber(ARGV[1]) then
  return redis.error_reply('FENCED the lock has passed on')
end
return redis.call('set', KEYS[2], ARGV[2])
"""


def test_a_lock_key_gives_a_fencing_token_that_grows_with_each_holder(r, cluster, protocol, key):
    name, data = f"{key}lock", f"{key}data"
    assert r.execute_command("CONCORD.FENCE", name) is None
    first = r.lock(name, timeout=5)
    assert first.acquire()
    token = r.execute_command("CONCORD.FENCE", name)
    status, body = cluster.nodes[0].http(f"/v1/kv/{name}")
    assert status == 200 and f'"create_revision":{token},' in body.decode(), "the token is the key's creation revision"
    assert first.extend(5) and r.execute_command("CONCORD.FENCE", name) == token, "extending keeps the token"
    fenced_set = r.register_script(FENCED_SET)
    assert fenced_set(keys=[name, data], args=[token, "by the first"]) == b"OK"
    first.release()
    second = other_node(cluster, protocol).lock(name, timeout=5)
    assert second.acquire()
    newer = r.execute_command("CONCORD.FENCE", name)
    assert newer > token, "a later holder has a higher token"
    with pytest.raises(redis.ResponseError, match="FENCED"):
        fenced_set(keys=[name, data], args=[token, "by the first, too late"])
    assert fenced_set(keys=[name, data], args=[newer, "by the second"]) == b"OK"
    assert r.get(data) == b"by the second"
    second.release()
