"""The Lua scripts that make each cluster decision one atomic step in Redis.

Redis runs a script to the end before anything else, so a check and the
change it allows cannot be split by another node: the idempotence check and
the append of a ``say``, a name's claim and the session rules, a whisper-id
window and the whisper. Every change that other nodes must see also appends
an event to ``cc:events`` in the same step, so the cluster's state and its
history of changes never disagree.

Keys (a chat is one Redis database):

- ``cc:room:<room>``: the room's messages, a stream whose entry ids are
  ``0-<seq>`` (``XADD ... 0-*`` numbers them 1, 2, 3; trimming never resets it);
  each keeps the id of the last event before it (``e``);
- ``cc:ids:<session>:<room>``: the session's last message ids there (idempotence);
- ``cc:wids:<session>``, ``cc:widn:<session>``: its last whisper ids;
- ``cc:users``: who is signed in, on which node, with which session digest;
- ``cc:urooms:<user>``: the rooms a signed-in user is in;
- ``cc:rcolors:<room>`` and ``cc:colors``: how many users have each color, in a
  room and in all, so that a claim picks a color atomically (PROTOCOL 2);
- ``cc:session:<user>``: the session kept for a name, parked with a time to live;
- ``cc:accounts``: registered names;
- ``cc:nodes`` and ``cc:node:<node>``: the nodes, each alive while its key lives;
- ``cc:events``: the stream of membership changes and cross-node whispers; a
  part, sign-out or nick keeps where the user's rooms stood then (``s``);
- ``cc:events:last``: the id of the newest event (what a message keeps, and how
  far a settle waits);
- ``cc:wake``: a Pub/Sub channel that only wakes nodes up (``r<room> <seq>``
  for a new message, ``e`` for a new event); nothing is ever read from it
  that the streams do not also hold.

Names and rooms are ``[A-Za-z0-9_-]``, so they are safe inside keys.
"""

from __future__ import annotations

__all__ = ["EVENTS_MAX", "LAST_EVENT", "SCRIPTS"]

#: Events kept (approximately); a node that falls further behind resyncs.
EVENTS_MAX = 100_000
#: The id of the newest event, set with each (the scripts spell it out, as every
#: key): what a message keeps, and where a settle waits until.
LAST_EVENT = "cc:events:last"

