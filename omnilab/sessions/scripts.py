"""Lua scripts of the task queue (each runs atomically inside Redis). See :mod:`omnilab.sessions.queue`."""

from __future__ import annotations

__all__ = ["ENQUEUE", "DEQUEUE", "FINISH", "FAIL", "EXTEND", "RELEASE"]

# Scripts build task keys from a prefix passed in ARGV (single-server Redis; not for Cluster).
# Score = (10 - priority) * 2^36 + sequence: higher priority first, FIFO within a priority.
ENQUEUE = """
local added = 0
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
for i = 3, #ARGV, 4 do
  local id, prio, payload, blocked = ARGV[i], tonumber(ARGV[i+1]), ARGV[i+2], ARGV[i+3]
  local tk = ARGV[1] .. id
  if redis.call('EXISTS', tk) == 0 then
    local score = (10 - prio) * 68719476736 + redis.call('INCR', KEYS[5])
    redis.call('HSET', tk, 'queue', ARGV[2], 'score', score, 'attempts', 0, 'payload', payload,
               'token', '', 'enqueued_ms', now_ms)
    redis.call('ZADD', KEYS[3], now_ms, id)
    if blocked == '1' then
      redis.call('SADD', KEYS[2], id)
    else
      redis.call('ZADD', KEYS[1], score, id)
      redis.call('LPUSH', KEYS[4], '1')
      added = added + 1
    end
  end
end
redis.call('LTRIM', KEYS[4], 0, 999)
redis.call('SADD', KEYS[6], ARGV[2])
return added
"""

# KEYS: ready, processing, dead, ages. ARGV: task prefix, lease ms, worker, token base, max attempts, count
DEQUEUE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local requeued, dead, out = {}, {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  local tk = ARGV[1] .. id
  local score = redis.call('HGET', tk, 'score')
  if score then
    if tonumber(redis.call('HGET', tk, 'attempts') or '0') >= tonumber(ARGV[5]) then
      redis.call('ZADD', KEYS[3], now, id)
      redis.call('ZREM', KEYS[4], id)
      redis.call('HSET', tk, 'token', '', 'error', 'lease expired')
      table.insert(dead, id)
    else
      redis.call('ZADD', KEYS[1], score, id)
      redis.call('HSET', tk, 'token', '')
      table.insert(requeued, id)
    end
  end
end
local i = 0
while i < tonumber(ARGV[6]) do
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then break end
  local id = popped[1]
  local tk = ARGV[1] .. id
  if redis.call('EXISTS', tk) == 1 then
    i = i + 1
    local attempts = redis.call('HINCRBY', tk, 'attempts', 1)
    local token = ARGV[4] .. ':' .. i
    local deadline = now + tonumber(ARGV[2])
    redis.call('HSET', tk, 'token', token, 'worker', ARGV[3], 'leased_ms', now)
    redis.call('ZADD', KEYS[2], deadline, id)
    table.insert(out, {id, attempts, token, deadline, redis.call('HGET', tk, 'payload')})
  end
end
return {out, requeued, dead}
"""

# KEYS: ready, processing, ages. ARGV: task prefix, dependents prefix, ids... — the tasks are finished
# (SQL said so). Returns the ids of tasks that were waiting on them.
FINISH = """
local dependents = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('DEL', ARGV[1] .. id)
  for _, d in ipairs(redis.call('SMEMBERS', ARGV[2] .. id)) do table.insert(dependents, d) end
  redis.call('DEL', ARGV[2] .. id)
end
return dependents
"""

# KEYS: ready, processing, dead, ages, notify. ARGV: task prefix, id, token, 'retry'|'dead', error
FAIL = """
local tk = ARGV[1] .. ARGV[2]
if redis.call('HGET', tk, 'token') ~= ARGV[3] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HSET', tk, 'token', '', 'error', ARGV[5])
if ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[1], redis.call('HGET', tk, 'score'), ARGV[2])
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 999)
else
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
return 1
"""

# KEYS: processing. ARGV: task prefix, id, token, lease ms
EXTEND = """
if redis.call('HGET', ARGV[1] .. ARGV[2], 'token') ~= ARGV[3] then return 0 end
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[2])
return deadline
"""

# KEYS: waiting, ready, notify of one queue. ARGV: task prefix, queue name, ids... Move those tasks of that queue
# whose dependencies are now complete from waiting to ready.
RELEASE = """
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local tk = ARGV[1] .. id
  if redis.call('HGET', tk, 'queue') == ARGV[2] and redis.call('SREM', KEYS[1], id) == 1 then
    redis.call('ZADD', KEYS[2], redis.call('HGET', tk, 'score'), id)
    redis.call('LPUSH', KEYS[3], '1')
    n = n + 1
  end
end
return n
"""
