import { createHash } from "node:crypto";

/**
 * The Redis store's Lua scripts. Every multi-step operation is one script,
 * so it is atomic across replicas; every key a script touches is passed in
 * KEYS and shares one hash tag (one Cluster slot). Time comes from the
 * Redis server's TIME inside the script, so replicas with skewed clocks
 * agree on every window and expiry.
 *
 * Layouts (K = `${prefix}:{${logicalKey}}`):
 * - sliding window: `K:w` sorted set, member `<seq>:<amount>`, score = time
 *   in ms (µs precision); `K:wm` hash {sum, seq}: the running total (so an
 *   acquire does not sum the whole log) and the member sequence. An entry
 *   counts while `now - score < windowMs`, exactly as in the memory store.
 * - reservations: `K:r` hash; field `c` = committed total as a decimal
 *   string, field `r:<id>` = `<amount>|<expiresAtMs>`. Amounts and totals
 *   use decimal-string arithmetic in Lua (Lua numbers are doubles and would
 *   lose precision above 2^53 nano-USD ≈ 9 million USD), so totals are
 *   exact at any size. The reserved total is derived from the live
 *   reservations on every call; expired ones are deleted as they are seen.
 * - JSON documents: `K:j` string holding the JSON text.
 * - latency: `K:l` hash {w, m, tw, tm, at, h}: decayed weight and mean of
 *   latency, the same for time to first token, last observation time and
 *   half-life.
 */