_COMMON = f"""
local function event(fields)
  local id = redis.call('XADD', 'cc:events', 'MAXLEN', '~', {EVENTS_MAX}, '*', unpack(fields))
  redis.call('SET', 'cc:events:last', id)
  redis.call('PUBLISH', 'cc:wake', 'e')
end
local function count_color(rooms, color, delta)
  for _, room in ipairs(rooms) do
    redis.call('HINCRBY', 'cc:rcolors:' .. room, color, delta)
  end
  redis.call('HINCRBY', 'cc:colors', color, delta)
end
-- Where rooms stand now ('room:seq,...'): a node applies an event about a
-- user (a part, a sign-out, a nick) only after it has shown those rooms'
-- messages from before it, as one server would.
local function tops(rooms)
  local out = {{}}
  for _, room in ipairs(rooms) do
    local last = redis.call('XREVRANGE', 'cc:room:' .. room, '+', '-', 'COUNT', 1)
    if #last > 0 then table.insert(out, room .. ':' .. string.sub(last[1][1], 3)) end
  end
  return table.concat(out, ',')
end
local function sign_out(key, u, reason, ts, ttl)
  local rooms = redis.call('SMEMBERS', 'cc:urooms:' .. key)
  local after = tops(rooms)
  for _, room in ipairs(rooms) do
    redis.call('HINCRBY', 'cc:rcolors:' .. room, u.c, -1)
  end
  redis.call('HINCRBY', 'cc:colors', u.c, -1)
  redis.call('DEL', 'cc:urooms:' .. key)
  redis.call('HDEL', 'cc:users', key)
  redis.call('SET', 'cc:session:' .. key, cjson.encode({{d=u.d, c=u.c, a=0, p=ts}}), 'PX', ttl)
  event({{'k', 'out', 'node', u.node, 'key', key, 'r', reason, 's', after}})
end
local function split(text)
  local out = {{}}
  for item in string.gmatch(text, '[^,]+') do table.insert(out, item) end
  return out
end
-- PROTOCOL 2's colors, decided here so that two nodes signing users in at
-- the same moment cannot both hand out the same one: the palette color least
-- used in the rooms joined, then least used by everyone, then palette order;
-- a returning user keeps its old color if nobody in those rooms has it.
local function pick_color(rooms, palette, keep)
  local near, all = {{}}, {{}}
  for _, room in ipairs(rooms) do
    local counts = redis.call('HGETALL', 'cc:rcolors:' .. room)
    for i = 1, #counts, 2 do
      near[counts[i]] = (near[counts[i]] or 0) + tonumber(counts[i + 1])
    end
  end
  if keep ~= '' and (near[keep] or 0) <= 0 then return keep end
  local counts = redis.call('HGETALL', 'cc:colors')
  for i = 1, #counts, 2 do all[counts[i]] = tonumber(counts[i + 1]) end
  local best, best_near, best_all = nil, 0, 0
  for _, color in ipairs(palette) do
    local n, a = math.max(near[color] or 0, 0), math.max(all[color] or 0, 0)
    if best == nil or n < best_near or (n == best_near and a < best_all) then
      best, best_near, best_all = color, n, a
    end
  end
  return best
end
local function alive(node)
  return redis.call('EXISTS', 'cc:node:' .. node) == 1
end
local function owned(key, node)
  local held = redis.call('HGET', 'cc:users', key)
  if not held then return nil end
  local u = cjson.decode(held)
  if u.node ~= node then return nil end
  return u
end
"""

# ARGV: key, name, node, hello digest, new digest, mode, color, avoid (a,b), ts, grace,
# ttl ms, rooms to join (a,b), palette (a,b). A fresh or resumed user joins its
# rooms here, in the same step that picks its color (see pick_color).
_CLAIM = """
local key, name, node, hd, nd, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ts, grace, ttl = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local rooms, palette = split(ARGV[12]), split(ARGV[13])
local held = redis.call('HGET', 'cc:users', key)
if held then
  local u = cjson.decode(held)
  if alive(u.node) then
    if (hd ~= '' and hd == u.d) or mode == 'proven' then
      local from, digest = u.node, u.d
      if hd ~= u.d then digest = nd end
      u.node = node
      u.d = digest
      redis.call('HSET', 'cc:users', key, cjson.encode(u))
      redis.call('SET', 'cc:session:' .. key, cjson.encode({d=digest, c=u.c, a=1, p=ts}))
      local rooms = table.concat(redis.call('SMEMBERS', 'cc:urooms:' .. key), ',')
      event({'k', 'move', 'node', node, 'key', key, 'n', u.n, 'c', u.c, 'rooms', rooms})
      return {'takeover', u.c, digest, from, redis.call('SMEMBERS', 'cc:urooms:' .. key)}
    end
    if mode == 'account' then return {'auth'} end
    return {'taken'}
  end
  sign_out(key, u, 'disconnected', ts, ttl)
end
local outcome, keep, digest = 'fresh', '', nd
local parked = redis.call('GET', 'cc:session:' .. key)
if parked then
  local s = cjson.decode(parked)
  if hd ~= '' and hd == s.d then
    outcome, digest, keep = 'resume', hd, s.c
  elseif mode == 'account' then
    return {'auth'}
  elseif mode ~= 'proven' and ts - tonumber(s.p) < grace then
    return {'reserved'}
  end
elseif mode == 'account' then
  return {'auth'}
end
local color = pick_color(rooms, palette, keep)
redis.call('HSET', 'cc:users', key, cjson.encode({n=name, c=color, node=node, d=digest}))
redis.call('SET', 'cc:session:' .. key, cjson.encode({d=digest, c=color, a=1, p=ts}))
redis.call('DEL', 'cc:urooms:' .. key)
for _, room in ipairs(rooms) do redis.call('SADD', 'cc:urooms:' .. key, room) end
count_color(rooms, color, 1)
event({'k', 'in', 'node', node, 'key', key, 'n', name, 'c', color, 'rooms', ARGV[12]})
return {outcome, color, digest, ''}
"""

