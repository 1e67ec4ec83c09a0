"""The Redis store's Lua scripts: each runs atomically on the server, in one round trip.

Every script receives the key prefix as ``ARGV[1]`` and, but for :data:`SAVE`, starts with
:data:`LIBRARY`, the key-naming and session helpers (they mirror
:mod:`sessionward.stores._redis_layout`).

:data:`SAVE`, :data:`END` (without inline indexing), :data:`WRITE`, :data:`CLAIM`, :data:`ADMIT`,
:data:`UNINDEX`, :data:`PRUNE` and :data:`COUNT_HIT` touch only their declared keys, which share
one hash tag (a session with its handle key; a user's two index keys; a counter is one
key): they run in cluster mode. :data:`LOGIN`,
:data:`END` with inline indexing and :data:`END_USER` reach keys they compute, across
slots: they run only against a standalone (or Sentinel-managed) Redis, where one script
is one atomic step.
"""

from __future__ import annotations

from sessionward.stores._redis_layout import CHUNK_BYTES, TTL_SLACK_MS

# Lua's unpack() stops near 8,000 values: a command is sent in batches of this many
# arguments, so no hash is too big to write (a session's data, a huge user name).
WRITE_IN_BATCHES = """
local function batched(command, key, flat, first, last)
  for i = first, last, 1000 do
    redis.call(command, key, unpack(flat, i, math.min(i + 999, last)))
  end
end
"""

