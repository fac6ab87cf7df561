"""redis-py against a 3-node Concord cluster through the Redis door, in RESP2 and
RESP3: the commands Redis users write, across nodes, and with Concord's own API."""

import json
import socket
import threading
import time

import pytest
import redis

from conftest import wait_until


def run_at_once(workers):
    """Runs each of `workers` (functions of no argument) in its own thread, all at once;
    returns the Redis errors they raised."""
    errors = []

    def guarded(work):
        try:
            work()
        except redis.RedisError as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_strings_set_over_redis_are_concord_keys_and_back(cluster, r, key):
    assert r.set(f"{key}greeting", "hello") is True
    leader = cluster.leader()
    status, body = leader.http(f"/v1/kv/{key}greeting")
    assert (status, json.loads(body)["value"]) == (200, "hello")
    assert leader.http(f"/v1/kv/{key}from-http", method="PUT", body=b"\x00\xffbinary")[0] in (200, 201)
    assert r.get(f"{key}from-http") == b"\x00\xffbinary"
    assert r.get(f"{key}missing") is None
    assert r.type(f"{key}greeting") in (b"string", "string") and r.type(f"{key}missing") in (b"none", "none")


def test_every_node_answers_and_sees_the_others_writes(cluster, protocol, key):
    clients = [node.client(protocol=protocol) for node in cluster.nodes]
    for i, client in enumerate(clients):
        client.set(f"{key}{i}", i)
    for client in clients:
        assert client.mget([f"{key}{i}" for i in range(3)]) == [b"0", b"1", b"2"]


def test_set_options_and_the_read_and_write_commands(r, key):
    k = f"{key}k"
    assert r.set(k, "1", nx=True) is True
    assert r.set(k, "2", nx=True) is None
    assert r.set(f"{key}absent", "2", xx=True) is None
    assert r.set(k, "3", xx=True) is True
    assert r.set(k, "4", get=True) == b"3"
    assert r.getset(k, "5") == b"4"
    assert r.getdel(k) == b"5" and r.getdel(k) is None
    assert r.setnx(k, "6") is True and r.setnx(k, "7") is False
    assert r.msetnx({k: "8", f"{key}other": "9"}) is False and r.get(f"{key}other") is None
    assert r.mset({f"{key}a": "1", f"{key}b": "2"}) is True
    assert r.exists(f"{key}a", f"{key}b", f"{key}a", f"{key}none") == 3
    assert r.strlen(f"{key}a") == 1 and r.strlen(f"{key}none") == 0
    assert r.append(f"{key}a", "23") == 3 and r.get(f"{key}a") == b"123"
    assert r.delete(f"{key}a", f"{key}b", f"{key}none") == 2


def test_counters_count_every_increment_from_every_node(cluster, protocol, key):
    counter = f"{key}counter"

    def bump(node):
        client = node.client(protocol=protocol)
        for _ in range(25):
            client.incr(counter)

    assert run_at_once([lambda node=node: bump(node) for node in cluster.nodes for _ in range(2)]) == []
    assert int(cluster.nodes[0].client().get(counter)) == 150


def test_dbsize_and_info_count_the_keys_every_node_sees(cluster, r, key):
    before = r.dbsize()
    r.mset({f"{key}a": 1, f"{key}b": 2})
    r.set(f"{key}c", 3, ex=100)
    cluster.nodes[0].http(f"/v1/kv/{key}d", "PUT", b"over http")
    assert r.dbsize() == before + 4, "strings from either door count"
    r.delete(f"{key}a")
    counts = [node.client().dbsize() for node in cluster.nodes]
    assert counts == [before + 3] * 3, "every node answers the same, linearizably"
    keyspace = r.info("keyspace")["db0"]
    assert keyspace["keys"] >= before + 3 and keyspace["expires"] >= 1, keyspace
    r.delete(f"{key}b", f"{key}c", f"{key}d")
    assert r.dbsize() == before


def test_a_pipeline_is_answered_in_order(r, key):
    pipe = r.pipeline(transaction=False)
    for i in range(50):
        pipe.set(f"{key}{i}", i).get(f"{key}{i}").incr(f"{key}{i}")
    answers = pipe.execute()
    assert answers == [value for i in range(50) for value in (True, str(i).encode(), i + 1)]


