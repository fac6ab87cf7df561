"""Fixtures of the Redis door's tests: a real 3-node Concord cluster with the Redis
door on every node, and a real redis-server for the differential test. Both run on
free loopback ports in a temporary directory, and are stopped by process id.
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import redis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from support import concord_cluster  # noqa: E402
from support.concord_cluster import BIN, free_ports  # noqa: E402,F401

wait_until = functools.partial(concord_cluster.wait_until, errors=(OSError, ValueError, redis.RedisError))


class Node(concord_cluster.Node):
    @property
    def redis_port(self):
        return self.ports["redis"]

    def client(self, **options):
        return redis.Redis(host="127.0.0.1", port=self.redis_port, **options)


class Cluster(concord_cluster.Cluster):
    """A cluster with the Redis door on every node."""

    def __init__(self, size=3):
        super().__init__(size, doors=("redis",), node_type=Node)
        for node in self.nodes:
            wait_until(f"node {node.id}'s Redis door", lambda: node.client(socket_timeout=2).ping())


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