LIBRARY = (
    WRITE_IN_BATCHES
    + f"""
local P = ARGV[1]
local SLACK = {TTL_SLACK_MS}
local CHUNK = {CHUNK_BYTES}
local function skey(k) return P .. 's:{{' .. string.sub(k, 1, 16) .. '}}' .. k end
local function hkey(k) return P .. 'h:{{' .. string.sub(k, 1, 16) .. '}}' end
local function gkey(k) return P .. 'g:{{' .. string.sub(k, 1, 16) .. '}}' .. k end

-- Keep a renewal's sealed successor beside the tombstone, for its grace period only.
local function seal(k, sealed, ttl)
  if sealed ~= '' then redis.call('SET', gkey(k), sealed, 'PX', ttl) end
end
local function ukeys(tag) return P .. 'u:{{' .. tag .. '}}', P .. 'ux:{{' .. tag .. '}}' end

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end

-- A session of the user tagged tag is live while its hash has an expiry, no tombstone,
-- the expiry ahead and that user's tag ('u'): another user's session, or nobody's, in
-- this user's index (a hand edit, a buggy migration) is not this user's to count.
local function is_live(s, now, tag)
  local f = redis.pcall('HMGET', s, 'e', 't', 'u')
  if f.err then return false end
  local e = tonumber(f[1])
  return e ~= nil and f[2] == false and e > now and f[3] == tag
end

-- Whether s holds a session that is not the user's (tagged tag): one whose 'u' names
-- another user, or nobody. A user's index may list it all the same (a hand edit, a buggy
-- migration): a user-wide operation must then not end it.
local function elsewhere(s, tag)
  if redis.call('TYPE', s)['ok'] ~= 'hash' or redis.call('HEXISTS', s, 't') == 1 then return false end
  return redis.call('HGET', s, 'u') ~= tag
end

-- A compact tombstone (its first byte 1) goes in fields of at most CHUNK bytes, t, t1,
-- t2..., so that Redis keeps the hash a listpack; JSON (sessionward 0.1's) stays whole in t.
local function tomb_fields(tomb)
  if string.byte(tomb, 1) ~= 1 then return {{'t', tomb}} end
  local fields = {{'t', string.sub(tomb, 1, CHUNK)}}
  local n = 1
  for i = CHUNK + 1, #tomb, CHUNK do
    fields[#fields + 1] = 't' .. n
    fields[#fields + 1] = string.sub(tomb, i, i + CHUNK - 1)
    n = n + 1
  end
  return fields
end

-- Whether a tombstone names a successor (a move). A compact one holds it first: after the
-- mark and the array's header, byte 3 is 0xc0 (MessagePack's nil) when there is none.
local function names_successor(tomb)
  if string.byte(tomb, 1) == 1 then return string.byte(tomb, 3) ~= 0xc0 end
  return string.find(tomb, '"successor_key":"', 1, true) ~= nil
end

-- Turn the session under s into a tombstone; return its previous fields when it was live.
-- An existing tombstone stays (the first reason wins); a non-hash value is corrupt and goes.
local function end_session(s, h, key, tomb, tomb_e, ttl, only_existing, discard)
  local kind = redis.call('TYPE', s)['ok']
  -- The first reason a session ended is the one kept, unless the caller found what is
  -- there corrupt (discard): then it goes, whatever it holds.
  if kind == 'hash' and not discard and redis.call('HEXISTS', s, 't') == 1 then return nil end
  if kind ~= 'hash' and kind ~= 'none' then
    redis.call('DEL', s)
    kind = 'none'
  end
  if kind == 'none' and only_existing then return nil end
  local prev = nil
  if kind == 'hash' then
    prev = redis.call('HGETALL', s)
    redis.call('DEL', s)
  end
  if redis.pcall('GET', h) == key then redis.call('DEL', h) end
  local fields = tomb_fields(tomb)
  fields[#fields + 1] = 'e'
  fields[#fields + 1] = tomb_e
  batched('HSET', s, fields, 1, #fields)
  redis.call('PEXPIRE', s, ttl)
  -- A move (renewal, rotation) keeps the handle: revoking it still reaches the successor.
  if names_successor(tomb) then redis.call('SET', h, key, 'PX', ttl) end
  return prev
end

local function unindex(tag, key)
  if not tag then return end
  local u, ux = ukeys(tag)
  redis.call('ZREM', u, key)
  redis.call('ZREM', ux, key)
end

-- The precondition of a move: the session under key k (hash s) is a live record (not a
-- tombstone) at version v. Returns nil when it holds, else what s holds (flat fields,
-- empty when nothing), with a renewal's sealed successor as a field 'g' while it lasts.
local function unexpected(k, s, v)
  if redis.call('TYPE', s)['ok'] ~= 'hash' then return {{}} end
  if redis.call('HEXISTS', s, 't') == 0 and redis.call('HEXISTS', s, 'm') == 1
    and (redis.call('HGET', s, 'v') or '0') == v then
    return nil
  end
  local found = redis.call('HGETALL', s)
  local sealed = redis.call('GET', gkey(k))
  if sealed then
    found[#found + 1] = 'g'
    found[#found + 1] = sealed
  end
  return found
end

-- Write a live session over whatever s held; return the user tag it had, if any.
local function write_session(s, h, key, ttl, fields)
  local prev_tag = false
  if redis.call('TYPE', s)['ok'] == 'hash' then prev_tag = redis.call('HGET', s, 'u') end
  redis.call('DEL', s)
  batched('HSET', s, fields, 1, #fields)
  redis.call('PEXPIRE', s, ttl)
  redis.call('SET', h, key, 'PX', ttl)
  return prev_tag
end

-- Register key in a user's index, enforcing the limit (maxn > 0) over the other members
-- (not in skip), after dropping the dead and those past their deadline. Returns the
-- members displaced (oldest first), or nil when prevent and the user is at the limit.
local function admit(u, ux, now, maxn, prevent, key, created, deadline, skip, dead)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', ux, '-inf', now)) do dead[m] = true end
  local others = {{}}
  for _, m in ipairs(redis.call('ZRANGE', u, 0, -1)) do
    if m ~= key then
      if dead[m] then
        redis.call('ZREM', u, m)
        redis.call('ZREM', ux, m)
      elseif not skip[m] then
        others[#others + 1] = m
      end
    end
  end
  local victims = {{}}
  if maxn > 0 and #others + 1 > maxn then
    if prevent then return nil end
    for i = 1, #others + 1 - maxn do
      victims[i] = others[i]
      redis.call('ZREM', u, others[i])
      redis.call('ZREM', ux, others[i])
    end
  end
  redis.call('ZADD', u, created, key)
  redis.call('ZADD', ux, deadline, key)
  -- The index lives as long as its last session can: no orphan index outlives its users.
  local last = redis.call('ZRANGE', ux, -1, -1, 'WITHSCORES')
  local ttl = math.max(1, math.ceil((tonumber(last[2]) - tonumber(now)) * 1000)) + SLACK
  redis.call('PEXPIRE', u, string.format('%d', ttl))
  redis.call('PEXPIRE', ux, string.format('%d', ttl))
  return victims
end
"""
)