def test_errors_have_redis_classes_and_change_nothing(r, key):
    r.set(f"{key}text", "abc")
    for call, message in [
        (lambda: r.incr(f"{key}text"), "value is not an integer or out of range"),
        (lambda: r.execute_command("NOSUCH", "x"), "unknown command 'NOSUCH', with args beginning with: 'x' "),
        (lambda: r.execute_command("GET"), "wrong number of arguments for 'get' command"),
        (lambda: r.execute_command("SELECT", "1"), "Concord has one database: SELECT 0 only"),
        (lambda: r.set(f"{key}t", "1", ex=0), "invalid expire time in 'set' command"),
        (lambda: r.execute_command("SET", f"{key}t", "1", "NX", "XX"), "syntax error"),
    ]:
        with pytest.raises(redis.ResponseError) as raised:
            call()
        assert message in str(raised.value)
    assert r.get(f"{key}text") == b"abc" and r.get(f"{key}t") is None


def test_hello_and_client_commands(cluster, protocol):
    client = cluster.nodes[0].client(protocol=protocol, client_name="worker-1")
    assert client.client_getname() in (b"worker-1", "worker-1")
    info = client.client_info()
    assert info["name"] == "worker-1" and info["lib-name"].startswith("redis-py") and int(info["resp"]) == protocol
    hello = client.execute_command("HELLO", str(protocol))
    if isinstance(hello, list):  # RESP2 has no maps: keys and values alternate
        hello = dict(zip(hello[::2], hello[1::2]))
    assert hello[b"proto"] == protocol and hello[b"server"] == b"redis"
    assert client.info("replication")["role"] in ("master", "slave")
    assert client.ping() and client.echo("hi") == b"hi"


def raw(port, payload, read_bytes=4096):
    """Sends `payload` on a new connection; returns all the node answered before closing
    (or before 2 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(payload)
        answer = b""
        try:
            while chunk := connection.recv(read_bytes):
                answer += chunk
        except socket.timeout:
            pass
        return answer


def test_bad_framing_is_answered_and_the_node_keeps_serving(cluster, key):
    node = cluster.nodes[1]
    cases = {
        b"*1\r\n$999999999999\r\n": b"-ERR Protocol error: invalid bulk length\r\n",
        b"*99999999\r\n": b"-ERR Protocol error: invalid multibulk length\r\n",
        b"*1\r\n:5\r\n": b"-ERR Protocol error: expected '$', got ':'\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nabc": b"-ERR Protocol error: bulk string not followed by CRLF\r\n",
        b"*" + b"9" * 70000: b"-ERR Protocol error: too big mbulk count string\r\n",
    }
    for payload, answer in cases.items():
        assert raw(node.redis_port, payload) == answer, payload[:40]
    # Binary garbage as an inline command is an unknown command, and the session goes on.
    assert raw(node.redis_port, b"\x01\x02\x03\r\nPING\r\n").endswith(b"+PONG\r\n")
    client = node.client()
    assert client.set(f"{key}after", "ok") and client.get(f"{key}after") == b"ok"


def test_tokens_apply_to_the_redis_door():
    from conftest import Cluster

    cluster = Cluster()
    try:
        leader = cluster.leader()
        status, body = leader.http("/v1/auth/tokens", method="POST", body=json.dumps({"name": "ops", "role": "admin"}).encode())
        admin = json.loads(body)["token"]
        status, body = leader.http("/v1/auth/tokens", method="POST", body=json.dumps({"name": "app", "role": "write", "prefixes": ["app/"]}).encode())
        app = json.loads(body)["token"]
        request = __import__("urllib.request").request.Request(
            f"http://127.0.0.1:{leader.http_port}/v1/auth/enable", method="POST", headers={"Authorization": f"Bearer {admin}"})
        __import__("urllib.request").request.urlopen(request, timeout=10)
        node = cluster.followers()[0]
        anonymous = node.client()
        # The follower may apply the enable a moment after the leader.
        from conftest import wait_until
        wait_until("the follower to require tokens", lambda: _refused(anonymous))
        with pytest.raises(redis.AuthenticationError):
            node.client(password="1.wrong").ping()
        for protocol in (2, 3):
            client = node.client(password=app, protocol=protocol)
            assert client.set("app/x", "1") and client.get("app/x") == b"1"
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set("other/x", "1")
        assert node.client(password=admin).get("other/x") is None
    finally:
        cluster.stop()


def _refused(client):
    try:
        client.get("app/x")
    except redis.AuthenticationError:
        return True
    return False


def test_concord_dev_serves_redis_on_every_node_over_tls(tmp_path):
    """`concord dev --tls` puts the Redis door on every member, 1000 ports below the
    HTTP ones, and it speaks TLS with the cluster's certificates."""
    import os
    import signal
    import subprocess

    from conftest import BIN, wait_until

    base = _free_run(3, also_below=1000)
    dev = subprocess.Popen([BIN, "dev", "--tls", "--base-port", str(base), "--data-dir", str(tmp_path)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = []
        wait_until("the dev banner", lambda: banner.append(dev.stdout.readline()) or "redis:" in banner[-1], timeout_s=60)
        assert banner[-1].split() == ["redis:", "redis-cli", "-p", str(base - 1000), "|", "redis-cli", "-p", str(base - 999), "|",
                                      "redis-cli", "-p", str(base - 998), "(with", "--tls", "--cacert", "<CA>)"]
        ca = os.path.join(tmp_path, "tls", "ca.pem")
        clients = [redis.Redis(port=base - 1000 + i, ssl=True, ssl_ca_certs=ca, socket_timeout=10) for i in range(3)]
        assert clients[0].set("over-tls", "yes")
        assert [client.get("over-tls") for client in clients] == [b"yes"] * 3
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=base - 1000, socket_timeout=2).ping()
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)


