/**
 * The Lua scripts that gather the machines of multi-machine jobs across the
 * runners of a shared run (store.ts GatherPrimitives, run/shared-group.ts).
 * Each is one atomic step on the Redis server, so two runners can never both
 * open a gathering on a system, take the last seat twice, or see a seat that
 * a lost runner's lease no longer backs. ARGV[1] is the run's key prefix.
 *
 * Keys under the prefix, beside those of redis-scripts.ts:
 *   machines          hash: "<runner>\n<backend:system>" -> that runner's workers of the system still going
 *   gather:<system>   the id of the gathering open on the system (at most one in the run)
 *   group:<id>        hash: job (index), count, state (gathering|running|off|dissolved), owner (runner
 *                     holding the job's claim), system, reason, seats (JSON array of {seat, runner, host, label},
 *                     the owner's first: instance numbers are positions once running)
 *   group:<id>:meet:<point>   hash: instance -> its report at a meeting between the task's scripts
 *   group:<id>:log    list of JSON records (StoredEntry) of followers' parts, for the owner to record
 *   groupof:<index>   the id of the group opened for the job's current claim
 * Every key expires with the run (expireMs after its last write).
 */
import { HELD } from './redis-scripts.js';

const ALIVE = `
local function alive(P, runner) return redis.call('EXISTS', P .. 'lease:' .. runner) == 1 end
`;

// Brings a gathering up to date and returns its state: seats of lost runners drop out,
// a lost owner dissolves it (REQUEUE hands its claim back), too few workers left in the
// run call it off. Whatever stops gathering frees the system for another.
const CHECK = `${ALIVE}
local function workers(P, system)
  local all = redis.call('HGETALL', P .. 'machines')
  local n = 0
  for i = 1, #all, 2 do
    local f = all[i]
    local sep = string.find(f, '\\n', 1, true)
    if string.sub(f, sep + 1) == system and alive(P, string.sub(f, 1, sep - 1)) then n = n + tonumber(all[i + 1]) end
  end
  return n
end
local function check(P, id)
  local g = P .. 'group:' .. id
  local state = redis.call('HGET', g, 'state')
  if state ~= 'gathering' then return state or 'dissolved' end
  local system = redis.call('HGET', g, 'system')
  local function close(to, why)
    redis.call('HSET', g, 'state', to, 'reason', why)
    if redis.call('GET', P .. 'gather:' .. system) == id then redis.call('DEL', P .. 'gather:' .. system) end
    return to
  end
  if not alive(P, redis.call('HGET', g, 'owner')) then return close('dissolved', 'the runner that took it was lost') end
  local seats = cjson.decode(redis.call('HGET', g, 'seats'))
  local kept = {}
  for _, s in ipairs(seats) do if alive(P, s.runner) then table.insert(kept, s) end end
  if #kept ~= #seats then redis.call('HSET', g, 'seats', cjson.encode(kept)) end
  local n = workers(P, system)
  if n < tonumber(redis.call('HGET', g, 'count')) then
    return close('off', 'only ' .. n .. ' worker' .. (n == 1 and '' or 's') .. ' of ' .. system .. ' left in the shared run to run it')
  end
  return 'gathering'
end
-- {state, reason} or {state, seats JSON, one 1/0 per seat: its runner's lease holds}
local function describe(P, id)
  local g = P .. 'group:' .. id
  if redis.call('EXISTS', g) == 0 then return {'dissolved', 'the gathering is gone from the shared run'} end
  local state = check(P, id)
  if state == 'off' or state == 'dissolved' then return {state, redis.call('HGET', g, 'reason')} end
  local seats = redis.call('HGET', g, 'seats')
  local flags = ''
  for _, s in ipairs(cjson.decode(seats)) do flags = flags .. (alive(P, s.runner) and '1' or '0') end
  return {state, seats, flags}
end
`;

