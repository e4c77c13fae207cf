//! The Lua scripts of the Redis store, and the layout of their keys and arguments. Redis runs
//! each script atomically: no other instance's call runs between a check and its increment.
//!
//! Keys under the configured prefix `P`; a consumer's carry its id as a hash tag, a team's its
//! name (`Pteam{payments}:`):
//! - consumer `P{id}:` — `t:m:<minute>`, `t:h:<hour>`, `t:d:<day>` tokens used + reserved;
//!   `r:<minute>` requests admitted this minute; `b:<day>` / `s:<day>` nano-dollars committed
//!   (spent + reserved) / spent that day; `bm:<month>` / `sm:<month>` the same for the month
//!   (months since 1970-01); `res` the reservations (a sorted set scored by expiry); `settled`
//!   the ids settled in the last day;
//! - team `Pteam{name}:` — `r:<minute>`, `b:<day>`, `s:<day>`, `bm:<month>`, `sm:<month>`.
//!
//! A reservation is a member of `res`: `id|tokens|minute|hour|day-window|day|cost|month|scopes|team`,
//! where `scopes` says which budgets beside the consumer's day it holds (1: the consumer's
//! month, 2: the team's day, 4: the team's month) and `team` is the team's name (empty for
//! none). Members written before team and monthly budgets existed end after `cost`, and are
//! reaped as holding the consumer's day alone.

/// Lua: gives back the reservations in `res` that expired (their requests never settled: the
/// gateway holding them crashed, or they outlived `RESERVATION_TTL`): tokens to the three
/// windows and the cost to every budget it was held against. `P` is the store's prefix,
/// `prefix` the consumer's (`P{id}:`). Requests stay counted in their minute.
pub(super) const REAP_FN: &str = r"
local function give_back(k, amount)
  if redis.call('EXISTS', k) == 1 and redis.call('DECRBY', k, amount) < 0 then
    redis.call('SET', k, 0, 'KEEPTTL')
  end