def _free_run(count, also_below, also_above=1500):
    """A port with `count` free ports from it, and the same `also_below` lower and
    `also_above` higher (the Consul doors of `concord dev`)."""
    import random

    for _ in range(200):
        base = random.randint(20000, 40000)
        ports = [first + i for first in (base, base - also_below, base + also_above) for i in range(count)]
        try:
            sockets = []
            for port in ports:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no free run of ports")


def test_a_watched_key_changed_by_another_client_aborts_exec(cluster, protocol, key):
    first, second = (node.client(protocol=protocol) for node in cluster.nodes[:2])
    balance = f"{key}balance"
    first.set(balance, 100)
    with first.pipeline() as pipe:
        pipe.watch(balance)
        seen = int(pipe.get(balance))
        second.incrby(balance, 5)  # another client, on another node, in between
        pipe.multi()
        pipe.set(balance, seen - 30)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert int(first.get(balance)) == 105


def test_check_and_set_with_watch_loses_no_update_under_contention(cluster, protocol, key):
    """redis-py's transaction helper (WATCH, read, MULTI, write, EXEC, retry on
    WatchError) from six clients on three nodes: every update counts once."""
    counter = f"{key}cas"
    cluster.nodes[0].client().set(counter, 0)

    def update(node):
        client = node.client(protocol=protocol)

        def add_one(pipe):
            value = int(pipe.get(counter))
            pipe.multi()
            pipe.set(counter, value + 1)

        for _ in range(10):
            client.transaction(add_one, counter)

    assert run_at_once([lambda node=node: update(node) for node in cluster.nodes for _ in range(2)]) == []
    assert int(cluster.nodes[2].client().get(counter)) == 60


def test_a_transactional_pipeline_applies_all_at_once(r, key):
    pipe = r.pipeline(transaction=True)
    pipe.set(f"{key}a", "1").incr(f"{key}a").mset({f"{key}b": "2", f"{key}c": "3"}).mget(f"{key}a", f"{key}b", f"{key}c")
    assert pipe.execute() == [True, 2, True, [b"2", b"2", b"3"]]


