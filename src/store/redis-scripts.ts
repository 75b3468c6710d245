/**
 * The Lua scripts that make a shared run's changes atomic on the Redis
 * server (a script runs alone, so a check and the write it guards cannot be
 * split by another runner). ARGV[1] is the run's key prefix
 * `spread:{RUN}:`; the braces keep every key of a run in one cluster slot.
 *
 * Keys under the prefix:
 *   meta      hash: project, content, options, jobs (digest of the names), count, seed, runners, workers
 *   names     JSON array of the job names, to say which job differs
 *   pending   bitmap: bit i set while job i waits for a runner
 *   suites    hash: suite key -> workers inside it (the picking rules read it)
 *   claims    hash: job index -> "<runner>\n<suite key>"
 *   retried   hash: job index -> the lost runner it was taken back from
 *   runners   hash: runner -> order of arrival
 *   lease:<runner>  set with an expiry, renewed by the runner while it is alive
 *   log       list of JSON records (StoredEntry) of what happened to jobs
 *   machines, gather:*, group:*   multi-machine jobs gathered across runners (redis-gather-scripts.ts)
 */

/** Every fixed key of a run, for expiry. */
export const RUN_KEYS = ['meta', 'names', 'pending', 'suites', 'claims', 'retried', 'runners', 'log', 'machines'] as const;

// Refreshes the run's expiry (ARGV[2] in ms): called by every script that writes.
const EXPIRE = `
local function touch(P, ms)
  for _, k in ipairs({${RUN_KEYS.map((k) => `'${k}'`).join(', ')}}) do redis.call('PEXPIRE', P .. k, ms) end
end
`;

// Claims whose runner's lease is gone go back to the queue, once; a job lost twice is aborted.
const REQUEUE = `
local function requeue(P, now)
  local claims = redis.call('HGETALL', P .. 'claims')
  for i = 1, #claims, 2 do
    local idx, v = claims[i], claims[i + 1]
    local sep = string.find(v, '\\n', 1, true)
    local runner, skey = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
    if redis.call('EXISTS', P .. 'lease:' .. runner) == 0 then
      redis.call('HDEL', P .. 'claims', idx)
      redis.call('HINCRBY', P .. 'suites', skey, -1)
      if redis.call('HEXISTS', P .. 'retried', idx) == 1 then
        redis.call('RPUSH', P .. 'log', cjson.encode({kind = 'result', job = tonumber(idx), at = now, outcome = 'task-abort'}))
      else
        redis.call('HSET', P .. 'retried', idx, runner)
        redis.call('SETBIT', P .. 'pending', idx, 1)
      end
    end
  end
end
`;

/**
 * ARGV: prefix, expireMs, runner, leaseMs, project, content, options, jobsDigest,
 * count, seed, workers, names JSON, pending bitmap.
 * Returns {'ok', created, runnerNo, seed} or {'mismatch', field, runValue}.
 */
export const JOIN = `${EXPIRE}
local P, runner = ARGV[1], ARGV[3]
local meta = P .. 'meta'
local created = 0
if redis.call('EXISTS', meta) == 0 then
  redis.call('HSET', meta, 'project', ARGV[5], 'content', ARGV[6], 'options', ARGV[7], 'jobs', ARGV[8],
    'count', ARGV[9], 'seed', ARGV[10], 'runners', 0, 'workers', 0)
  redis.call('SET', P .. 'names', ARGV[12])
  redis.call('SET', P .. 'pending', ARGV[13])
  created = 1
else
  local fields = {'project', 'jobs', 'content', 'options'}
  local mine = {ARGV[5], ARGV[8], ARGV[6], ARGV[7]}
  for i, f in ipairs(fields) do
    local theirs = redis.call('HGET', meta, f)
    if theirs ~= mine[i] then return {'mismatch', f, theirs or ''} end
  end
end
local no = redis.call('HINCRBY', meta, 'runners', 1)
redis.call('HINCRBY', meta, 'workers', ARGV[11])
redis.call('HSET', P .. 'runners', runner, no)
redis.call('SET', P .. 'lease:' .. runner, '1', 'PX', ARGV[4])
touch(P, ARGV[2])
return {'ok', created, no, redis.call('HGET', meta, 'seed')}
`;

