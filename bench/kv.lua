-- wrk script for bench/compare-etcd.sh and bench/compare-consul.sh: the same workload
-- against etcd's JSON gateway, Concord's HTTP API and Concord's Consul door, so one
-- third-party load generator measures them all.
--
-- Environment (read once per thread):
--   SYSTEM      etcd | concord | consul (Concord's Consul door: the same KV paths)
--   OP          put  (a new key per request: bench/<thread>/<n>, VALUE_BYTES of value)
--               get  (a linearizable read of one of READ_KEYS preloaded keys read/<i>)
--               session (a new session of 60 s: Consul's, or a Concord lease)
--               renew (keep session or lease RENEW_ID alive)
--   VALUE_BYTES value size for puts (default 100)
--   READ_KEYS   how many keys the preload wrote (default 1000)
--
-- done() prints one line, "RESULT requests=.. seconds=.. rps=.. p50_us=.. ...", that
-- the script parses; errors are every socket error plus every non-2xx/3xx answer.

local system = os.getenv("SYSTEM") or "concord"
local op = os.getenv("OP") or "put"
local value_bytes = tonumber(os.getenv("VALUE_BYTES") or "100")
local read_keys = tonumber(os.getenv("READ_KEYS") or "1000")
local renew_id = os.getenv("RENEW_ID") or "0"

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding (etcd's gateway takes keys and values as base64).
local function base64(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = math.min(3, #text - i + 1) + 1 -- output characters before padding
    for j = 1, 4 do
      local sextet = math.floor(n / 2 ^ (6 * (4 - j))) % 64
      out[#out + 1] = j <= chars and alphabet:sub(sextet + 1, sextet + 1) or "="
    end
  end
  return table.concat(out)
end

local value = string.rep("v", value_bytes)
local value64 = base64(value)
local thread_count = 0
local sent = 0
-- `thread_id` is a global: wrk's setup() sets it in each thread's own Lua state.
thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  math.randomseed(thread_id * 7919 + 17)
end

local function put_request(key)
  if system == "etcd" then
    local body = '{"key":"' .. base64(key) .. '","value":"' .. value64 .. '"}'
    return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("PUT", "/v1/kv/" .. key, nil, value)
end

local function get_request(key)
  if system == "etcd" then
    -- serializable=false (the default) is etcd's linearizable read.
    local body = '{"key":"' .. base64(key) .. '"}'
    return wrk.format("POST", "/v3/kv/range", { ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("GET", "/v1/kv/" .. key, nil, nil)
end

local function session_request()
  if system == "consul" then
    return wrk.format("PUT", "/v1/session/create", nil, '{"TTL":"60s"}')
  end
  return wrk.format("POST", "/v1/leases", { ["Content-Type"] = "application/json" }, '{"ttl_ms":60000}')
end

local function renew_request()
  if system == "consul" then
    return wrk.format("PUT", "/v1/session/renew/" .. renew_id, nil, nil)
  end
  return wrk.format("POST", "/v1/leases/" .. renew_id .. "/keepalive", nil, nil)
end

function request()
  sent = sent + 1
  if op == "get" then
    return get_request("read/" .. math.random(0, read_keys - 1))
  elseif op == "session" then
    return session_request()
  elseif op == "renew" then
    return renew_request()
  end
  return put_request("bench/" .. thread_id .. "/" .. sent)
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.0f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d errors=%d status_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    errors, e.status))
end