# ARGV: old key, new key, name, node, digest, owner (1/0), ts, grace, ttl ms
_RENAME = """
local old, new, name, node, digest = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ts, grace, ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local u = owned(old, node)
if not u then return {'gone'} end
if new ~= old then
  local other = redis.call('HGET', 'cc:users', new)
  if other then
    local o = cjson.decode(other)
    if alive(o.node) then return {'taken'} end
    sign_out(new, o, 'disconnected', ts, ttl)
  end
  local parked = redis.call('GET', 'cc:session:' .. new)
  if parked then
    local s = cjson.decode(parked)
    if ARGV[6] ~= '1' and s.d ~= digest and ts - tonumber(s.p) < grace then
      return {'reserved'}
    end
  end
  redis.call('HDEL', 'cc:users', old)
  redis.call('DEL', 'cc:session:' .. old)
  if redis.call('EXISTS', 'cc:urooms:' .. old) == 1 then
    redis.call('RENAME', 'cc:urooms:' .. old, 'cc:urooms:' .. new)
  else
    redis.call('DEL', 'cc:urooms:' .. new)
  end
end
u.n = name
redis.call('HSET', 'cc:users', new, cjson.encode(u))
redis.call('SET', 'cc:session:' .. new, cjson.encode({d=u.d, c=u.c, a=1, p=ts}))
event({'k', 'nick', 'node', node, 'key', old, 'n', name, 'c', u.c,
       's', tops(redis.call('SMEMBERS', 'cc:urooms:' .. new))})
return {'ok'}
"""

# ARGV: key, room, node, ts. A room the user's claim joined already: nothing to do.
_JOIN = """
local u = owned(ARGV[1], ARGV[3])
if not u then return 0 end
if redis.call('SADD', 'cc:urooms:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', 'cc:rcolors:' .. ARGV[2], u.c, 1)
event({'k', 'join', 'node', ARGV[3], 'key', ARGV[1], 'room', ARGV[2], 'ts', ARGV[4]})
return 1
"""

# ARGV: key, room, node, reason
_PART = """
local u = owned(ARGV[1], ARGV[3])
if not u then return 0 end
if redis.call('SREM', 'cc:urooms:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', 'cc:rcolors:' .. ARGV[2], u.c, -1)
event({'k', 'part', 'node', ARGV[3], 'key', ARGV[1], 'room', ARGV[2], 'r', ARGV[4],
       's', tops({ARGV[2]})})
return 1
"""

# ARGV: key, node, digest ('' for any), reason, ts, ttl ms
_SIGN_OUT = """
local u = owned(ARGV[1], ARGV[2])
if not u or (ARGV[3] ~= '' and u.d ~= ARGV[3]) then return 0 end
sign_out(ARGV[1], u, ARGV[4], tonumber(ARGV[5]), ARGV[6])
return 1
"""