def test_batch_dequeues_in_transactional_pipelines_take_every_item_once(cluster, protocol, key):
    """The batch-dequeue idiom (LRANGE the head, LTRIM it off, in one MULTI/EXEC, as
    redis-py's pipeline() sends them) from six clients on three nodes: every item is
    taken by exactly one of them, which needs both commands in one atomic step."""
    queue = f"{key}q"
    cluster.nodes[0].client().rpush(queue, *range(120))

    results = []

    def work(node):
        client, taken = node.client(protocol=protocol), []
        results.append(taken)
        while True:
            pipe = client.pipeline()
            batch, _ = pipe.lrange(queue, 0, 4).ltrim(queue, 5, -1).execute()
            if not batch:
                return
            taken.extend(int(item) for item in batch)

    assert run_at_once([lambda node=node: work(node) for node in cluster.nodes for _ in range(2)]) == []
    taken = [item for result in results for item in result]
    assert sorted(taken) == list(range(120)), "each item taken once"
    assert sum(1 for result in results if result) >= 2, "the work was shared"


def test_list_commands_in_a_transaction_see_each_other_and_a_watch_on_a_list(cluster, protocol, key):
    first, second = (node.client(protocol=protocol) for node in cluster.nodes[:2])
    log = f"{key}log"
    pipe = first.pipeline()
    pipe.lpush(log, "a").lpush(log, "b").ltrim(log, 0, 0).expire(log, 100).lrange(log, 0, -1).ttl(log)
    assert pipe.execute() == [1, 2, True, True, [b"b"], 100]
    with first.pipeline() as pipe:
        pipe.watch(log)
        assert pipe.llen(log) == 1
        second.rpush(log, "c")  # another client, on another node, in between
        pipe.multi()
        pipe.lpop(log)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert first.lrange(log, 0, -1) == [b"b", b"c"]


def test_a_step_over_the_transaction_bounds_is_refused_and_changes_nothing(r, key):
    many = {f"{key}{i}": i for i in range(129)}
    with pytest.raises(redis.ResponseError, match="over what one atomic step of Concord's takes"):
        r.mset(many)
    assert r.exists(*many) == 0
    r.mset(dict(list(many.items())[:128]))
    assert r.exists(*many) == 128


def test_many_clients_of_one_node_on_one_hot_counter_all_count(cluster, protocol, key):
    """Writers of one key on one node take turns: 32 clients at once give no TRYAGAIN."""
    counter, node = f"{key}hot", cluster.nodes[0]

    def bump():
        client = node.client(protocol=protocol)
        for _ in range(10):
            client.incr(counter)

    assert run_at_once([bump] * 32) == []
    assert int(node.client().get(counter)) == 320


def test_keys_and_scan_find_every_key_once_on_any_node(cluster, protocol, key):
    writer = cluster.nodes[0].client(protocol=protocol)
    names = {f"{key}user:{i:03}" for i in range(57)} | {f"{key}order:{i}" for i in range(5)}
    writer.mset({name: "x" for name in names})
    reader = cluster.nodes[2].client(protocol=protocol)
    users = {name.decode() for name in reader.keys(f"{key}user:*")}
    assert users == {name for name in names if ":user:" in name or "/user:" in name}
    scanned = [name.decode() for name in reader.scan_iter(match=f"{key}*", count=7)]
    assert sorted(scanned) == sorted(names), "every key exactly once"
    assert sorted(name.decode() for name in reader.scan_iter(match=f"{key}order:?", count=3)) == sorted(n for n in names if "order:" in n)
    assert list(reader.scan_iter(match=f"{key}*", _type="list")) == []
    assert reader.keys(f"{key}h[ae]llo") == []
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        reader.scan(cursor=987654321)


def _messages(pubsub, count, timeout_s=10):
    import time

    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message:
            got.append(message)
    return got