/** ARGV: prefix, expireMs, runner, system, delta. Counts the runner's workers of a system; a gathering that can no longer fill is called off. */
export const GATHER_WORKERS = `${CHECK}
local P, runner, system = ARGV[1], ARGV[3], ARGV[4]
local field = runner .. '\\n' .. system
if redis.call('HINCRBY', P .. 'machines', field, ARGV[5]) <= 0 then redis.call('HDEL', P .. 'machines', field) end
redis.call('PEXPIRE', P .. 'machines', ARGV[2])
local cur = redis.call('GET', P .. 'gather:' .. system)
if cur then check(P, cur) end
return 1
`;

/**
 * ARGV: prefix, expireMs, runner, job index, system, id, count, seat JSON.
 * 'ok' (opened, maybe called off at once: see its status), 'busy' (the system has one), 'lost' (the claim is not ours).
 */
export const GATHER_OPEN = `${CHECK}${HELD}
local P, ms, runner, idx, system, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local cur = redis.call('GET', P .. 'gather:' .. system)
if cur and check(P, cur) == 'gathering' then return 'busy' end
if not held(P, idx, runner) then return 'lost' end
local seat = cjson.decode(ARGV[8])
seat.runner = runner
local g = P .. 'group:' .. id
redis.call('HSET', g, 'job', idx, 'count', ARGV[7], 'state', 'gathering', 'owner', runner, 'system', system, 'reason', '', 'seats', cjson.encode({seat}))
redis.call('PEXPIRE', g, ms)
redis.call('SET', P .. 'gather:' .. system, id, 'PX', ms)
redis.call('SET', P .. 'groupof:' .. idx, id, 'PX', ms)
check(P, id)
return 'ok'
`;

/** ARGV: prefix, expireMs, runner, system, seat JSON. {id, job index, count, owner} or nil when no gathering is open. */
export const GATHER_JOIN = `${CHECK}
local P, ms, runner, system = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('GET', P .. 'gather:' .. system)
if not cur or check(P, cur) ~= 'gathering' then return false end
local g = P .. 'group:' .. cur
local seats = cjson.decode(redis.call('HGET', g, 'seats'))
local seat = cjson.decode(ARGV[5])
seat.runner = runner
table.insert(seats, seat)
redis.call('HSET', g, 'seats', cjson.encode(seats))
local count = tonumber(redis.call('HGET', g, 'count'))
if #seats >= count then
  redis.call('HSET', g, 'state', 'running')
  redis.call('DEL', P .. 'gather:' .. system)
end
redis.call('PEXPIRE', g, ms)
return {cur, redis.call('HGET', g, 'job'), count, redis.call('HGET', g, 'owner')}
`;

/** ARGV: prefix, system. 1 when a gathering is open on the system. */
export const GATHER_IS_OPEN = `${CHECK}
local cur = redis.call('GET', ARGV[1] .. 'gather:' .. ARGV[2])
if cur and check(ARGV[1], cur) == 'gathering' then return 1 end
return 0
`;

/**
 * ARGV: prefix, job indexes... 1 when one of these jobs is claimed by a live
 * runner that has not opened its gathering yet (it is about to).
 */
export const GATHER_OPENING = `${ALIVE}
local P = ARGV[1]
for i = 2, #ARGV do
  local v = redis.call('HGET', P .. 'claims', ARGV[i])
  if v then
    local runner = string.sub(v, 1, string.find(v, '\\n', 1, true) - 1)
    if alive(P, runner) then
      local id = redis.call('GET', P .. 'groupof:' .. ARGV[i])
      if not id or redis.call('HGET', P .. 'group:' .. id, 'owner') ~= runner then return 1 end
    end
  end
end
return 0
`;

/** ARGV: prefix, id. See describe(). */
export const GATHER_STATUS = `${CHECK}
return describe(ARGV[1], ARGV[2])
`;