# ARGV: room, from, color, text, ts, id, action, session, window, ttl s
_PUBLISH = """
local room, id = ARGV[1], ARGV[6]
local stream = 'cc:room:' .. room
local ids = 'cc:ids:' .. ARGV[8] .. ':' .. room
if id ~= '' then
  local seq = redis.call('ZSCORE', ids, id)
  if seq then
    local found = redis.call('XRANGE', stream, '0-' .. seq, '0-' .. seq)
    if #found > 0 then return {1, found[1][1], found[1][2]} end
  end
end
-- The event stream's end now: a node shows this message only after the
-- events before it (its sender's sign-in, join or nick), as one server would.
local e = redis.call('GET', 'cc:events:last') or '0-0'
local sid = redis.call('XADD', stream, '0-*', 'f', ARGV[2], 'c', ARGV[3], 't', ARGV[4],
                       'ts', ARGV[5], 'i', id, 'a', ARGV[7], 's', ARGV[8], 'e', e)
local seq = string.sub(sid, 3)
if id ~= '' then
  local window = tonumber(ARGV[9])
  redis.call('ZADD', ids, seq, id)
  if redis.call('ZCARD', ids) > window then
    redis.call('ZREMRANGEBYRANK', ids, 0, -window - 1)
  end
  redis.call('EXPIRE', ids, ARGV[10])
end
redis.call('PUBLISH', 'cc:wake', 'r' .. room .. ' ' .. seq)
return {0, sid, e}
"""

# ARGV: session, whisper id, to key, node, from, color, text, ts, action, window, ttl s
_WHISPER = """
local ids, wid = 'cc:wids:' .. ARGV[1], ARGV[2]
if wid ~= '' then
  local prev = redis.call('HGET', ids, wid)
  if prev then
    local p = cjson.decode(prev)
    return {'again', p.to, tostring(p.ts)}
  end
end
local held = redis.call('HGET', 'cc:users', ARGV[3])
if not held then return {'gone'} end
local t = cjson.decode(held)
if not alive(t.node) then return {'gone'} end
if t.node ~= ARGV[4] then
  event({'k', 'wh', 'node', ARGV[4], 'key', ARGV[3], 'to', t.node, 'n', t.n, 'f', ARGV[5],
         'c', ARGV[6], 't', ARGV[7], 'ts', ARGV[8], 'i', wid, 'a', ARGV[9]})
end
if wid ~= '' then
  local count = 'cc:widn:' .. ARGV[1]
  local n = redis.call('INCR', count)
  redis.call('HSET', ids, wid, cjson.encode({to=t.n, ts=tonumber(ARGV[8]), n=n}))
  local window = tonumber(ARGV[10])
  if redis.call('HLEN', ids) > 2 * window then
    local all = redis.call('HGETALL', ids)
    for i = 1, #all, 2 do
      if cjson.decode(all[i + 1]).n <= n - window then redis.call('HDEL', ids, all[i]) end
    end
  end
  redis.call('EXPIRE', ids, ARGV[11])
  redis.call('EXPIRE', count, ARGV[11])
end
return {'new', t.node, t.n}
"""

# ARGV: room, page, seq, limit, up to (negative: the newest)
_PAGE = """
local stream = 'cc:room:' .. ARGV[1]
if redis.call('EXISTS', stream) == 0 then return {0, {}} end
local info = redis.call('XINFO', 'STREAM', stream)
local top = 0
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then top = tonumber(string.sub(info[i + 1], 3)) end
end
local up = tonumber(ARGV[5])
if up < 0 or up > top then up = top end
local page, seq, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local found = {}
if page == 'latest' then
  if up > 0 then found = redis.call('XREVRANGE', stream, '0-' .. up, '-', 'COUNT', limit) end
elseif page == 'resume' then
  if seq < up then
    found = redis.call('XREVRANGE', stream, '0-' .. up, '(0-' .. seq, 'COUNT', limit + 1)
  end
elseif page == 'after' then
  if seq < up then
    found = redis.call('XRANGE', stream, '(0-' .. seq, '0-' .. up, 'COUNT', limit)
  end
else
  local hi = math.min(seq - 1, up)
  if hi >= 1 then found = redis.call('XREVRANGE', stream, '0-' .. hi, '-', 'COUNT', limit) end
end
return {top, found}
"""

# ARGV: last event id seen, count. Returns {1 if that event was trimmed away
# (some after it may be gone too: the node must resync), the entries after it}.
_EVENTS = """
if redis.call('EXISTS', 'cc:events') == 0 then
  if ARGV[1] == '0-0' then return {0, {}} end
  return {1, {}}  -- gone with every event the node had read: a gap as well
end
local gap = 0
if ARGV[1] ~= '0-0' and #redis.call('XRANGE', 'cc:events', ARGV[1], ARGV[1]) == 0 then
  gap = 1
end
return {gap, redis.call('XRANGE', 'cc:events', '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
"""