/** LuaScript is a script's source and its SHA1 for EVALSHA. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** SERVER_CLOCK_PRELUDE defines now_ms() from the Redis server's clock. */
export const SERVER_CLOCK_PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
`;

// Helpers every script may use.
const HELPERS = `
local function fmt(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then return string.format('%d', x) end
  return string.format('%.17g', x)
end

local function member_amount(member)
  local i = string.find(member, ':', 1, true)
  return tonumber(string.sub(member, i + 1))
end

-- Decimal-string arithmetic on non-negative integers without leading zeros.
local function sadd(a, b)
  local out = {}
  local i, j, carry = #a, #b, 0
  while i > 0 or j > 0 or carry > 0 do
    local da = 0
    local db = 0
    if i > 0 then da = string.byte(a, i) - 48 end
    if j > 0 then db = string.byte(b, j) - 48 end
    local s = da + db + carry
    out[#out + 1] = string.char(48 + s % 10)
    carry = math.floor(s / 10)
    i = i - 1
    j = j - 1
  end
  if #out == 0 then return '0' end
  local n = #out
  for k = 1, math.floor(n / 2) do out[k], out[n - k + 1] = out[n - k + 1], out[k] end
  local r = table.concat(out)
  local z = string.find(r, '[^0]')
  if z == nil then return '0' end
  return string.sub(r, z)
end

local function scmp(a, b)
  if #a ~= #b then if #a < #b then return -1 else return 1 end end
  if a == b then return 0 end
  if a < b then return -1 else return 1 end
end

-- Drops entries that left the window; returns the live total.
local function trim(z, m, now, window)
  local cutoff = now - window
  local sum = tonumber(redis.call('HGET', m, 'sum') or '0')
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #old > 0 then
    for i = 1, #old do sum = sum - member_amount(old[i]) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    redis.call('HSET', m, 'sum', fmt(sum))
  end
  if redis.call('ZCARD', z) == 0 then
    -- Reset rather than trust the running sum, so float drift cannot accumulate.
    redis.call('DEL', z, m)
    return 0
  end
  return sum
end

-- Adds an entry to a window whose live total (after trim) is sum; returns the new total.
local function window_add(z, m, now, amount, window, sum)
  local seq = redis.call('HINCRBY', m, 'seq', 1)
  redis.call('ZADD', z, now, seq .. ':' .. fmt(amount))
  sum = sum + amount
  redis.call('HSET', m, 'sum', fmt(sum))
  -- One extra second of slack covers a server clock stepping back.
  local ttl = math.ceil(window) + 1000
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', m, ttl)
  return sum
end
`;

// KEYS: window zset, window meta. ARGV: amount, limit, windowMs.
// Returns {allowed 0|1, used (string), retryAfterMs}.
const WINDOW_ACQUIRE = `
local z, m = KEYS[1], KEYS[2]
local amount, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local sum = trim(z, m, now, window)
if sum + amount <= limit then
  if amount > 0 then sum = window_add(z, m, now, amount, window, sum) end
  return {1, fmt(sum), 0}
end
if amount > limit then return {0, fmt(sum), math.ceil(window)} end
local needed = sum + amount - limit
local freed = 0
local start = 0
while true do
  local batch = redis.call('ZRANGE', z, start, start + 127, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    freed = freed + member_amount(batch[i])
    if freed >= needed then
      return {0, fmt(sum), math.max(1, math.ceil(tonumber(batch[i + 1]) + window - now))}
    end
  end
  start = start + 128
end
return {0, fmt(sum), math.ceil(window)}
`;

// KEYS: window zset, window meta. ARGV: delta, windowMs.
const WINDOW_ADJUST = `
local z, m = KEYS[1], KEYS[2]
local delta, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local sum = trim(z, m, now, window)
if delta > 0 then
  window_add(z, m, now, delta, window, sum)
  return 1
end
if sum == 0 then return 0 end
-- Give back from the newest entries, never below zero.
local remaining = -delta
while remaining > 0 do
  local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  if #last == 0 then break end
  local amount = member_amount(last[1])
  redis.call('ZREM', z, last[1])
  if amount <= remaining then
    remaining = remaining - amount
    sum = sum - amount
  else
    local seq = redis.call('HINCRBY', m, 'seq', 1)
    redis.call('ZADD', z, last[2], seq .. ':' .. fmt(amount - remaining))
    sum = sum - remaining
    remaining = 0
  end
end
if redis.call('ZCARD', z) == 0 then
  redis.call('DEL', z, m)
else
  redis.call('HSET', m, 'sum', fmt(sum))
end
return 1
`;

// KEYS: window zset, window meta. ARGV: windowMs. Returns used (string).
const WINDOW_USAGE = `
return fmt(trim(KEYS[1], KEYS[2], now_ms(), tonumber(ARGV[1])))
`;

// Splits a reservation value "<amount>|<expiresAt>".
const RESERVATION_HELPERS = `
local function parse_reservation(v)
  local i = string.find(v, '|', 1, true)
  return string.sub(v, 1, i - 1), tonumber(string.sub(v, i + 1))
end
`;

// KEYS: reserve hash. ARGV: id, amount, limit, ttlMs, reservationTtlMs.
// Returns {ok 0|1, committed, reserved} with decimal strings.
const RESERVE = `
${RESERVATION_HELPERS}
local h = KEYS[1]
local field = 'r:' .. ARGV[1]
local amount, limit = ARGV[2], ARGV[3]
local now = now_ms()
local all = redis.call('HGETALL', h)
local committed, reserved, previous = '0', '0', '0'
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  if f == 'c' then
    committed = v
  elseif string.sub(f, 1, 2) == 'r:' then
    local a, exp = parse_reservation(v)
    if exp <= now then
      redis.call('HDEL', h, f)
    elseif f == field then
      previous = a
    else
      reserved = sadd(reserved, a)
    end
  end
end
if scmp(sadd(sadd(committed, reserved), amount), limit) > 0 then
  return {0, committed, sadd(reserved, previous)}
end
redis.call('HSET', h, field, amount .. '|' .. fmt(now + tonumber(ARGV[5])))
redis.call('PEXPIRE', h, math.ceil(tonumber(ARGV[4])))
return {1, committed, sadd(reserved, amount)}
`;

// KEYS: reserve hash. ARGV: id, actual, ttlMs.
const SETTLE = `
local h = KEYS[1]
redis.call('HDEL', h, 'r:' .. ARGV[1])
local committed = redis.call('HGET', h, 'c') or '0'
redis.call('HSET', h, 'c', sadd(committed, ARGV[2]))
redis.call('PEXPIRE', h, math.ceil(tonumber(ARGV[3])))
return 1
`;

// KEYS: reserve hash. Returns {committed, reserved}; read-only (expired reservations are skipped, not deleted).
const READ_RESERVE = `
${RESERVATION_HELPERS}
local now = now_ms()
local all = redis.call('HGETALL', KEYS[1])
local committed, reserved = '0', '0'
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  if f == 'c' then
    committed = v
  elseif string.sub(f, 1, 2) == 'r:' then
    local a, exp = parse_reservation(v)
    if exp > now then reserved = sadd(reserved, a) end
  end
end
return {committed, reserved}
`;

// KEYS: json string. ARGV: hasExpected '0'|'1', expected text, next text, ttlMs.
const CAS_JSON = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif (not cur) or cur ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', math.ceil(tonumber(ARGV[4])))
return 1
`;

// KEYS: latency hash. ARGV: latencyMs, ttftMs ('' when none), halfLifeMs, ttlMs.
const RECORD_LATENCY = `
local h = KEYS[1]
local x, ttft, half = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local s = redis.call('HMGET', h, 'w', 'm', 'tw', 'tm', 'at')
local w, m, tw, tm, at = tonumber(s[1] or '0'), tonumber(s[2] or '0'), tonumber(s[3] or '0'), tonumber(s[4] or '0'), tonumber(s[5] or '0')
local decay = 0
if s[5] then decay = 0.5 ^ (math.max(0, now - at) / half) end
w = w * decay
tw = tw * decay
m = (m * w + x) / (w + 1)
w = w + 1
if ttft then
  tm = (tm * tw + ttft) / (tw + 1)
  tw = tw + 1
end
redis.call('HSET', h, 'w', fmt(w), 'm', fmt(m), 'tw', fmt(tw), 'tm', fmt(tm), 'at', fmt(math.max(now, at)), 'h', fmt(half))
redis.call('PEXPIRE', h, math.ceil(tonumber(ARGV[4])))
return 1
`;

// KEYS: latency hash. Returns false when absent, else {samples, ewmaMs, ewmaTtftMs} (strings).
const READ_LATENCY = `
local s = redis.call('HMGET', KEYS[1], 'w', 'm', 'tw', 'tm', 'at', 'h')
if not s[1] then return false end
local decay = 0.5 ^ (math.max(0, now_ms() - tonumber(s[5])) / tonumber(s[6]))
local tm = '0'
if tonumber(s[3]) > 0 then tm = s[4] end
return {fmt(math.floor(tonumber(s[1]) * decay + 0.5)), s[2], tm}
`;

/** RedisScripts is the set of scripts the Redis store runs. */
export interface RedisScripts {
  windowAcquire: LuaScript;
  windowAdjust: LuaScript;
  windowUsage: LuaScript;
  reserve: LuaScript;
  settle: LuaScript;
  readReserve: LuaScript;
  casJson: LuaScript;
  recordLatency: LuaScript;
  readLatency: LuaScript;
}

function script(name: string, prelude: string, body: string): LuaScript {
  const source = `${prelude}\n${HELPERS}\n${body}`;
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * buildRedisScripts assembles the scripts around a clock prelude that
 * defines `now_ms()`: SERVER_CLOCK_PRELUDE in production; tests substitute
 * a prelude that reads the time from an extra argument, to move the clock.
 */
export function buildRedisScripts(prelude: string = SERVER_CLOCK_PRELUDE): RedisScripts {
  return {
    windowAcquire: script("windowAcquire", prelude, WINDOW_ACQUIRE),
    windowAdjust: script("windowAdjust", prelude, WINDOW_ADJUST),
    windowUsage: script("windowUsage", prelude, WINDOW_USAGE),
    reserve: script("reserve", prelude, RESERVE),
    settle: script("settle", prelude, SETTLE),
    readReserve: script("readReserve", prelude, READ_RESERVE),
    casJson: script("casJson", prelude, CAS_JSON),
    recordLatency: script("recordLatency", prelude, RECORD_LATENCY),
    readLatency: script("readLatency", prelude, READ_LATENCY),
  };
}
