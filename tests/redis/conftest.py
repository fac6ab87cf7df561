"""Fixtures of the Redis door's tests: a real 3-node Concord cluster with the Redis
door on every node, and a real redis-server for the differential test. Both run on
free loopback ports in a temporary directory, and are stopped by process id.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
import redis

BIN = os.environ.get("CONCORD_BIN", "target/debug/concord")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_until(what, check, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except (OSError, ValueError, redis.RedisError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Node:
    def __init__(self, id, http_port, redis_port, data_dir, members):
        self.id, self.http_port, self.redis_port = id, http_port, redis_port
        self.args = [BIN, "serve", "--id", str(id), "--listen", f"127.0.0.1:{http_port}",
                     "--redis-listen", f"127.0.0.1:{redis_port}", "--initial-cluster", members,
                     "--data-dir", os.path.join(data_dir, f"node-{id}")]
        self.log_path = os.path.join(data_dir, f"node-{id}.log")
        self.process = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=log)

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def client(self, **options):
        return redis.Redis(host="127.0.0.1", port=self.redis_port, **options)

    def http(self, path, method="GET", body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


class Cluster:
    def __init__(self, size=3):
        self.dir = tempfile.mkdtemp(prefix="concord-redis-")
        ports = free_ports(2 * size)
        http, resp = ports[:size], ports[size:]
        members = ",".join(f"{i + 1}=127.0.0.1:{http[i]}" for i in range(size))
        self.nodes = [Node(i + 1, http[i], resp[i], self.dir, members) for i in range(size)]
        for node in self.nodes:
            node.start()
        self.wait_for_leader()

    def leader(self):
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                status, body = node.http("/v1/cluster")
            except OSError:
                continue
            leader = json.loads(body).get("leader") if status == 200 else None
            if leader:
                return self.nodes[leader - 1]
        return None

    def wait_for_leader(self):
        leader = wait_until("a leader", self.leader)
        for node in self.nodes:
            if node.process is not None:
                wait_until(f"node {node.id}'s Redis door", lambda: node.client(socket_timeout=2).ping())
        return leader

    def followers(self):
        leader = self.leader()
        return [node for node in self.nodes if node is not leader and node.process is not None]

    def stop(self):
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def r(cluster, protocol):
    """A redis-py client on a follower (any node serves any command)."""
    client = cluster.followers()[0].client(protocol=protocol, socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
def key(request, protocol):
    """A key name no other test uses (without the glob characters of `[resp2]`)."""
    name = request.node.name.replace("[", "-").replace("]", "")
    return f"{name}/{protocol}/"


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server, persistence off, on a free loopback port."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (scripts/redis_tests.sh installs it as root)"
    [port] = free_ports(1)
    directory = tempfile.mkdtemp(prefix="redis-server-")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", directory, "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("redis-server", lambda: redis.Redis(port=port, socket_timeout=2).ping())
        yield port
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
