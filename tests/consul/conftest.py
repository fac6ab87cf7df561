"""Fixtures of the Consul door's tests: a real 3-node Concord cluster with the
Consul door on every node, and clients of the library this run has (python-consul
1.1 or py-consul: scripts/consul_tests.sh runs the suite once with each)."""

import os
import re
import sys

import consul
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from support import concord_cluster  # noqa: E402
from support.concord_cluster import wait_until  # noqa: E402,F401


class Node(concord_cluster.Node):
    @property
    def consul_port(self):
        return self.ports["consul"]

    def client(self, **options):
        return consul.Consul(host="127.0.0.1", port=self.consul_port, **options)

    def consul_http(self, path, method="GET", body=None, headers=None):
        """(status, body) of a raw request to this node's Consul door."""
        return self.http(path, method=method, body=body, port=self.consul_port, headers=headers)


class Cluster(concord_cluster.Cluster):
    """A cluster with the Consul door on every node."""

    def __init__(self, size=3):
        super().__init__(size, doors=("consul",), node_type=Node)


@pytest.fixture(scope="session")
def cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def c(cluster):
    """A client of a follower (any node serves any request)."""
    return cluster.followers()[0].client()


@pytest.fixture
def key(request):
    """A key prefix no other test uses (the test's name, its parameters made plain)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name) + "/"