end
local function reap(res, P, prefix, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', res, '-inf', now)) do
    local f = {}
    for part in string.gmatch(m, '([^|]+)') do f[#f + 1] = part end
    local tokens, cost = tonumber(f[2]), tonumber(f[7])
    for i, w in ipairs({'m', 'h', 'd'}) do
      give_back(prefix .. 't:' .. w .. ':' .. f[2 + i], tokens)
    end
    give_back(prefix .. 'b:' .. f[6], cost)
    local scopes = tonumber(f[9] or '0')
    if scopes % 2 == 1 then give_back(prefix .. 'bm:' .. f[8], cost) end
    if f[10] then
      local team = P .. 'team{' .. f[10] .. '}:'
      if math.floor(scopes / 2) % 2 == 1 then give_back(team .. 'b:' .. f[6], cost) end
      if math.floor(scopes / 4) % 2 == 1 then give_back(team .. 'bm:' .. f[8], cost) end
    end
    redis.call('ZREM', res, m)
  end
end
";

/// Admit a request: reserve its worst-case tokens in the three token windows, one request in
/// each request-rate window (the consumer's, the team's) and its worst-case cost against every
/// budget it is held to, all or nothing, in one round trip, recording the reservation by id.
///
/// KEYS: 1 the reservations; 2–4 the minute, hour and day token windows; then `nr` request
/// windows; then, per budget (`nb`, the consumer's day first), its committed and spent keys.
///
/// ARGV: 1 `P`; 2 the consumer's prefix; 3 now; 4 the reservation's expiry; 5 the reservation;
/// 6 tokens; 7 cost; 8–10 the token limits; 11–13 the token windows' TTLs (s); 14 `nr`; 15
/// `nb`; then per request window its limit and TTL; then per budget the budget and its TTL.
///
/// Returns `{1, used_m, used_h, used_d, spent_1, committed_1, …}` (each budget's spent and
/// committed after it) when admitted, `{0, window (1-based), used}` when a token window is
/// full, `{3, request window (1-based), used}` when a request rate is, `{2, budget (1-based),
/// spent, committed}` when a budget is.
pub(super) const ADMIT: &str = r"
local now = tonumber(ARGV[3])
reap(KEYS[1], ARGV[1], ARGV[2], now)
local need, cost = tonumber(ARGV[6]), tonumber(ARGV[7])
local nr, nb = tonumber(ARGV[14]), tonumber(ARGV[15])
local kb, ab = 4 + nr, 15 + 2 * nr
local out = {1, 0, 0, 0}
for i = 1, 3 do
  local used = tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  if used + need > tonumber(ARGV[7 + i]) then return {0, i, used} end
end
for j = 1, nr do
  local used = tonumber(redis.call('GET', KEYS[4 + j]) or '0')
  if used + 1 > tonumber(ARGV[14 + 2 * j]) then return {3, j, used} end
end
for j = 1, nb do
  local committed = tonumber(redis.call('GET', KEYS[kb + 2 * j - 1]) or '0')
  local spent = tonumber(redis.call('GET', KEYS[kb + 2 * j]) or '0')
  if committed + cost > tonumber(ARGV[ab + 2 * j - 1]) then
    return {2, j, spent, committed}
  end
  out[3 + 2 * j] = spent
  out[4 + 2 * j] = committed
end
for i = 1, 3 do
  out[1 + i] = redis.call('INCRBY', KEYS[1 + i], need)
  redis.call('EXPIRE', KEYS[1 + i], ARGV[10 + i])
end
for j = 1, nr do
  redis.call('INCR', KEYS[4 + j])
  redis.call('EXPIRE', KEYS[4 + j], ARGV[15 + 2 * j])
end
for j = 1, nb do
  out[4 + 2 * j] = redis.call('INCRBY', KEYS[kb + 2 * j - 1], cost)
  redis.call('EXPIRE', KEYS[kb + 2 * j - 1], ARGV[ab + 2 * j])
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[ab + 2])
return out
";

/// Settle a request: replace its reservation with the real usage and cost, once, in the
/// windows, days and months it was made in. A settlement whose reservation is still held takes
/// it back and adds the usage; one whose reservation expired (or whose admission never ran)
/// adds the usage alone; a settlement already applied (a retry whose first answer was lost)
/// does nothing.
///
/// KEYS: 1 the reservations; 2 the settled ids; 3–5 the reservation's minute, hour and day
/// token windows; then, per budget it was held to (`nb`, as at admission), its committed and
/// spent keys.
///
/// ARGV: 1 reserved tokens; 2 actual tokens; 3 reserved cost; 4 actual cost; 5 the
/// reservation; 6 its id; 7 now; 8 `nb`; then per budget its TTL.
///
/// Returns `{used_m, used_h, used_d, before_1, after_1, …}`: the windows' use after it and each
/// budget's spent before and after (only the windows when it was already applied).
pub(super) const SETTLE: &str = r"
local now, nb = tonumber(ARGV[7]), tonumber(ARGV[8])
local out = {0, 0, 0}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400)
if redis.call('ZSCORE', KEYS[2], ARGV[6]) == false then
  local held = redis.call('ZREM', KEYS[1], ARGV[5]) == 1
  local dt, dc = tonumber(ARGV[2]), tonumber(ARGV[4])
  if held then
    dt = dt - tonumber(ARGV[1])
    dc = dc - tonumber(ARGV[3])
  end
  for i = 3, 5 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      if redis.call('INCRBY', KEYS[i], dt) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    end
  end
  for j = 1, nb do
    local committed, spent = KEYS[4 + 2 * j], KEYS[5 + 2 * j]
    if redis.call('INCRBY', committed, dc) < 0 then
      redis.call('SET', committed, 0, 'KEEPTTL')
    end
    redis.call('EXPIRE', committed, ARGV[8 + j])
    local after = redis.call('INCRBY', spent, ARGV[4])
    redis.call('EXPIRE', spent, ARGV[8 + j])
    out[2 + 2 * j] = after - tonumber(ARGV[4])
    out[3 + 2 * j] = after
  end
  redis.call('ZADD', KEYS[2], now, ARGV[6])
  redis.call('EXPIRE', KEYS[2], 86400)
end
for i = 1, 3 do out[i] = tonumber(redis.call('GET', KEYS[2 + i]) or '0') end
return out
";

/// Lua: reaps one consumer's expired reservations. KEYS: the reservations. ARGV: `P`, the
/// consumer's prefix, now.
pub(super) const REAP: &str = r"
reap(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))
return 1
";