_SNAPSHOT = """
local last = '0-0'
if redis.call('EXISTS', 'cc:events') == 1 then
  local info = redis.call('XINFO', 'STREAM', 'cc:events')
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
local users = redis.call('HGETALL', 'cc:users')
local out = {}
for i = 1, #users, 2 do
  table.insert(out, {users[i], users[i + 1], redis.call('SMEMBERS', 'cc:urooms:' .. users[i])})
end
return {last, out, redis.call('HGETALL', 'cc:accounts')}
"""

# ARGV: this node, ts, ttl ms, '1' to sign out this node's own users (at start)
_REAP = """
local dead = {}
if ARGV[4] == '1' then
  dead[ARGV[1]] = true
else
  for _, n in ipairs(redis.call('SMEMBERS', 'cc:nodes')) do
    if n ~= ARGV[1] and not alive(n) then dead[n] = true end
  end
end
if next(dead) == nil then return 0 end
local users = redis.call('HGETALL', 'cc:users')
local count = 0
for i = 1, #users, 2 do
  local u = cjson.decode(users[i + 1])
  if dead[u.node] then
    sign_out(users[i], u, 'disconnected', tonumber(ARGV[2]), ARGV[3])
    count = count + 1
  end
end
for n, _ in pairs(dead) do redis.call('SREM', 'cc:nodes', n) end
return count
"""

# ARGV: this node, ttl ms. Returns 0 if the cluster did not count it as a node.
_BEAT = """
local known = redis.call('SISMEMBER', 'cc:nodes', ARGV[1])
redis.call('SET', 'cc:node:' .. ARGV[1], '1', 'PX', ARGV[2])
redis.call('SADD', 'cc:nodes', ARGV[1])
return known
"""

# ARGV: this node
_LEAVE = """
redis.call('DEL', 'cc:node:' .. ARGV[1])
redis.call('SREM', 'cc:nodes', ARGV[1])
return 1
"""

# ARGV: key, account JSON, node
_ACCOUNT = """
redis.call('HSET', 'cc:accounts', ARGV[1], ARGV[2])
event({'k', 'acct', 'node', ARGV[3], 'key', ARGV[1], 'v', ARGV[2]})
return 1
"""

# ARGV: cutoff ts. Deletes older messages; the numbering survives (the streams stay).
_PRUNE = """
local cutoff = tonumber(ARGV[1])
local removed = 0
for _, stream in ipairs(redis.call('KEYS', 'cc:room:*')) do
  local cut = nil
  local start = '-'
  while true do
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', 100)
    if #batch == 0 then break end
    local found = false
    for _, e in ipairs(batch) do
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'ts' and tonumber(f[i + 1]) >= cutoff then found = true end
      end
      if found then cut = e[1] break end
    end
    if found then break end
    start = '(' .. batch[#batch][1]
    cut = 'all'
  end
  if cut == 'all' then
    removed = removed + redis.call('XTRIM', stream, 'MAXLEN', 0)
  elseif cut then
    removed = removed + redis.call('XTRIM', stream, 'MINID', cut)
  end
end
return removed
"""

#: Each script by name, with the shared helpers in front.
SCRIPTS: dict[str, str] = {
    name: _COMMON + body
    for name, body in {
        "claim": _CLAIM, "rename": _RENAME, "join": _JOIN, "part": _PART,
        "sign_out": _SIGN_OUT, "publish": _PUBLISH, "whisper": _WHISPER, "page": _PAGE,
        "events": _EVENTS, "snapshot": _SNAPSHOT, "reap": _REAP, "beat": _BEAT,
        "leave": _LEAVE, "account": _ACCOUNT, "prune": _PRUNE,
    }.items()
}