/** ARGV: prefix, id, seat. Gives up a seat while gathering (the first seat's leaving dissolves it); then as GATHER_STATUS. */
export const GATHER_LEAVE = `${CHECK}
local P, id = ARGV[1], ARGV[2]
local g = P .. 'group:' .. id
if check(P, id) == 'gathering' then
  local seats = cjson.decode(redis.call('HGET', g, 'seats'))
  local kept = {}
  for i, s in ipairs(seats) do
    if s.seat == ARGV[3] and i == 1 then
      redis.call('HSET', g, 'state', 'dissolved', 'reason', 'the runner that took it stopped')
      local system = redis.call('HGET', g, 'system')
      if redis.call('GET', P .. 'gather:' .. system) == id then redis.call('DEL', P .. 'gather:' .. system) end
      return describe(P, id)
    end
    if s.seat ~= ARGV[3] then table.insert(kept, s) end
  end
  redis.call('HSET', g, 'seats', cjson.encode(kept))
end
return describe(P, id)
`;

/**
 * ARGV: prefix, expireMs, id, point, instance ('' for none), report.
 * {reports (instance, JSON, ...), lost (instance, runner, ...)}.
 */
export const GATHER_MEET = `${ALIVE}
local P, ms, id = ARGV[1], ARGV[2], ARGV[3]
local m = P .. 'group:' .. id .. ':meet:' .. ARGV[4]
if ARGV[5] ~= '' then
  redis.call('HSETNX', m, ARGV[5], ARGV[6])
  redis.call('PEXPIRE', m, ms)
end
local seats = cjson.decode(redis.call('HGET', P .. 'group:' .. id, 'seats') or '[]')
local lost = {}
for i, s in ipairs(seats) do
  if not alive(P, s.runner) then
    table.insert(lost, i)
    table.insert(lost, s.runner)
  end
end
return {redis.call('HGETALL', m), lost}
`;

/** ARGV: prefix, expireMs, id, entries... */
export const GATHER_KEEP = `
local l = ARGV[1] .. 'group:' .. ARGV[3] .. ':log'
for i = 4, #ARGV do redis.call('RPUSH', l, ARGV[i]) end
redis.call('PEXPIRE', l, ARGV[2])
return 1
`;

/** ARGV: prefix, id. The group's kept records, taken. */
export const GATHER_TAKE = `
local l = ARGV[1] .. 'group:' .. ARGV[2] .. ':log'
local all = redis.call('LRANGE', l, 0, -1)
redis.call('DEL', l)
return all
`;

/**
 * ARGV: prefix, index, runner, lost runner, now. The claim goes back to the
 * queue marked with the lost runner, or, when it was a retry already, the job
 * is aborted. 1 requeued, 2 aborted, 0 the claim was not ours.
 */
export const GATHER_REQUEUE = `${HELD}
local P, idx, runner = ARGV[1], ARGV[2], ARGV[3]
if not unclaim(P, idx, runner) then return 0 end
redis.call('DEL', P .. 'groupof:' .. idx)
if redis.call('HEXISTS', P .. 'retried', idx) == 1 then
  redis.call('RPUSH', P .. 'log', cjson.encode({kind = 'result', job = tonumber(idx), at = tonumber(ARGV[5]), outcome = 'task-abort',
    why = {kind = 'error', message = 'not run: a runner of its group was lost, in its retry too'}}))
  return 2
end
redis.call('HSET', P .. 'retried', idx, ARGV[4])
redis.call('SETBIT', P .. 'pending', idx, 1)
return 1
`;

export const GATHER_SCRIPTS = {
  gatherWorkers: GATHER_WORKERS, gatherOpen: GATHER_OPEN, gatherJoin: GATHER_JOIN, gatherIsOpen: GATHER_IS_OPEN, gatherOpening: GATHER_OPENING,
  gatherStatus: GATHER_STATUS, gatherLeave: GATHER_LEAVE, gatherMeet: GATHER_MEET, gatherKeep: GATHER_KEEP,
  gatherTake: GATHER_TAKE, gatherRequeue: GATHER_REQUEUE,
} as const;
