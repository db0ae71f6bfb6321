import { createHash } from "node:crypto";

/**
 * The Redis store's Lua script. Every multi-step operation is one Lua
 * function, so it is atomic across replicas, and one script runs a batch
 * of operations: the store sends the operations issued in one turn of the
 * event loop as one EVALSHA (see redis-store.ts), not one each. Every key
 * an operation touches is passed in KEYS, and one operation's keys share
 * one hash tag (one Cluster slot); a batch spans several, which a
 * standalone Redis runs as one script (a Cluster client would batch per
 * slot). Time comes from the Redis server's TIME, read once per batch, so
 * replicas with skewed clocks agree on every window and expiry.
 *
 * Layouts (K = `${prefix}:{${logicalKey}}`; for a window, whose group is
 * its logical key without the last ":" segment, K = `${prefix}:{${group}}:${last}`,
 * so the windows of one group share a slot and windowsAcquire takes them in one call):
 * - sliding window: `K:w` sorted set, member `<seq>:<amount>`, score = time
 *   in whole ms (rounded up, as are reservation expiries); `K:wm` hash {sum, seq, n, e, d}: the running total
 *   of the entries held (so an acquire does not sum the whole log), the
 *   member sequence, the number of entries, until when the keys' TTL is
 *   known to last (so it is renewed once per window, not on every write),
 *   and when the next lazy trim is due (see open_window). An entry counts
 *   while `now - score < windowMs`, exactly as in the memory store.
 *   Older builds' hashes lack d (a trim is then due at once), and they
 *   trim on every acquire, which keeps the same sum consistent.
 * - reservations: `K:r` hash; field `c` = committed total as a decimal
 *   string, field `r:<id>` = `<amount>|<expiresAtMs>`, field `t` = the
 *   total of the `r:` fields present, field `x` = a lower bound on their
 *   expiry, field `e` = the instant the hash's own expiry was last set to
 *   (absent in hashes older builds wrote: then it is set). Amounts and
 *   totals use decimal-string arithmetic in Lua (Lua numbers are doubles
 *   and would lose precision above 2^53 nano-USD ≈ 9 million USD), so
 *   totals are exact at any size. A call reads the kept
 *   total, so its cost does not grow with the requests in flight; once a
 *   reservation may have expired (x <= now) the totals are recounted and
 *   expired reservations deleted.
 * - JSON documents: `K:j` string holding the JSON text.
 * - latency: `K:l` hash {w, m, tw, tm, at, h}: decayed weight and mean of
 *   latency, the same for time to first token, last observation time and
 *   half-life.
 */

/** LuaScript is a script's source and its SHA1 for EVALSHA. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

/**
 * SERVER_CLOCK_PRELUDE defines now_ms() from the Redis server's clock,
 * read once per call: the operations of one batch run at one instant.
 */
export const SERVER_CLOCK_PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local __now
local function now_ms()
  if __now == nil then
    local t = redis.call('TIME')
    __now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  end
  return __now
