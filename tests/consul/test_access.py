"""Concord's tokens through the Consul door: a client's ACL token (python-consul sends
it as `?token=`, py-consul as `X-Consul-Token`) is a Concord token, with its role and
key prefixes; without a valid one the answer is Consul's 403."""

import json
import urllib.request

import consul
import pytest

from conftest import Cluster, wait_until


def _refused(client):
    try:
        client.kv.get("app/x")
    except consul.ACLPermissionDenied:
        return True
    return False


def test_tokens_apply_to_the_consul_door():
    cluster = Cluster()
    try:
        leader = cluster.leader()
        token = lambda body: json.loads(leader.http("/v1/auth/tokens", method="POST", body=json.dumps(body).encode())[1])["token"]
        admin, app = token({"name": "ops", "role": "admin"}), token({"name": "app", "role": "write", "prefixes": ["app/"]})
        enable = urllib.request.Request(f"http://127.0.0.1:{leader.http_port}/v1/auth/enable", method="POST",
                                        headers={"Authorization": f"Bearer {admin}"})
        urllib.request.urlopen(enable, timeout=10)
        node = cluster.followers()[0]
        # The follower may apply the enable a moment after the leader.
        wait_until("the follower to require tokens", lambda: _refused(node.client()))
        with pytest.raises(consul.ACLPermissionDenied):
            node.client(token="1.wrong").kv.put("app/x", "1")
        client = node.client(token=app)
        assert client.kv.put("app/x", "1") is True and client.kv.get("app/x")[1]['Value'] == b"1"
        with pytest.raises(consul.ACLPermissionDenied):
            client.kv.put("other/x", "1")
        with pytest.raises(consul.ACLPermissionDenied):
            client.kv.get("", recurse=True)
        assert node.client(token=admin).kv.get("other/x")[1] is None, "the refused put changed nothing"
        status, text = node.consul_http("/v1/kv/app/x", headers={"X-Consul-Token": app})
        assert status == 200 and json.loads(text)[0]['Value'] is not None
    finally:
        cluster.stop()
