"""Consul's KV through python-consul / py-consul against a 3-node Concord cluster:
the programs Consul users write, flags, check-and-set races, listings, blocking
queries woken by a write on another node, and bad input answered in Consul's
dialect with nothing changed."""

import json
import threading
import time

import consul
import pytest


def test_the_seed_programs_kv_calls_run_unchanged(c):
    c.kv.put('data_name', 'data_value', flags=0)
    index, data = c.kv.get('data_name')
    assert data['Value'] == b'data_value' and data['Key'] == 'data_name' and data['Flags'] == 0
    assert int(index) >= data['ModifyIndex'] >= data['CreateIndex'] >= 1
    assert data['LockIndex'] == 0 and 'Session' not in data


def test_a_key_is_the_same_key_in_concords_api_flags_included(cluster, c, key):
    assert c.kv.put(f"{key}feature", "on", flags=42) is True
    node = cluster.nodes[0]
    status, body = node.http(f"/v1/kv/{key}feature")
    assert status == 200 and json.loads(body)["flags"] == 42 and json.loads(body)["value"] == "on"
    node.http(f"/v1/kv/{key}feature", method="PUT", body=b"off")
    _, data = c.kv.get(f"{key}feature")
    assert (data['Value'], data['Flags']) == (b"off", 0), "a put without flags sets 0, in both APIs"
    assert c.kv.put(f"{key}empty", "") is True
    _, empty = c.kv.get(f"{key}empty")
    assert empty['Value'] is None, "an empty value reads as null, as in Consul"