/** ARGV: prefix, now. Returns {pending bitmap, suites, claims, retried} after taking back lost claims. */
export const SNAPSHOT = `${REQUEUE}
local P = ARGV[1]
requeue(P, tonumber(ARGV[2]))
return {redis.call('GET', P .. 'pending') or '', redis.call('HGETALL', P .. 'suites'),
  redis.call('HGETALL', P .. 'claims'), redis.call('HGETALL', P .. 'retried')}
`;

/** ARGV: prefix, index, runner, suite key. 1 taken, 0 no longer pending, -1 our lease is gone. */
export const TAKE = `
local P, idx, runner = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', P .. 'lease:' .. runner) == 0 then return -1 end
if redis.call('GETBIT', P .. 'pending', idx) == 0 then return 0 end
redis.call('SETBIT', P .. 'pending', idx, 0)
redis.call('HINCRBY', P .. 'suites', ARGV[4], 1)
redis.call('HSET', P .. 'claims', idx, runner .. '\\n' .. ARGV[4])
return 1
`;

// held: the suite key of the claim on idx if runner holds it, else nil.
// unclaim: drops that claim and its count in the suite; false when it was not runner's.
export const HELD = `
local function held(P, idx, runner)
  local v = redis.call('HGET', P .. 'claims', idx)
  if not v or string.sub(v, 1, #runner + 1) ~= runner .. '\\n' then return nil end
  return string.sub(v, #runner + 2)
end
local function unclaim(P, idx, runner)
  local skey = held(P, idx, runner)
  if not skey then return false end
  redis.call('HDEL', P .. 'claims', idx)
  redis.call('HINCRBY', P .. 'suites', skey, -1)
  return true
end
`;

/** ARGV: prefix, index, runner, expireMs, entries... 1 when the claim was ours (entries kept), else 0. */
export const FINISH = `${HELD}${EXPIRE}
local P, idx, runner = ARGV[1], ARGV[2], ARGV[3]
if not unclaim(P, idx, runner) then return 0 end
for i = 5, #ARGV do redis.call('RPUSH', P .. 'log', ARGV[i]) end
touch(P, ARGV[4])
return 1
`;

/** ARGV: prefix, index, runner. The job waits for a runner again. */
export const RELEASE = `${HELD}
local P, idx, runner = ARGV[1], ARGV[2], ARGV[3]
if not unclaim(P, idx, runner) then return 0 end
redis.call('SETBIT', P .. 'pending', idx, 1)
return 1
`;

/** ARGV: prefix, expireMs, runner, leaseMs. 1 renewed, 0 the lease had already expired. */
export const RENEW = `${EXPIRE}
local P = ARGV[1]
if redis.call('PEXPIRE', P .. 'lease:' .. ARGV[3], ARGV[4]) == 0 then return 0 end
touch(P, ARGV[2])
return 1
`;

/** ARGV: prefix, runner. Hands back what the runner still holds and ends its lease; returns how many. */
export const LEAVE = `
local P, runner = ARGV[1], ARGV[2]
local claims = redis.call('HGETALL', P .. 'claims')
local n = 0
for i = 1, #claims, 2 do
  local v = claims[i + 1]
  if string.sub(v, 1, #runner + 1) == runner .. '\\n' then
    redis.call('HDEL', P .. 'claims', claims[i])
    redis.call('HINCRBY', P .. 'suites', string.sub(v, #runner + 2), -1)
    redis.call('SETBIT', P .. 'pending', claims[i], 1)
    n = n + 1
  end
end
redis.call('DEL', P .. 'lease:' .. runner)
return n
`;

/** ARGV: prefix, now. {exists, live runners, claims} after taking back lost claims. */
export const STATUS = `${REQUEUE}
local P = ARGV[1]
if redis.call('EXISTS', P .. 'meta') == 0 then return {0, 0, 0} end
requeue(P, tonumber(ARGV[2]))
local live = 0
for _, r in ipairs(redis.call('HKEYS', P .. 'runners')) do
  live = live + redis.call('EXISTS', P .. 'lease:' .. r)
end
return {1, live, redis.call('HLEN', P .. 'claims')}
`;
