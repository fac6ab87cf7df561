"""A real Concord cluster for the Python suites of the doors (tests/redis,
tests/consul): nodes started from CONCORD_BIN on free loopback ports in a temporary
directory, each with the doors asked for, stopped by process id."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("CONCORD_BIN", "target/debug/concord")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_until(what, check, timeout_s=30, errors=(OSError, ValueError)):
    """`check()`'s first truthy answer, polled for `timeout_s`; `errors` count as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except errors:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Node:
    """One member; `ports` maps each door ("redis", "consul") to its port."""

    def __init__(self, id, http_port, ports, data_dir, members):
        self.id, self.http_port, self.ports = id, http_port, ports
        self.args = [BIN, "serve", "--id", str(id), "--listen", f"127.0.0.1:{http_port}", "--initial-cluster", members,
                     "--data-dir", os.path.join(data_dir, f"node-{id}")]
        for door, port in ports.items():
            self.args += [f"--{door}-listen", f"127.0.0.1:{port}"]
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

    def http(self, path, method="GET", body=None, port=None, headers=None):
        """(status, body) of a request to Concord's API, or to a door's `port`."""
        url = f"http://127.0.0.1:{port or self.http_port}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


class Cluster:
    """`size` nodes, each with the `doors` asked for; `node_type` makes each node."""

    def __init__(self, size=3, doors=("redis",), node_type=Node):
        self.dir = tempfile.mkdtemp(prefix="concord-doors-")
        ports = free_ports((1 + len(doors)) * size)
        http = ports[:size]
        members = ",".join(f"{i + 1}=127.0.0.1:{http[i]}" for i in range(size))
        door_ports = lambda i: {door: ports[size * (j + 1) + i] for j, door in enumerate(doors)}
        self.nodes = [node_type(i + 1, http[i], door_ports(i), self.dir, members) for i in range(size)]
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
        """The leader, once every running node serves (its doors bind before its API)."""
        leader = wait_until("a leader", self.leader)
        for node in self.nodes:
            if node.process is not None:
                wait_until(f"node {node.id}", lambda: node.http("/health")[0] == 200)
        return leader

    def followers(self):
        leader = self.leader()
        return [node for node in self.nodes if node is not leader and node.process is not None]

    def stop(self):
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