def test_check_and_set_lets_exactly_one_of_two_clients_win(cluster, key):
    first, second = (node.client() for node in cluster.nodes[:2])
    assert first.kv.put(f"{key}counter", "0", cas=0) is True, "cas=0: only if absent"
    assert first.kv.put(f"{key}counter", "x", cas=0) is False
    _, seen = first.kv.get(f"{key}counter")
    results = []
    barrier = threading.Barrier(2)

    def swap(client, value):
        barrier.wait()
        results.append((client.kv.put(f"{key}counter", value, cas=seen['ModifyIndex']), value))

    threads = [threading.Thread(target=swap, args=(client, value)) for client, value in ((first, "1"), (second, "2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won for won, _ in results) == [False, True], results
    [winner] = [value for won, value in results if won]
    _, now = second.kv.get(f"{key}counter")
    assert now['Value'] == winner.encode() and now['ModifyIndex'] > seen['ModifyIndex']


def test_recurse_keys_and_separator_list_what_consul_lists(c, key):
    for name in ["b", "c/d", "c/e", "f"]:
        c.kv.put(f"{key}{name}", name)
    _, entries = c.kv.get(key, recurse=True)
    assert [entry['Key'] for entry in entries] == [f"{key}{name}" for name in ["b", "c/d", "c/e", "f"]]
    assert [entry['Value'] for entry in entries] == [b"b", b"c/d", b"c/e", b"f"]
    _, names = c.kv.get(key, keys=True)
    assert names == [f"{key}{name}" for name in ["b", "c/d", "c/e", "f"]]
    _, names = c.kv.get(key, keys=True, separator="/")
    assert names == [f"{key}b", f"{key}c/", f"{key}f"]
    assert c.kv.get(f"{key}nothing/", recurse=True)[1] is None
    assert c.kv.delete(f"{key}c/", recurse=True) is True
    _, names = c.kv.get(key, keys=True)
    assert names == [f"{key}b", f"{key}f"]
    assert c.kv.delete(f"{key}b") is True
    assert c.kv.get(f"{key}b")[1] is None
    assert c.kv.delete(f"{key}b") is True, "deleting what is not there succeeds, as in Consul"


def test_delete_with_cas_deletes_only_the_revision_named(c, key):
    c.kv.put(f"{key}k", "v")
    _, data = c.kv.get(f"{key}k")
    assert c.kv.delete(f"{key}k", cas=data['ModifyIndex'] + 1000) is False
    assert c.kv.get(f"{key}k")[1] is not None
    assert c.kv.delete(f"{key}k", cas=data['ModifyIndex']) is True
    assert c.kv.get(f"{key}k")[1] is None


def test_a_blocking_query_is_woken_by_a_write_on_another_node_and_not_by_other_keys(cluster, key):
    reader, writer = cluster.nodes[1].client(), cluster.nodes[2].client()
    reader.kv.put(f"{key}watched", "before")
    index, _ = reader.kv.get(f"{key}watched")
    # A write to another key does not wake it: it answers at the wait, unchanged.
    writer.kv.put(f"{key}other", "x")
    started = time.monotonic()
    same, data = reader.kv.get(f"{key}watched", index=index, wait="1s")
    assert time.monotonic() - started >= 0.9 and same == index and data['Value'] == b"before"
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(reader.kv.get(f"{key}watched", index=index, wait="20s")))
    started = time.monotonic()
    waiting.start()
    time.sleep(0.3)
    writer.kv.put(f"{key}watched", "after")
    waiting.join()
    [(new_index, data)] = answers
    assert data['Value'] == b"after" and int(new_index) > int(index)
    assert time.monotonic() - started < 15, "woken by the write, not by the wait"


def test_a_blocking_listing_is_woken_by_a_delete_under_its_prefix(cluster, key):
    reader, writer = cluster.nodes[0].client(), cluster.nodes[1].client()
    writer.kv.put(f"{key}a", "1")
    index, _ = reader.kv.get(key, recurse=True)
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(reader.kv.get(key, recurse=True, index=index, wait="20s")))
    started = time.monotonic()
    waiting.start()
    time.sleep(0.3)
    writer.kv.delete(f"{key}a")
    waiting.join()
    [(new_index, entries)] = answers
    assert entries is None and int(new_index) > int(index)
    assert time.monotonic() - started < 15


def test_stale_and_consistent_reads_both_see_an_acknowledged_write(cluster, key):
    cluster.nodes[0].client().kv.put(f"{key}k", "v")
    assert cluster.nodes[1].client(consistency="consistent").kv.get(f"{key}k")[1]['Value'] == b"v"
    for node in cluster.nodes:
        # A stale read may trail by the entries in flight; the leader's own never does.
        if node is cluster.leader():
            assert node.client(consistency="stale").kv.get(f"{key}k")[1]['Value'] == b"v"


def test_status_names_the_leader_among_the_peers(cluster, c):
    leader, peers = c.status.leader(), c.status.peers()
    assert len(peers) == 3 and leader in peers
    assert leader == f"127.0.0.1:{cluster.leader().http_port}"
    assert c.agent.self()["Config"]["Datacenter"] == "dc1"


def test_every_answer_carries_consuls_headers_even_a_404(cluster):
    node = cluster.nodes[0]
    request = __import__("urllib.request").request
    for path in ["/v1/kv/never/written", "/v1/status/leader"]:
        try:
            answer = request.urlopen(f"http://127.0.0.1:{node.consul_port}{path}", timeout=10)
        except __import__("urllib.error").error.HTTPError as error:
            answer = error
        assert int(answer.headers["X-Consul-Index"]) >= 1, path
        assert answer.headers["X-Consul-KnownLeader"] == "true", path


@pytest.mark.parametrize("method,path,body,status,says", [
    ("PUT", "/v1/kv/{key}k?flags=-1", b"v", 400, "Invalid flags"),
    ("PUT", "/v1/kv/{key}k?cas=x", b"v", 400, "Invalid cas"),
    ("GET", "/v1/kv/{key}k?index=1&wait=soon", None, 400, "Invalid wait"),
    ("PUT", "/v1/kv/", b"v", 400, "Missing key name"),
    ("PUT", "/v1/kv/{key}k?acquire=abc", b"v", 500, "invalid session"),
    ("PUT", "/v1/kv/{key}k", b"x" * (2 << 20), 413, ""),
    ("PUT", "/v1/kv/{key}bad%01key", b"v", 400, ""),
    ("GET", "/v1/nonsense", None, 404, "not part of"),
])
def test_bad_input_gets_a_consul_style_error_and_changes_nothing(cluster, c, key, method, path, body, status, says):
    c.kv.put(f"{key}k", "kept")
    node = cluster.nodes[1]
    got, text = node.consul_http(path.format(key=key), method=method, body=body)
    assert got == status and says in text.decode(), text
    assert not text.startswith(b"{"), "plain text, as Consul answers errors"
    assert c.kv.get(f"{key}k")[1]['Value'] == b"kept"