SAVE = (
    WRITE_IN_BATCHES
    + """
-- The hot write path: it needs none of LIBRARY's other helpers, so Redis does not define
-- them on every call. KEYS: session, handle. ARGV: P, n meta (0 when unchanged), expires,
-- retain until, ttl, bump version (0/1), n set, then n meta pairs (metadata fields 'm',
-- 'm1'...), n set pairs (data fields) and the data fields to delete. With the metadata
-- unchanged only the data fields move (expiry and TTL stay). Writes only into a live
-- session: a concurrent logout left a tombstone, never resurrected.
if redis.call('HEXISTS', KEYS[1], 'm') == 0 then return 0 end
local nmeta, nset = tonumber(ARGV[2]), tonumber(ARGV[7])
local first_delete = 8 + 2 * (nmeta + nset)
if nmeta > 0 and string.byte(ARGV[9], 1) == 1 and string.byte(redis.call('HGET', KEYS[1], 'm'), 1) == 123 then
  -- Compact metadata over JSON (written by an earlier version): the hash is written anew,
  -- as Redis never turns a hashtable back into the listpack it now fits in.
  local kept, all = {}, redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) ~= 'm' then
      kept[#kept + 1] = all[i]
      kept[#kept + 1] = all[i + 1]
    end
  end
  redis.call('DEL', KEYS[1])
  batched('HSET', KEYS[1], kept, 1, #kept)
end
local fields = {}
for i = 8, first_delete - 1 do fields[#fields + 1] = ARGV[i] end
if nmeta > 0 then
  fields[#fields + 1] = 'e'
  fields[#fields + 1] = ARGV[3]
  fields[#fields + 1] = 'r'
  fields[#fields + 1] = ARGV[4]
end
batched('HSET', KEYS[1], fields, 1, #fields)
batched('HDEL', KEYS[1], ARGV, first_delete, #ARGV)
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[1], 'v', 1) end
if nmeta > 0 then
  -- Metadata fields past the new last one belonged to longer metadata: they go. 'a' and
  -- 'x' mirrored the idle clock for an earlier load-and-touch script: 'm' holds it now.
  local i = nmeta
  while redis.call('HDEL', KEYS[1], 'm' .. i) == 1 do i = i + 1 end
  redis.call('HDEL', KEYS[1], 'a', 'x')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1
"""
)

END = (
    LIBRARY
    + """
-- KEYS: session, handle. ARGV: P, key, tombstone, its expiry, ttl, index inline (0/1), only existing (0/1),
-- sealed successor or '', its ttl, discard a corrupt entry (0/1), the user tag it must have or ''
-- (a user-wide end: another user's session is left alone).
if ARGV[11] ~= '' and elsewhere(KEYS[1], ARGV[11]) then return false end
local prev = end_session(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7] == '1', ARGV[10] == '1')
seal(ARGV[2], ARGV[8], ARGV[9])
if prev and ARGV[6] == '1' then unindex(field(prev, 'u'), ARGV[2]) end
return prev or false
"""
)

WRITE = (
    LIBRARY
    + """
-- KEYS: session, handle. ARGV: P, key, ttl, fields...
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
return write_session(KEYS[1], KEYS[2], ARGV[2], ARGV[3], fields)
"""
)

ADMIT = (
    LIBRARY
    + """
-- KEYS: user index by creation, by deadline. ARGV: P, now, max, prevent, key, created,
-- deadline, n skip, skip..., dead... Returns {1, displaced} or {0} (refused).
local nskip = tonumber(ARGV[8])
local skip, dead = {}, {}
for i = 9, 8 + nskip do skip[ARGV[i]] = true end
for i = 9 + nskip, #ARGV do dead[ARGV[i]] = true end
local victims = admit(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1',
  ARGV[5], ARGV[6], ARGV[7], skip, dead)
if not victims then return {0} end
return {1, victims}
"""
)

UNINDEX = (
    LIBRARY
    + """
-- KEYS: user index by creation, by deadline. ARGV: P, members...
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return n
"""
)

PRUNE = (
    LIBRARY
    + """
-- KEYS: user index by creation, by deadline. ARGV: P, now, at most. Drops entries past their deadline.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
return #gone
"""
)