end
`;

// Helpers. Defining functions is part of every call's cost (the batch
// script defines them all, once per call, not once per operation).
const FORMAT_HELPERS = `
local function fmt(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then return string.format('%d', x) end
  return string.format('%.17g', x)
end

-- Times as strings, formatted once per call of the script: formatting a
-- number costs about as much as a Redis call's own work, and every
-- operation of a batch shares one clock (the same few instants).
local __times = {}
local function ms(x)
  local text = __times[x]
  if text == nil then
    text = fmt(x)
    __times[x] = text
  end
  return text
end
`;

const DECIMAL_HELPERS = `
-- Decimal-string arithmetic on non-negative integers without leading zeros.
-- Up to 15 digits a double is exact, so short operands take the fast path.

-- Digits collected least significant first, as a number string without leading zeros.
local function from_digits(out)
  local n = #out
  for k = 1, math.floor(n / 2) do out[k], out[n - k + 1] = out[n - k + 1], out[k] end
  local r = table.concat(out)
  local z = string.find(r, '[^0]')
  if z == nil then return '0' end
  return string.sub(r, z)
end

local function sadd(a, b)
  if #a < 16 and #b < 16 then return string.format('%d', tonumber(a) + tonumber(b)) end
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
  return from_digits(out)
end

local function scmp(a, b)
  if #a ~= #b then if #a < #b then return -1 else return 1 end end
  if a == b then return 0 end
  if a < b then return -1 else return 1 end
end

-- a - b, never below '0'.
local function ssub(a, b)
  if scmp(a, b) <= 0 then return '0' end
  if #a < 16 then return string.format('%d', tonumber(a) - tonumber(b)) end
  local out = {}
  local i, j, borrow = #a, #b, 0
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow
    if j > 0 then d = d - (string.byte(b, j) - 48) end
    if d < 0 then
      d = d + 10
      borrow = 1
    else
      borrow = 0
    end
    out[#out + 1] = string.char(48 + d)
    i = i - 1
    j = j - 1
  end
  return from_digits(out)
end
`;

const WINDOW_HELPERS = `
local function member_amount(member)
  local i = string.find(member, ':', 1, true)
  return tonumber(string.sub(member, i + 1))
end

-- Drops the entries that left an open window (score <= now - window) and
-- takes their amounts off its running sum, then schedules the next lazy
-- trim (see open_window) a 600th of the window later.
local function trim_window(w, now, window)
  w.trimmed = true
  if w.n > 0 then
    -- Written with the meta's next write (when this call changes anything).
    w.d = math.ceil(now + window / 600)
    -- Scores are whole milliseconds, so this drops exactly the entries with score <= now - window.
    local cutoff = ms(math.floor(now - window))
    local old = redis.call('ZRANGEBYSCORE', w.z, '-inf', cutoff)
    if #old > 0 then
      for i = 1, #old do w.sum = w.sum - member_amount(old[i]) end
      redis.call('ZREMRANGEBYSCORE', w.z, '-inf', cutoff)
      w.n = w.n - #old
      w.dirty = true
    end
  end
  if w.n <= 0 then
    -- Empty: start from zero rather than trust the running sum, so float drift cannot accumulate.
    w.n = 0
    w.sum = 0
  end
end

-- Opens a window: reads its meta in one call and drops the entries that
-- left it, always (trim 'exact'), only once the time for the next trim
-- has come (trim 'lazy': the sum may then still count entries that left
-- less than a 600th of the window ago, an upper bound), or never ('none':
-- an adjustment, which needs no total). Trimming is two calls and a
-- member parse per entry; lazily it runs once per 600th of the window
-- rather than on every acquire. The running sum always equals the amounts
-- of the entries the set holds, whoever trims. Meta written before
-- entries were counted (no n) is counted once; a set whose meta is gone
-- (evicted) has its sum recounted from its entries.
local function open_window(z, m, now, window, trim)
  local meta = redis.call('HMGET', m, 'sum', 'seq', 'n', 'e', 'd')
  local w = { z = z, m = m, sum = tonumber(meta[1]) or 0, seq = tonumber(meta[2]) or 0, n = tonumber(meta[3]), e = tonumber(meta[4]) or 0, d = tonumber(meta[5]) or 0, dirty = false, added = false, trimmed = false }
  if w.n == nil then
    w.n = redis.call('ZCARD', z)
    w.dirty = meta[1] ~= false or w.n > 0
    if meta[1] == false and w.n > 0 then
      local all = redis.call('ZRANGE', z, 0, -1)
      for i = 1, #all do
        w.sum = w.sum + member_amount(all[i])
        local s = tonumber(string.sub(all[i], 1, string.find(all[i], ':', 1, true) - 1))
        if s > w.seq then w.seq = s end
      end
    end
  end
  if trim == 'exact' or (trim == 'lazy' and now >= w.d) then
    trim_window(w, now, window)
  elseif w.n <= 0 then
    w.n = 0
    w.sum = 0
  end
  return w
end

-- Adds an entry to an open window, timed at the given time: the next whole
-- millisecond (it may count up to 1 ms longer, never shorter; whole numbers
-- are cheap for Redis to format and parse, 17-digit fractions are not),
-- or that plus a hold (WindowsAcquireOptions.holdMs). amount_text, when
-- given, is amount as the caller wrote it (any text tonumber reads back as
-- amount), which spares formatting it again. Returns the entry's sequence.
local function window_add(w, at, amount, amount_text)
  w.seq = w.seq + 1
  redis.call('ZADD', w.z, ms(at), fmt(w.seq) .. ':' .. (amount_text or fmt(amount)))
  w.sum = w.sum + amount
  w.n = w.n + 1
  w.dirty = true
  if w.added == false or at > w.added then w.added = at end
  return w.seq
end

-- Writes an open window back: nothing when unchanged, no keys at all when
-- empty. An entry added (w.added is its time) must outlive its window plus one second of
-- slack for a server clock stepping back; the TTL is set one window
-- beyond that and renewed only when it runs short (at most once per
-- window, not on every write), so keys may outlive their last entry by
-- up to one window.
local function close_window(w, now, window)
  if w.n == 0 then
    if w.dirty then redis.call('DEL', w.z, w.m) end
    return
  end
  if not w.dirty then return end
  -- Sized once by its constructor, filled in place.
  local args = {'HSET', w.m, 'sum', fmt(w.sum), 'seq', fmt(w.seq), 'n', fmt(w.n), false, false, false, false}
  local k = 8
  if w.trimmed then
    args[k + 1], args[k + 2], k = 'd', fmt(w.d), k + 2
  end
  local renew = w.added and w.e < w.added + window + 1000
  if renew then
    w.e = math.ceil(w.added + 2 * window + 1000)
    args[k + 1], args[k + 2], k = 'e', fmt(w.e), k + 2
  end
  redis.call(unpack(args, 1, k))
  if renew then
    local ttl = math.ceil(w.e - now)
    redis.call('PEXPIRE', w.z, ttl)
    redis.call('PEXPIRE', w.m, ttl)
  end
end

-- How long until a window without room for amount has it: until enough of
-- its oldest entries leave. An amount above the limit never fits; the
-- caller should reject it as too large, so a full window is the answer.
local function retry_after(w, amount, limit, now, window)
  if amount > limit then return math.ceil(window) end
  local needed = w.sum + amount - limit
  local freed = 0
  local start = 0
  while true do
    local batch = redis.call('ZRANGE', w.z, start, start + 127, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      freed = freed + member_amount(batch[i])
      if freed >= needed then return math.max(1, math.ceil(tonumber(batch[i + 1]) + window - now)) end
    end
    start = start + 128
  end
  return math.ceil(window)
end
`;

// KEYS: zset and meta of each window, in pairs. ARGV: windowMs, trim
// ('exact' or 'lazy', see open_window), hold (ms the entries are timed
// ahead of now), then amount and limit of each window. All or nothing:
// every amount is counted when every window has room, which is always
// decided on the window's exact total (a window short of room is trimmed
// first). Returns {allowed 0|1, the entries' time, then per window: had
// room 0|1, used (string), retryAfterMs, the entry's sequence (0 when
// nothing was counted)}.
const WINDOWS_ACQUIRE = `
local window, trim = tonumber(ARGV[1]), ARGV[2]
local now = now_ms()
local at = math.ceil(now) + tonumber(ARGV[3])
local ws = {}
local fits = true
for i = 1, #KEYS / 2 do
  local w = open_window(KEYS[2 * i - 1], KEYS[2 * i], now, window, trim)
  w.amount, w.limit = tonumber(ARGV[2 * i + 2]), tonumber(ARGV[2 * i + 3])
  w.room = w.sum + w.amount <= w.limit
  if not w.room and not w.trimmed then
    trim_window(w, now, window)
    w.room = w.sum + w.amount <= w.limit
  end
  if not w.room then fits = false end
  ws[i] = w
end
local out = { fits and 1 or 0, at }
for i = 1, #ws do
  local w = ws[i]
  local seq = 0
  if fits and w.amount > 0 then seq = window_add(w, at, w.amount, ARGV[2 * i + 2]) end
  close_window(w, now, window)
  local k = 4 * i - 1
  out[k + 1], out[k + 3] = fmt(w.sum), seq
  if w.room then
    out[k], out[k + 2] = 1, 0
  else
    out[k], out[k + 2] = 0, retry_after(w, w.amount, w.limit, now, window)
  end
end
return out
`;

// KEYS: window zset, window meta. ARGV: delta, windowMs, and for a
// give-back from one entry, its time and sequence. Returns 1, or 0 when
// there was nothing to give back.
const WINDOW_ADJUST = `
local z, m = KEYS[1], KEYS[2]
local delta, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if delta > 0 then
  local now = now_ms()
  -- An adjustment needs no current total, so it leaves expired entries to the next acquire.
  local w = open_window(z, m, now, window, 'none')
  window_add(w, math.ceil(now), delta, ARGV[1])
  close_window(w, now, window)
  return 1
end
-- Give back from the entry named, or else from the newest entries, never
-- below zero. A reduced entry keeps its score and its sequence number
-- (members stay unique), and the meta's totals change by increments: no
-- read of the meta, and no expiry to renew (no entry is newer than before).
local remaining = -delta
local given, removed = 0, 0
local function take(member, score)
  local colon = string.find(member, ':', 1, true)
  local amount = tonumber(string.sub(member, colon + 1))
  redis.call('ZREM', z, member)
  if amount <= remaining then
    remaining = remaining - amount
    given = given + amount
    removed = removed + 1
  else
    redis.call('ZADD', z, score, string.sub(member, 1, colon) .. fmt(amount - remaining))
    given = given + remaining
    remaining = 0
  end
end
if ARGV[3] then
  local prefix = ARGV[4] .. ':'
  local same = redis.call('ZRANGEBYSCORE', z, ARGV[3], ARGV[3])
  for i = 1, #same do
    if string.sub(same[i], 1, #prefix) == prefix then
      take(same[i], ARGV[3])
      break
    end
  end
else
  while remaining > 0 do
    local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
    if #last == 0 then break end
    take(last[1], last[2])
  end
end
if given == 0 then return 0 end
-- HINCRBY parses and formats integers cheaply; a sum with a fraction needs HINCRBYFLOAT.
local sum
if given == math.floor(given) then
  sum = redis.pcall('HINCRBY', m, 'sum', -given)
  if type(sum) == 'table' then sum = nil end
end
if sum == nil then sum = tonumber(redis.call('HINCRBYFLOAT', m, 'sum', fmt(-given))) end
local n = 1
if removed > 0 then n = redis.call('HINCRBY', m, 'n', -removed) end
if sum < 0 or n < 0 then
  -- The meta was gone (evicted, which also left it without a TTL) or predates n: the next open recounts it.
  redis.call('DEL', m)
elseif n == 0 then
  redis.call('DEL', z, m)
end
return 1
`;

// KEYS: window zset, window meta. ARGV: windowMs. Returns used (string).
const WINDOW_USAGE = `
local now = now_ms()
local window = tonumber(ARGV[1])
local w = open_window(KEYS[1], KEYS[2], now, window, 'exact')
close_window(w, now, window)
return fmt(w.sum)
`;

// Reservation hashes keep their reserved total (t) and a lower bound on
// their reservations' expiry (x), so a call costs the same however many
// requests are in flight; only once a reservation may have expired
// (x <= now), or for a hash written before totals were kept (no t), are
// the totals recounted from the reservations themselves.
const RESERVATION_HELPERS = `
-- Splits a reservation value "<amount>|<expiresAt>".
local function parse_reservation(v)
  local i = string.find(v, '|', 1, true)
  return string.sub(v, 1, i - 1), tonumber(string.sub(v, i + 1))
end

-- Reads a reservation hash's totals and, when field is given, that
-- reservation's value (false when absent). A recount deletes expired
-- reservations only when writable. xs is x as stored, until x changes.
local function open_reserve(h, now, writable, field)
  local v
  if field then v = redis.call('HMGET', h, 'c', 't', 'x', 'e', field) else v = redis.call('HMGET', h, 'c', 't', 'x', 'e') end
  local r = { c = v[1] or '0', t = v[2], x = tonumber(v[3]), xs = v[3], e = tonumber(v[4]) or 0, prev = v[5] or false, recounted = false, exists = v[1] ~= false or v[2] ~= false }
  if r.t ~= false and (r.x == nil or r.x > now) then return r end
  local all = redis.call('HGETALL', h)
  r.t, r.x, r.xs, r.prev, r.recounted = '0', nil, false, false, true
  r.exists = #all > 0
  for i = 1, #all, 2 do
    local f, val = all[i], all[i + 1]
    if string.sub(f, 1, 2) == 'r:' then
      local a, exp = parse_reservation(val)
      if exp <= now then
        if writable then redis.call('HDEL', h, f) end
      else
        r.t = sadd(r.t, a)
        if r.x == nil or exp < r.x then r.x, r.xs = exp, false end
        if f == field then r.prev = val end
      end
    end
  end
  return r
end

-- Writes the totals of a reservation hash back, with another field when
-- given. With ttl, the hash is kept at least ttl from now: its expiry is
-- set an eighth of ttl (at most a minute) beyond that and kept in field e,
-- so PEXPIRE runs only when the hash would expire too early, not on every
-- write (a budget's hash asks for the same instant, its period's end plus
-- retention, on every request).
local function save_reserve(h, r, t, field, value, now, ttl, field2, value2)
  -- Sized once by its constructor, filled in place.
  local args = {'HSET', h, 't', t, false, false, false, false, false, false, false, false}
  local n = 4
  if field then
    args[n + 1], args[n + 2], n = field, value, n + 2
  end
  if field2 then
    args[n + 1], args[n + 2], n = field2, value2, n + 2
  end
  if r.x ~= nil then
    if not r.xs then r.xs = fmt(r.x) end
    args[n + 1], args[n + 2], n = 'x', r.xs, n + 2
  end
  local renew = ttl ~= nil and r.e < now + ttl
  if renew then
    r.e = math.ceil(now + ttl + math.min(ttl / 8, 60000))
    args[n + 1], args[n + 2], n = 'e', fmt(r.e), n + 2
  end
  redis.call(unpack(args, 1, n))
  if r.x == nil and r.recounted then redis.call('HDEL', h, 'x') end
  if renew then redis.call('PEXPIRE', h, r.e - math.floor(now)) end
end
`;

// KEYS: reserve hash. ARGV: id, amount, limit, ttlMs, reservationTtlMs.
// Returns {ok 0|1, committed, reserved} with decimal strings.
const RESERVE = `
local h = KEYS[1]
local field = 'r:' .. ARGV[1]
local amount, limit = ARGV[2], ARGV[3]
local now = now_ms()
local r = open_reserve(h, now, true, field)
local previous = '0'
if r.prev then previous = parse_reservation(r.prev) end
local others = ssub(r.t, previous)
if scmp(sadd(sadd(r.c, others), amount), limit) > 0 then
  -- Keep what a recount found (expired reservations were deleted); never create a hash without a TTL.
  if r.recounted and r.exists then save_reserve(h, r, r.t) end
  return {0, r.c, r.t}
end
local expires = math.ceil(now + tonumber(ARGV[5]))
if r.x == nil or expires < r.x then r.x, r.xs = expires, false end
local reserved = sadd(others, amount)
save_reserve(h, r, reserved, field, amount .. '|' .. fmt(expires), now, tonumber(ARGV[4]))
return {1, r.c, reserved}
`;

// KEYS: reserve hash. ARGV: id, actual, ttlMs, and optionally how much
// of the reservation to release (all of it when absent or when it holds
// no more; the rest keeps its expiry).
const SETTLE = `
local h = KEYS[1]
local field = 'r:' .. ARGV[1]
local now = now_ms()
local r = open_reserve(h, now, true, field)
local t = r.t
local kept = false
if r.prev then
  local amount, expires = parse_reservation(r.prev)
  local release = ARGV[4]
  if release and scmp(release, amount) < 0 then
    -- Written with the totals, in one HSET.
    t = ssub(t, release)
    kept = ssub(amount, release) .. '|' .. fmt(expires)
  else
    t = ssub(t, amount)
    redis.call('HDEL', h, field)
  end
end
if kept then
  save_reserve(h, r, t, 'c', sadd(r.c, ARGV[2]), now, tonumber(ARGV[3]), field, kept)
else
  save_reserve(h, r, t, 'c', sadd(r.c, ARGV[2]), now, tonumber(ARGV[3]))
end
return 1
`;

// KEYS: reserve hash. Returns {committed, reserved}; read-only (expired reservations are skipped, not deleted).
const READ_RESERVE = `
local r = open_reserve(KEYS[1], now_ms(), false, nil)
return {r.c, r.t}
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

// The batch: KEYS are every operation's keys, in order; ARGV is the
// number of operations, then for each its name, key count, argument count
// and arguments. Each operation runs as its own function under pcall, so
// one that fails (a key of the wrong type) answers its own error reply and
// the others still run. Returns one reply per operation, in order.
const BATCH = `
local ops = {
  windowsAcquire = op_windowsAcquire, windowAdjust = op_windowAdjust, windowUsage = op_windowUsage,
  reserve = op_reserve, settle = op_settle, readReserve = op_readReserve,
  casJson = op_casJson, recordLatency = op_recordLatency, readLatency = op_readLatency,
}
local out = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local fn, nk, na = ops[ARGV[a]], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  -- Built whole by one constructor each: growing a table element by element costs more than the operation.
  local keys, args = { unpack(KEYS, k, k + nk - 1) }, { unpack(ARGV, a + 3, a + 2 + na) }
  k, a = k + nk, a + 3 + na
  if fn == nil then
    out[i] = redis.error_reply('ERR unknown state operation')
  else
    local ok, res = pcall(fn, keys, args)
    if ok then
      out[i] = res
    elseif type(res) == 'table' and res.err then
      out[i] = redis.error_reply(res.err)
    else
      out[i] = redis.error_reply(tostring(res))
    end
  end
end
return out
`;

/** RedisOp names one operation of the batch script. */
export type RedisOp = "windowsAcquire" | "windowAdjust" | "windowUsage" | "reserve" | "settle" | "readReserve" | "casJson" | "recordLatency" | "readLatency";

const OPERATIONS: Record<RedisOp, string> = {
  windowsAcquire: WINDOWS_ACQUIRE,
  windowAdjust: WINDOW_ADJUST,
  windowUsage: WINDOW_USAGE,
  reserve: RESERVE,
  settle: SETTLE,
  readReserve: READ_RESERVE,
  casJson: CAS_JSON,
  recordLatency: RECORD_LATENCY,
  readLatency: READ_LATENCY,
};

/** BatchOp is one operation of a batch: what it does, its keys (one hash tag) and its arguments. */
export interface BatchOp {
  op: RedisOp;
  keys: readonly string[];
  args: readonly (string | number)[];
}

/**
 * batchArguments lays operations out as the batch script's arguments after
 * the script itself: the key count, every key, then ARGV. The replies come
 * back as an array, one per operation, in order; an operation that failed
 * is an error reply in its place.
 */
export function batchArguments(ops: readonly BatchOp[]): [numKeys: number, ...keysAndArgs: (string | number)[]] {
  // One array, filled in place: it is built for every batch.
  const out: [number, ...(string | number)[]] = [0];
  for (const o of ops) for (const key of o.keys) out.push(key);
  out[0] = out.length - 1;
  out.push(ops.length);
  for (const o of ops) {
    out.push(o.op, o.keys.length, o.args.length);
    for (const arg of o.args) out.push(arg);
  }
  return out;
}

/**
 * buildBatchScript assembles the batch script around a clock prelude that
 * defines `now_ms()`: SERVER_CLOCK_PRELUDE in production; tests substitute
 * a prelude that reads the time from an extra last argument, to move the
 * clock.
 */
export function buildBatchScript(prelude: string = SERVER_CLOCK_PRELUDE): LuaScript {
  // Each operation's body reads its own KEYS and ARGV: the function's parameters, which shadow the batch's.
  const functions = Object.entries(OPERATIONS).map(([name, body]) => `local function op_${name}(KEYS, ARGV)\n${body}\nend`);
  const source = [prelude, FORMAT_HELPERS, DECIMAL_HELPERS, WINDOW_HELPERS, RESERVATION_HELPERS, ...functions, BATCH].join("\n");
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}