def test_pubsub_reaches_subscribers_on_every_node_in_one_order(cluster, protocol, key):
    channel = f"{key}news"
    subscribers = []
    for node in cluster.nodes:
        pubsub = node.client(protocol=protocol).pubsub()
        pubsub.subscribe(channel)
        pubsub.psubscribe(f"{key}n*")
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
        subscribers.append(pubsub)
    publishers = [node.client(protocol=protocol) for node in cluster.nodes]
    for i in range(12):
        receivers = publishers[i % 3].publish(channel, f"m{i}")
        assert receivers == 2, "the subscription and the pattern on the node that took it"
    publishers[0].publish(f"{key}other", "not for them")
    for pubsub in subscribers:
        got = _messages(pubsub, 24)
        assert [m["data"] for m in got if m["type"] == "message"] == [f"m{i}".encode() for i in range(12)]
        assert [m["data"] for m in got if m["type"] == "pmessage"] == [f"m{i}".encode() for i in range(12)]
        assert {m["pattern"] for m in got if m["type"] == "pmessage"} == {f"{key}n*".encode()}
    node = cluster.nodes[0].client(protocol=protocol)
    assert node.pubsub_numsub(channel) == [(channel.encode(), 1)]
    assert channel.encode() in node.pubsub_channels(f"{key}*")
    for pubsub in subscribers:
        pubsub.unsubscribe()
        pubsub.punsubscribe()
        pubsub.close()


def test_a_subscribed_resp2_connection_runs_only_pubsub_commands(cluster, key):
    import socket as sockets

    connection = sockets.create_connection(("127.0.0.1", cluster.nodes[1].redis_port), timeout=5)
    connection.sendall(b"SUBSCRIBE a b\r\nGET x\r\nPING\r\nUNSUBSCRIBE\r\nGET x\r\n")
    expected = (b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
                b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n"
                b"$-1\r\n")
    answer = b""
    while len(answer) < len(expected):
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    connection.close()
    assert answer == expected


def test_a_pipeline_of_writes_shares_log_entries_and_keeps_its_order(cluster, protocol, key):
    """60 pipelined writes take far fewer than 60 log entries, and each command sees the
    ones before it, as when they run one by one."""
    leader = cluster.leader()

    def last_log_index():
        status, body = leader.http("/v1/cluster")
        return json.loads(body)["last_log_index"]

    client = leader.client(protocol=protocol)
    before = last_log_index()
    pipe = client.pipeline(transaction=False)
    for i in range(20):
        pipe.set(f"{key}{i}", i).incr(f"{key}{i}").get(f"{key}{i}")
    answers = pipe.execute()
    entries = last_log_index() - before
    assert answers == [value for i in range(20) for value in (True, i + 1, str(i + 1).encode())]
    # Ticks of the replicated clock may add an entry or two; one entry per write would be 40.
    assert entries <= 10, f"{entries} log entries for 40 pipelined writes"


def test_pipelined_pushes_and_pops_share_log_entries_and_keep_their_order(cluster, protocol, key):
    """40 pipelined list writes on a follower take far fewer than 40 log entries, each
    sees the ones before it, and a refused one in the middle is refused alone."""
    leader = cluster.leader()

    def last_log_index():
        status, body = leader.http("/v1/cluster")
        return json.loads(body)["last_log_index"]

    client = cluster.followers()[0].client(protocol=protocol)
    client.set(f"{key}str", "a string")
    before = last_log_index()
    pipe = client.pipeline(transaction=False)
    for i in range(10):
        pipe.rpush(f"{key}q", i, i + 100).lpop(f"{key}q").rpushx(f"{key}none", i).rpop(f"{key}q", 1)
    pipe.lpush(f"{key}str", "x").lpop(f"{key}q", 20)
    answers = pipe.execute(raise_on_error=False)
    entries = last_log_index() - before
    assert answers[:4] == [2, b"0", 0, [b"100"]]
    assert answers[4:8] == [2, b"1", 0, [b"101"]]
    assert isinstance(answers[40], redis.ResponseError) and "WRONGTYPE" in str(answers[40])
    assert answers[41] is None, "every item pushed was popped"
    # Ticks of the replicated clock may add an entry or two; one per write would be 42.
    assert entries <= 6, f"{entries} log entries for 42 pipelined list writes"