LOGIN = (
    LIBRARY
    + """
-- Standalone only: establish in one atomic step. KEYS: session, handle.
-- ARGV: P, key, ttl, user tag or '', now, max (0: none), prevent, created, deadline,
-- displaced tombstone, its expiry, its ttl, retire key or '', retire tombstone, its expiry,
-- its ttl, expected key or '', expected version, sealed successor or '', its ttl,
-- fields... Returns {0} (refused),
-- {2, fields} (the precondition failed: what the expected key holds; nothing written) or
-- {1, key1, fields1, key2, fields2...} (displaced).
local key, tag, now, retire = ARGV[2], ARGV[4], ARGV[5], ARGV[13]
if ARGV[17] ~= '' then
  local found = unexpected(ARGV[17], skey(ARGV[17]), ARGV[18])
  if found then return {2, found} end
end
local victims = {}
if tag ~= '' then
  local u, ux = ukeys(tag)
  local skip, dead = {}, {}
  if retire ~= '' then skip[retire] = true end
  local maxn = tonumber(ARGV[6])
  if maxn > 0 then
    for _, m in ipairs(redis.call('ZRANGE', u, 0, -1)) do
      -- Another user's session, indexed here by mistake, is neither counted nor displaced:
      -- it leaves this index like the dead.
      if m ~= key and not skip[m] and not is_live(skey(m), tonumber(now), tag) then dead[m] = true end
    end
  end
  victims = admit(u, ux, now, maxn, ARGV[7] == '1', key, ARGV[8], ARGV[9], skip, dead)
  if not victims then return {0} end
end
if retire ~= '' and retire ~= key then
  local prev = end_session(skey(retire), hkey(retire), retire, ARGV[14], ARGV[15], ARGV[16], false)
  if prev then unindex(field(prev, 'u'), retire) end
  seal(retire, ARGV[19], ARGV[20])
end
local fields = {}
for i = 21, #ARGV do fields[#fields + 1] = ARGV[i] end
local prev_tag = write_session(KEYS[1], KEYS[2], key, ARGV[3], fields)
if prev_tag and prev_tag ~= tag then unindex(prev_tag, key) end
local out = {1}
for _, v in ipairs(victims) do
  local prev = end_session(skey(v), hkey(v), v, ARGV[10], ARGV[11], ARGV[12], true)
  if prev then
    out[#out + 1] = v
    out[#out + 1] = prev
  end
end
return out
"""
)

CLAIM = (
    LIBRARY
    + """
-- Cluster: the precondition of a move and its first write on the old key's slot, in one
-- step. KEYS: session, handle (of the expected key). ARGV: P, key, expected version, then
-- either 'end', tombstone, its expiry, its ttl, sealed successor or '', its ttl (retire
-- the key) or 'write', ttl, fields... (a login that keeps its ID). Returns {0, fields}
-- (the precondition failed) or {1, prev}.
local found = unexpected(ARGV[2], KEYS[1], ARGV[3])
if found then return {0, found} end
if ARGV[4] == 'end' then
  local prev = end_session(KEYS[1], KEYS[2], ARGV[2], ARGV[5], ARGV[6], ARGV[7], false) or {}
  seal(ARGV[2], ARGV[8], ARGV[9])
  return {1, prev}
end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
write_session(KEYS[1], KEYS[2], ARGV[2], ARGV[5], fields)
return {1, {}}
"""
)

END_USER = (
    LIBRARY
    + """
-- Standalone only. KEYS: user index by creation, by deadline. ARGV: P, keep key, tombstone,
-- its expiry, its ttl, user tag. Returns {key1, fields1, ...} of the sessions ended.
-- Another user's session, indexed here by mistake, only leaves the index.
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    local prev = nil
    if not elsewhere(skey(m), ARGV[6]) then
      prev = end_session(skey(m), hkey(m), m, ARGV[3], ARGV[4], ARGV[5], true)
    end
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZREM', KEYS[2], m)
    if prev then
      out[#out + 1] = m
      out[#out + 1] = prev
    end
  end
end
return out
"""
)

COUNT_HIT = """
-- One hit on a fixed-window counter; needs none of LIBRARY. KEYS: counter. ARGV: now,
-- the end of a window that starts now, its TTL in ms. Returns {hits, window end}: the end
-- as the text it was given (a Lua number would come back truncated to an integer).
-- Anything but a counter at the key (not a hash, a field that is not a number) is
-- corrupt: a new window replaces it.
local e = redis.pcall('HGET', KEYS[1], 'e')
local ends = (type(e) == 'string') and tonumber(e) or nil
if ends ~= nil and ends > tonumber(ARGV[1]) then
  local n = redis.pcall('HINCRBY', KEYS[1], 'n', 1)
  if type(n) == 'number' then return {n, e} end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'n', 1, 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ARGV[2]}
"""

SCRIPTS = (SAVE, END, WRITE, CLAIM, ADMIT, UNINDEX, PRUNE, LOGIN, END_USER, COUNT_HIT)
"""Every script, for loading them all at set-up."""
