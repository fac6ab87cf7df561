"""The differential test: the same command sequences sent to a real redis-server
(Debian's 7.0) and to Concord's Redis door, in RESP2 and in RESP3; every reply must
be the same bytes. The commands whose answers differ on purpose (docs/redis.md,
"Differences") are not in these sequences; test_clients.py checks them.

Each sequence runs on keys of its own, so it starts from nothing on both servers."""

import socket

import pytest

SEQUENCES = {
    "strings": [
        ["SET", "k", "v"], ["GET", "k"], ["GET", "missing"], ["STRLEN", "k"], ["STRLEN", "missing"],
        ["TYPE", "k"], ["TYPE", "missing"], ["EXISTS", "k", "missing", "k"], ["APPEND", "k", "xyz"], ["GET", "k"],
        ["APPEND", "new", "abc"], ["DEL", "k", "new", "missing"], ["EXISTS", "k"], ["SET", "bin", "\x00\xff\r\n"],
        ["GET", "bin"], ["UNLINK", "bin", "bin"],
    ],
    "set options": [
        ["SET", "k", "1", "NX"], ["SET", "k", "2", "NX"], ["SET", "k", "3", "XX"], ["SET", "m", "1", "XX"],
        ["SET", "k", "4", "GET"], ["SET", "k", "5", "NX", "GET"], ["SET", "n", "6", "NX", "GET"], ["SET", "n", "7", "xx", "get"],
        ["SET", "k", "1", "NX", "XX"], ["SET", "k", "1", "FOO"], ["SET", "k"], ["GETSET", "k", "9"], ["GETSET", "nokey", "1"],
        ["GETDEL", "k"], ["GETDEL", "k"], ["SETNX", "k", "a"], ["SETNX", "k", "b"], ["GET", "k"], ["GET", "nokey"],
    ],
    "several keys": [
        ["MSET", "a", "1", "b", "2"], ["MGET", "a", "b", "c"], ["MSET", "a"], ["MSET", "a", "1", "b"],
        ["MSETNX", "a", "1", "c", "3"], ["MSETNX", "c", "3", "d", "4"], ["MGET", "a", "b", "c", "d"],
        ["MSETNX", "e", "1", "e", "2"], ["GET", "e"], ["MSET", "x", "1", "x", "2"], ["GET", "x"], ["DEL", "a", "b", "c", "d", "e", "x"],
    ],
    "counters": [
        ["INCR", "c"], ["INCRBY", "c", "10"], ["DECR", "c"], ["DECRBY", "c", "5"], ["INCRBY", "c", "abc"],
        ["INCRBY", "c", "1.5"], ["SET", "c", "9223372036854775807"], ["INCR", "c"], ["SET", "c", "-9223372036854775808"],
        ["DECR", "c"], ["DECRBY", "c", "-9223372036854775808"], ["SET", "c", "abc"], ["INCR", "c"], ["SET", "c", " 1"],
        ["INCR", "c"], ["SET", "c", "01"], ["INCR", "c"], ["SET", "c", "+1"], ["INCR", "c"], ["SET", "c", "-0"], ["INCR", "c"],
        ["SET", "c", "0"], ["INCR", "c"], ["SET", "c", "-7"], ["INCRBY", "c", "-3"], ["GET", "c"], ["APPEND", "c", "0"], ["INCR", "c"],
    ],
    "connection and errors": [
        ["PING"], ["PING", "hello"], ["ECHO", "x"], ["SELECT", "0"], ["GET"], ["NOSUCH", "a", "b"], ["ECHO"],
        ["CLIENT", "SETNAME", "has space"], ["CLIENT", "SETNAME", "tester"], ["CLIENT", "GETNAME"], ["CLIENT", "NOSUCH"],
        ["CLIENT", "ID", "x"], ["COMMAND", "NOSUCH"], ["COMMAND", "COUNT", "x"], ["HELLO", "4"],
        ["QUIT"],
    ],
    # TTL rounds to whole seconds, so the seconds a reply shows are the same on both
    # servers; PTTL is compared only where it is -1 or -2.
    "expiry": [
        ["SET", "k", "v"], ["TTL", "k"], ["PTTL", "k"], ["TTL", "missing"], ["PTTL", "missing"], ["EXPIRE", "k", "100"],
        ["TTL", "k"], ["EXPIRE", "k", "100", "NX"], ["EXPIRE", "k", "200", "XX"], ["TTL", "k"], ["EXPIRE", "k", "50", "GT"],
        ["EXPIRE", "k", "300", "gt"], ["TTL", "k"], ["EXPIRE", "k", "400", "LT"], ["EXPIRE", "k", "100", "LT"], ["TTL", "k"],
        ["EXPIRE", "k", "1", "NX", "XX"], ["EXPIRE", "k", "1", "GT", "LT"], ["EXPIRE", "k", "1", "FOO"], ["EXPIRE", "k", "abc"],
        ["EXPIRE", "k"], ["EXPIRE", "missing", "10"], ["PERSIST", "k"], ["PERSIST", "k"], ["PERSIST", "missing"], ["TTL", "k"],
        ["EXPIRE", "k", "10", "XX"], ["EXPIRE", "k", "10", "GT"], ["EXPIRE", "k", "10", "LT"], ["TTL", "k"],
        ["PEXPIRE", "k", "100000"], ["TTL", "k"], ["SET", "k", "v2"], ["TTL", "k"], ["SET", "k", "v", "EX", "100"], ["TTL", "k"],
        ["SET", "k", "v3", "KEEPTTL"], ["TTL", "k"], ["GET", "k"], ["SET", "k", "v4", "PX", "200000", "GET"], ["TTL", "k"],
        ["SET", "k", "v", "EX", "0"], ["SET", "k", "v", "EX", "-1"], ["SET", "k", "v", "PX", "abc"],
        ["SET", "k", "v", "EX", "10", "PX", "10"], ["SET", "k", "v", "EX", "10", "KEEPTTL"], ["SET", "k", "v", "EX"],
        ["SET", "k", "v", "EX", "9223372036854775807"], ["GET", "k"], ["SET", "nx", "v", "NX", "EX", "100"], ["TTL", "nx"],
        ["SETEX", "s", "100", "v"], ["TTL", "s"], ["SETEX", "s", "0", "v"], ["SETEX", "s", "x", "v"], ["PSETEX", "p", "100000", "v"],
        ["TTL", "p"], ["INCR", "n"], ["EXPIRE", "n", "100"], ["INCR", "n"], ["TTL", "n"], ["APPEND", "n", "0"], ["TTL", "n"],
        ["GETSET", "n", "5"], ["TTL", "n"], ["EXPIRE", "k", "0"], ["EXISTS", "k"], ["EXPIRE", "s", "-10"], ["EXISTS", "s"],
        ["EXPIREAT", "p", "1"], ["EXISTS", "p"], ["SET", "q", "1"], ["PEXPIREAT", "q", "1000"], ["GET", "q"],
        ["SET", "q", "1"], ["EXPIREAT", "q", "9999999999", "XX"], ["EXPIRE", "q", "9223372036854775807"],
        ["SET", "q", "1", "EXAT", "1"], ["GET", "q"], ["SET", "q", "2"], ["SET", "q", "3", "PXAT", "1000", "GET"], ["EXISTS", "q"],
        ["SET", "g", "v"], ["GETEX", "g"], ["TTL", "g"], ["GETEX", "g", "EX", "100"], ["TTL", "g"], ["GETEX", "g", "PERSIST"],
        ["TTL", "g"], ["GETEX", "g", "PERSIST"], ["GETEX", "g", "PX", "0"], ["GETEX", "g", "FOO"], ["GETEX", "g", "EX"],
        ["GETEX", "g", "EX", "10", "PX", "10"], ["GETEX", "missing", "EX", "10"], ["GETEX", "g", "PXAT", "200000000000000"],
        ["TTL", "g"], ["GETEX", "g", "EXAT", "1"], ["EXISTS", "g"], ["GETEX"],
        ["DEL", "k", "nx", "n", "q"],
    ],
    "scripts": [
        ["EVAL", "return 1", "0"], ["EVAL", "return {1, 2, {3, 'x'}, 'y'}", "0"], ["EVAL", "return 3.9", "0"],
        ["EVAL", "return true", "0"], ["EVAL", "return false", "0"], ["EVAL", "return nil", "0"],
        ["EVAL", "return {1, nil, 3}", "0"], ["EVAL", "return redis.status_reply('FINE')", "0"],
        ["EVAL", "return redis.error_reply('My Error')", "0"], ["EVAL", "return {KEYS[1], ARGV[1], ARGV[2]}", "1", "k", "a", "b"],
        ["EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"], ["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
        ["EVAL", "return redis.call('get', KEYS[1])", "1", "missing"], ["EVAL", "return redis.call('incr', KEYS[1])", "1", "n"],
        ["EVAL", "return redis.call('incrby', KEYS[1], 5)", "1", "n"], ["EVAL", "return redis.call('exists', KEYS[1], KEYS[2])", "2", "n", "k"],
        ["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "k"], ["EVAL", "return redis.call('expire', KEYS[1], 100)", "1", "k"],
        ["EVAL", "return redis.call('ttl', KEYS[1])", "1", "k"], ["EVAL", "return redis.sha1hex('abc')", "0"],
        ["EVAL", "return type(math.floor)", "0"], ["EVAL", "return string.format('%d-%s', 7, 'x')", "0"],
        ["EVAL", "return table.concat({'a', 'b'}, ',')", "0"], ["EVAL", "return 1", "-1"], ["EVAL", "return 1", "2", "k"],
        ["EVAL", "return 1", "x"], ["EVAL", "return 1"], ["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        ["SCRIPT", "LOAD", "return 'loaded'"], ["EVALSHA", "bd81ed6c3c86fac6eeb4bda3bdb7e8f7e76d8b0e", "0"],
        ["SCRIPT", "EXISTS", "bd81ed6c3c86fac6eeb4bda3bdb7e8f7e76d8b0e", "ffffffffffffffffffffffffffffffffffffffff"],
        ["SCRIPT", "KILL"], ["SCRIPT", "NOSUCH"], ["SCRIPT", "LOAD"], ["SCRIPT", "FLUSH", "ASYNC"],
        ["SCRIPT", "EXISTS", "bd81ed6c3c86fac6eeb4bda3bdb7e8f7e76d8b0e"], ["SCRIPT", "FLUSH", "NOW"], ["GET", "k"], ["DEL", "k", "n"],
    ],
    "lists": [
        ["LPUSH", "l", "a", "b", "c"], ["RPUSH", "l", "d"], ["LRANGE", "l", "0", "-1"], ["LLEN", "l"], ["LLEN", "missing"],
        ["LINDEX", "l", "0"], ["LINDEX", "l", "-1"], ["LINDEX", "l", "9"], ["LINDEX", "l", "-9"], ["LINDEX", "l", "x"],
        ["LRANGE", "l", "1", "2"], ["LRANGE", "l", "-2", "100"], ["LRANGE", "l", "5", "10"], ["LRANGE", "l", "2", "1"],
        ["LRANGE", "missing", "0", "-1"], ["LPUSHX", "missing", "x"], ["RPUSHX", "l", "e"], ["EXISTS", "missing"],
        ["LPOP", "l"], ["RPOP", "l"], ["LPOP", "l", "2"], ["LPOP", "l", "0"], ["LPOP", "missing", "0"], ["LPOP", "missing", "2"],
        ["LPOP", "missing"], ["LPOP", "l", "-1"], ["RPOP", "l", "9"], ["EXISTS", "l"], ["TYPE", "l"],
        ["RPUSH", "m", "x", "1", "x", "2", "x"], ["LREM", "m", "-1", "x"], ["LRANGE", "m", "0", "-1"], ["LREM", "m", "1", "x"],
        ["LREM", "m", "0", "x"], ["LREM", "m", "0", "nothing"], ["LRANGE", "m", "0", "-1"], ["LSET", "m", "0", "one"],
        ["LSET", "m", "-1", "two"], ["LSET", "m", "5", "x"], ["LSET", "missing", "0", "x"], ["LRANGE", "m", "0", "-1"],
        ["RPUSH", "t", "0", "1", "2", "3", "4"], ["LTRIM", "t", "1", "-2"], ["LRANGE", "t", "0", "-1"], ["LTRIM", "t", "-100", "100"],
        ["LTRIM", "t", "2", "1"], ["EXISTS", "t"], ["LTRIM", "missing", "0", "1"],
        ["RPUSH", "s", "a", "b", "c"], ["LMOVE", "s", "d", "RIGHT", "LEFT"], ["LMOVE", "s", "s", "LEFT", "RIGHT"],
        ["LRANGE", "s", "0", "-1"], ["LRANGE", "d", "0", "-1"], ["LMOVE", "s", "d", "UP", "LEFT"], ["LMOVE", "missing", "d", "LEFT", "LEFT"],
        ["RPOPLPUSH", "s", "d"], ["RPOPLPUSH", "s", "d"], ["RPOPLPUSH", "s", "d"], ["EXISTS", "s"], ["LRANGE", "d", "0", "-1"],
        ["SET", "str", "v"], ["LPUSH", "str", "x"], ["LLEN", "str"], ["LRANGE", "str", "0", "1"], ["LPOP", "str"], ["RPOPLPUSH", "d", "str"],
        ["GET", "d"], ["STRLEN", "d"], ["APPEND", "d", "x"], ["INCR", "d"], ["MGET", "d", "str"], ["TYPE", "d"], ["TTL", "d"],
        ["EXPIRE", "d", "100"], ["TTL", "d"], ["PERSIST", "d"], ["TTL", "d"], ["SET", "d", "now a string", "NX"],
        ["SET", "d", "now a string"], ["TYPE", "d"], ["RPUSH", "e", "1"], ["DEL", "e", "str"], ["EXISTS", "e"],
        ["BLPOP", "missing", "0.01"], ["BRPOP", "missing", "x"], ["BRPOP", "missing", "-1"], ["RPUSH", "b", "1", "2"],
        ["BLPOP", "missing", "b", "0"], ["BRPOP", "b", "1"], ["BLPOP", "b", "0.01"], ["RPUSH", "b", "3"],
        ["BLMOVE", "b", "c", "LEFT", "RIGHT", "0"], ["BRPOPLPUSH", "c", "b", "0"], ["LRANGE", "b", "0", "-1"],
        ["LPUSH", "l"], ["LRANGE", "l", "0"], ["DEL", "b", "d"],
    ],
    # redis-py's pipeline() wraps its commands in MULTI/EXEC: list commands there and
    # in scripts see each other's effects, in order, and commit as one step.
    "lists in steps": [
        ["MULTI"], ["RPUSH", "q", "a", "b"], ["LPUSH", "q", "z"], ["LLEN", "q"], ["LRANGE", "q", "0", "-1"], ["RPOP", "q"],
        ["LTRIM", "q", "0", "0"], ["TYPE", "q"], ["EXEC"], ["LRANGE", "q", "0", "-1"],
        ["MULTI"], ["RPUSH", "capped", "1", "2", "3"], ["LPUSH", "capped", "0"], ["LTRIM", "capped", "0", "1"], ["EXEC"],
        ["LRANGE", "capped", "0", "-1"],
        ["MULTI"], ["LRANGE", "capped", "0", "-1"], ["DEL", "capped"], ["RPUSH", "capped", "fresh"], ["LLEN", "capped"], ["EXEC"],
        ["MULTI"], ["SET", "s", "v"], ["LPUSH", "s", "x"], ["GET", "s"], ["DEL", "s"], ["LPUSH", "s", "x"], ["TYPE", "s"],
        ["SET", "s", "str"], ["LLEN", "s"], ["EXEC"], ["GET", "s"],
        ["RPUSH", "e", "1", "2"], ["EXPIRE", "e", "100"],
        ["MULTI"], ["RPUSH", "e", "3"], ["TTL", "e"], ["LPOP", "e", "3"], ["EXISTS", "e"], ["TTL", "e"], ["RPUSH", "e", "4"],
        ["TTL", "e"], ["EXPIRE", "e", "200"], ["RPUSH", "e", "5"], ["TTL", "e"], ["EXEC"], ["TTL", "e"], ["LRANGE", "e", "0", "-1"],
        ["MULTI"], ["BLPOP", "none", "e", "0"], ["BLPOP", "none", "0"], ["BRPOP", "e", "1"], ["BLMOVE", "none", "d", "LEFT", "LEFT", "0"],
        ["BRPOPLPUSH", "none", "d", "0"], ["LMOVE", "q", "d", "LEFT", "RIGHT"], ["LMOVE", "d", "d", "LEFT", "RIGHT"],
        ["LSET", "d", "0", "Z"], ["LSET", "d", "9", "Z"], ["LREM", "d", "0", "Z"], ["LINDEX", "d", "0"], ["RPOPLPUSH", "d", "d"], ["EXEC"],
        ["WATCH", "q"], ["RPUSH", "q", "moved"], ["MULTI"], ["LPUSH", "q", "never"], ["EXEC"], ["LRANGE", "q", "0", "-1"],
        ["EVAL", "redis.call('rpush', KEYS[1], 'a', 'b', 'c'); redis.call('lpop', KEYS[1]); return redis.call('lrange', KEYS[1], 0, -1)", "1", "sq"],
        ["EVAL", "local n = redis.call('llen', KEYS[1]); redis.call('del', KEYS[1]); return {n, redis.call('exists', KEYS[1])}", "1", "sq"],
        ["EVAL", "return redis.pcall('lpush', KEYS[1], 'x')", "1", "s"],
        ["EVAL", "redis.call('rpush', KEYS[1], 'x'); return redis.call('rpoplpush', KEYS[1], KEYS[2])", "2", "sq", "sq2"],
        ["LRANGE", "sq2", "0", "-1"], ["EXISTS", "sq"], ["DEL", "q", "capped", "s", "e", "d", "sq2"],
    ],
    "scan errors": [
        ["SCAN", "abc"], ["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT", "x"], ["SCAN", "0", "FOO"],
        ["SCAN", "0", "MATCH"], ["KEYS"], ["SCAN"],
    ],
    "transactions": [
    ["EXEC"], ["DISCARD"], ["MULTI"], ["SET", "a", "1"], ["INCR", "a"], ["GET", "a"], ["PING"], ["EXEC"],
    ["MULTI"], ["MULTI"], ["SET", "b", "x"], ["INCR", "b"], ["GET", "b"], ["EXEC"], ["GET", "b"],
    ["MULTI"], ["SET", "c", "1"], ["NOSUCH"], ["EXEC"], ["GET", "c"],
    ["MULTI"], ["GET"], ["EXEC"], ["MULTI"], ["SET", "d", "1"], ["DISCARD"], ["GET", "d"],
    ["WATCH", "w"], ["MULTI"], ["WATCH", "w"], ["SET", "w", "1"], ["EXEC"], ["GET", "w"],
    ["WATCH", "w", "v"], ["UNWATCH"], ["MULTI"], ["EXEC"], ["MSET", "m1", "1", "m2", "2"],
    ["MULTI"], ["MSETNX", "m2", "x", "m3", "y"], ["DEL", "m1", "m2", "m3"], ["EXISTS", "m1"], ["EXEC"],
],
}


def encode(args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode("latin-1") if isinstance(arg, str) else arg
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


class Raw:
    """A connection that reads each reply whole, as the bytes the server sent."""

    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line + b"\r\n"

    def _exactly(self, count):
        while len(self.buffer) < count:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:-2]
        if kind in b"$=!" and rest != b"-1":
            return line + self._exactly(int(rest) + 2)
        if kind in b"*~>" and rest != b"-1":
            return line + b"".join(self.reply() for _ in range(int(rest)))
        if kind == b"%" or kind == b"|":
            return line + b"".join(self.reply() for _ in range(2 * int(rest)))
        return line

    def call(self, args):
        self.socket.sendall(encode(args))
        return self.reply()

    def close(self):
        self.socket.close()


def connect_both(cluster, redis_server, protocol):
    """A connection to redis-server and one to a Concord follower, both in `protocol`."""
    redis_conn, concord = Raw(redis_server), Raw(cluster.followers()[0].redis_port)
    if protocol == 3:
        redis_conn.call(["HELLO", "3"])
        concord.call(["HELLO", "3"])
    return redis_conn, concord


def with_keys(command, prefix):
    """The command with its key arguments under `prefix`."""
    name = command[0].upper()
    keyed = {"GET", "SET", "STRLEN", "TYPE", "APPEND", "SETNX", "GETSET", "GETDEL", "INCR", "INCRBY", "DECR", "DECRBY",
             "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "SETEX", "PSETEX", "GETEX",
             "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LSET", "LREM", "LTRIM"}
    if name in keyed and len(command) > 1:
        return [command[0], prefix + command[1], *command[2:]]
    if name in {"DEL", "UNLINK", "EXISTS", "MGET", "WATCH"}:
        return [command[0], *(prefix + key for key in command[1:])]
    if name in {"EVAL", "EVALSHA"} and len(command) > 2 and command[2].isdigit():
        count = int(command[2])
        return [*command[:3], *(prefix + key for key in command[3:3 + count]), *command[3 + count:]]
    if name in {"LMOVE", "RPOPLPUSH", "BLMOVE", "BRPOPLPUSH"} and len(command) > 2:
        return [command[0], prefix + command[1], prefix + command[2], *command[3:]]
    if name in {"BLPOP", "BRPOP"} and len(command) > 2:
        return [command[0], *(prefix + key for key in command[1:-1]), command[-1]]
    if name in {"MSET", "MSETNX"}:
        return [command[0], *(prefix + arg if i % 2 == 0 else arg for i, arg in enumerate(command[1:]))]
    return command


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_replies_match_redis_byte_for_byte(cluster, redis_server, protocol, name):
    prefix = f"diff/{protocol}/{name.replace(' ', '-')}/"
    redis_conn, concord = connect_both(cluster, redis_server, protocol)
    try:
        for command in SEQUENCES[name]:
            command = with_keys(command, prefix)
            expected, got = redis_conn.call(command), concord.call(command)
            assert got == expected, f"{command}: redis {expected!r}, concord {got!r}"
    finally:
        redis_conn.close()
        concord.close()


def test_redis_keys_in_transactions_are_prefixed_too():
    assert with_keys(["WATCH", "a", "b"], "p/") == ["WATCH", "p/a", "p/b"]


PUBSUB_SEQUENCE = [
    (["SUBSCRIBE", "a", "b"], 2), (["PING"], 1), (["SUBSCRIBE", "a"], 1), (["UNSUBSCRIBE", "b", "c"], 2),
    # All at once, with one left: Redis unsubscribes several in its hash table's order.
    (["UNSUBSCRIBE"], 1), (["UNSUBSCRIBE"], 1),
    (["PSUBSCRIBE", "p*", "q?"], 2), (["PUNSUBSCRIBE", "q?", "zz"], 2), (["PUNSUBSCRIBE"], 1), (["PUNSUBSCRIBE"], 1),
    (["PUBLISH", "nobody-listens", "m"], 1), (["PUBSUB", "NUMSUB", "nobody-listens"], 1), (["PUBSUB", "FOO"], 1),
    (["PUBSUB", "NUMPAT", "x"], 1), (["PUBSUB", "CHANNELS", "nobody-*"], 1), (["SUBSCRIBE"], 1),
]


def test_pubsub_replies_match_redis_byte_for_byte(cluster, redis_server, protocol):
    prefix = f"diff/{protocol}/pubsub/"
    redis_conn, concord = connect_both(cluster, redis_server, protocol)
    try:
        for command, frames in PUBSUB_SEQUENCE:
            named = [command[0], *(prefix + arg if command[0] != "PUBSUB" and i > 0 or arg.startswith("nobody") else arg for i, arg in enumerate(command[1:], 1))]
            for connection in (redis_conn, concord):
                connection.socket.sendall(encode(named))
            expected = b"".join(redis_conn.reply() for _ in range(frames))
            got = b"".join(concord.reply() for _ in range(frames))
            assert got == expected, f"{named}: redis {expected!r}, concord {got!r}"
    finally:
        redis_conn.close()
        concord.close()