def test_the_program_of_the_issue_runs_unchanged(cluster, protocol, key):
    """The queue, pub/sub and lock program Redis users write, against three nodes."""
    r = cluster.nodes[0].client(protocol=protocol, socket_timeout=10)
    worker = cluster.nodes[1].client(protocol=protocol, socket_timeout=10)
    listener = cluster.nodes[2].client(protocol=protocol, socket_timeout=10).pubsub()
    listener.subscribe(f"{key}channel")
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    r.lpush(f"{key}queue_name", "message")                       # producer
    message = worker.brpop(f"{key}queue_name")                  # worker: blocks until a message arrives
    assert tuple(message) == (f"{key}queue_name".encode(), b"message")  # a list in RESP3
    r.publish(f"{key}channel", "message")                        # pub/sub
    message = wait_until("the message", lambda: listener.get_message(timeout=1))
    assert message["data"] == b"message"
    with r.lock(f"{key}lock_name", timeout=5):                   # a lock with a TTL
        assert r.exists(f"{key}lock_name") == 1
    assert r.exists(f"{key}lock_name") == 0
    listener.close()


def test_brpop_on_one_node_is_woken_by_lpush_on_another(cluster, protocol, key):
    queue = f"{key}queue"
    waiter = cluster.nodes[0].client(protocol=protocol, socket_timeout=30)
    got = {}

    def wait():
        started = time.monotonic()
        got["item"] = waiter.brpop([f"{key}other", queue], timeout=20)
        got["after_s"] = time.monotonic() - started

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    assert "item" not in got, "it did not block"
    cluster.nodes[2].client(protocol=protocol).lpush(queue, "job-1")
    thread.join(timeout=25)
    assert tuple(got["item"]) == (queue.encode(), b"job-1") and 0.4 <= got["after_s"] < 10, got
    assert waiter.llen(queue) == 0 and waiter.exists(queue) == 0, "popped, and the emptied list is gone"


def test_every_pushed_item_is_popped_once_by_workers_on_three_nodes(cluster, protocol, key):
    queue = f"{key}queue"
    producer = cluster.nodes[0].client(protocol=protocol)
    items = [f"job-{i}".encode() for i in range(60)]
    for chunk in range(0, 60, 20):
        producer.rpush(queue, *items[chunk:chunk + 20])
    taken = []

    def work(client):
        while (item := client.blpop(queue, timeout=1)) is not None:
            taken.append(item[1])

    workers = [threading.Thread(target=work, args=(node.client(protocol=protocol, socket_timeout=10),)) for node in cluster.nodes for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(taken) == sorted(items), "each item exactly once"


def test_a_list_made_over_resp_is_read_over_http_and_deleted_as_a_key(cluster, r, key):
    r.rpush(f"{key}l", "a", "b\xff".encode("latin-1"), "c")
    r.expire(f"{key}l", 100)
    status, body = cluster.nodes[2].http(f"/v1/lists/{key}l?start=1")
    answer = json.loads(body)
    assert status == 200 and answer["len"] == 3 and 0 < answer["ttl_ms"] <= 100_000, answer
    assert answer["items"] == [{"encoding": "base64", "value": "Yv8="}, {"encoding": "utf8", "value": "c"}]
    status, body = cluster.nodes[2].http(f"/v1/kv/{key}l")
    assert status == 409 and json.loads(body)["error"]["code"] == "wrong_type"
    assert cluster.nodes[2].http(f"/v1/kv/{key}l", "DELETE")[0] == 200
    assert r.exists(f"{key}l") == 0
    assert cluster.nodes[2].http(f"/v1/lists/{key}l")[0] == 404
    r.set(f"{key}s", "v")
    assert json.loads(cluster.nodes[2].http(f"/v1/lists/{key}s")[1])["error"]["code"] == "wrong_type"
    for bad in ["start=x", "stop=1.5", "limit=3"]:
        status, body = cluster.nodes[2].http(f"/v1/lists/{key}s?{bad}")
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_query", (bad, body)


def test_keys_and_scan_find_lists_beside_strings(r, key):
    r.set(f"{key}s", "v")
    r.rpush(f"{key}l", "x")
    assert sorted(r.keys(f"{key}*")) == [f"{key}l".encode(), f"{key}s".encode()]
    assert list(r.scan_iter(match=f"{key}*", _type="list")) == [f"{key}l".encode()]
    assert list(r.scan_iter(match=f"{key}*", _type="string")) == [f"{key}s".encode()]
    assert r.type(f"{key}l") in (b"list", "list")
