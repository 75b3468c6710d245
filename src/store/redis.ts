/**
 * A run shared by several runners through Redis (`-queue=redis://...`),
 * with ioredis. Every change that must not interleave with another
 * runner's is one Lua script (redis-scripts.ts); picking stays in the
 * runner, over a snapshot, and a pick that lost the race is simply picked
 * again (optimistic: runners rarely want the same job, since each walks
 * its own seeded order).
 *
 * Leases: each runner holds one key with an expiry that it renews every
 * third of the lease; its claims live as long as that key. Whoever reads
 * the queue next (a runner's snapshot, a waiting runner, `-summary`) puts
 * the claims of an expired runner back, once.
 */
import { randomBytes, createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as wait } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Job } from '../project/types.js';
import type { QueueAddress } from './queue-url.js';
import * as lua from './redis-scripts.js';
import { GATHER_SCRIPTS } from './redis-gather-scripts.js';
import { redisGathering } from './redis-gather.js';
import type {
  Claim, GatherPrimitives, JoinRequest, Joined, Pick, RunRecordStored, RunStore, SharedRun, StoredEntry, SyncPrimitives,
} from './store.js';
import { RunMismatchError, StoreLostError, suiteKey } from './store.js';

type Reply = Buffer | number | null | Reply[];
type Script = (...args: (string | number | Buffer)[]) => Promise<Reply>;
const SCRIPTS = { join: lua.JOIN, snapshot: lua.SNAPSHOT, take: lua.TAKE, finish: lua.FINISH, release: lua.RELEASE, renew: lua.RENEW, leave: lua.LEAVE, status: lua.STATUS, ...GATHER_SCRIPTS } as const;

/** Shared history outlives runs: a later run on any runner orders its jobs by it. */
const HISTORY_EXPIRE_MS = 90 * 24 * 3_600_000;

const text = (r: Reply | undefined): string => (Buffer.isBuffer(r) ? r.toString('utf8') : r === null || r === undefined ? '' : String(r));
const pairs = (r: Reply | undefined): [string, string][] => {
  const list = Array.isArray(r) ? r : [];
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) out.push([text(list[i]), text(list[i + 1])]);
  return out;
};
const bit = (bits: Buffer, i: number): boolean => ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;

/** Connects to the queue; rejects with one line when Redis cannot be reached. */
export async function connectRedisRun(address: QueueAddress): Promise<SharedRun> {
  let connected = false;
  const redis = new Redis({
    host: address.host, port: address.port, db: address.db,
    ...(address.username !== undefined ? { username: address.username } : {}),
    ...(address.password !== undefined ? { password: address.password } : {}),
    // The server's certificate is checked against the host, with the system's CAs (NODE_EXTRA_CA_CERTS adds a private CA).
    ...(address.tls ? { tls: {} } : {}),
    lazyConnect: true,
    protocol: 2,
    connectTimeout: 10_000,
    // A run that cannot reach its queue for about half a lease treats it as lost.
    commandTimeout: Math.max(2000, Math.min(10_000, address.leaseMs / 2)),
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (!connected || times > 5 ? null : Math.min(100 * 2 ** times, 1000)),
    disableClientInfo: true,
  });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua: script, numberOfKeys: 0 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const why = (lastError ?? (err as Error)).message;
    throw new StoreLostError(`cannot reach the queue at ${address.label}: ${why}`);
  }
  connected = true;
  return new RedisRun(redis, address, () => lastError);
}

class RedisRun implements SharedRun {
  readonly label: string;
  readonly run: string;
  private readonly prefix: string;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly address: QueueAddress,
    /** The connection's last error: what a failed command really ran into. */
    readonly lastError: () => Error | undefined,
  ) {
    this.label = address.label;
    this.run = address.run;
    this.prefix = `spread:{${address.run}}:`;
  }

  script(name: keyof typeof SCRIPTS): Script {
    const fn = (this.redis as unknown as Record<string, Script>)[`${name}Buffer`]!;
    return (...args) => fn.call(this.redis, this.prefix, ...args);
  }

  async join(request: JoinRequest): Promise<Joined> {
    const { jobs, digest } = request;
    const names = jobs.map((j) => j.name);
    const namesJson = JSON.stringify(names);
    const jobsDigest = createHash('sha256').update(namesJson).digest('hex').slice(0, 16);
    const bits = Buffer.alloc(Math.ceil(jobs.length / 8));
    for (let i = 0; i < jobs.length; i++) bits[i >> 3]! |= 0x80 >> (i & 7);
    const runner = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const reply = (await this.script('join')(
      this.address.expireMs, runner, this.address.leaseMs, digest.project, digest.content, digest.options, jobsDigest,
      jobs.length, request.seed, request.workers, namesJson, bits,
    )) as Reply[];
    if (text(reply[0]) === 'mismatch') throw new RunMismatchError(await this.mismatch(text(reply[1]), text(reply[2]), names, digest));
    const store = new RedisStore(this, this.redis, this.address, runner, jobs, digest.project);
    return { store, runner, created: Number(reply[1]) === 1, runnerNo: Number(reply[2]), seed: Number(text(reply[3])) };
  }

  /** One line saying what differs between this runner and the run. */
  private async mismatch(field: string, theirs: string, names: readonly string[], digest: JoinRequest['digest']): Promise<string> {
    const head = `cannot join the shared run ${this.label}`;
    if (field === 'project') return `${head}: it runs project ${JSON.stringify(theirs)}, this is ${JSON.stringify(digest.project)}`;
    if (field === 'content') return `${head}: the project content differs (packed digest ${digest.content} here, ${theirs} in the run); every runner must run the same commit`;
    if (field === 'options') return `${head}: the options differ (${digest.options} here, ${theirs} in the run)`;
    const run = JSON.parse(text(await this.redis.getBuffer(`${this.prefix}names`)) || '[]') as string[];
    const mine = new Set(names);
    const theirsSet = new Set(run);
    const missing = run.find((n) => !mine.has(n));
    const extra = names.find((n) => !theirsSet.has(n));
    const example = missing !== undefined ? `${missing} is in the run but not selected here` : extra !== undefined ? `${extra} is selected here but not in the run` : 'the same jobs in another order';
    return `${head}: the jobs differ (${names.length} selected here, ${run.length} in the run; ${example}): use the same project and filters on every runner`;
  }

  async waitForEnd(signal: AbortSignal, onWait?: (message: string) => void): Promise<RunRecordStored> {
    let said = '';
    const say = (message: string) => {
      if (message !== said) onWait?.((said = message));
    };
    const pollMs = Math.max(200, Math.min(2000, this.address.leaseMs / 5));
    for (;;) {
      const [exists, live, claims] = ((await this.script('status')(Date.now())) as Reply[]).map(Number) as [number, number, number];
      if (exists && live === 0) break;
      say(exists ? `Waiting for the shared run ${this.label} to end (${live} runner${live === 1 ? '' : 's'} in it, ${claims} job${claims === 1 ? '' : 's'} running)...` : `Waiting for the shared run ${this.label} to start...`);
      await wait(pollMs, undefined, { signal });
    }
    const p = this.prefix;
    const [meta, names, pending, log] = await Promise.all([
      this.redis.hgetall(`${p}meta`), this.redis.get(`${p}names`), this.redis.getBuffer(`${p}pending`), this.redis.lrange(`${p}log`, 0, -1),
    ]);
    const jobs = JSON.parse(names ?? '[]') as string[];
    const leftover = jobs.map((_, i) => i).filter((i) => pending !== null && bit(pending, i));
    return {
      jobs, leftover, seed: Number(meta['seed'] ?? 0), workers: Number(meta['workers'] ?? 0), runners: Number(meta['runners'] ?? 0),
      entries: log.map((line) => JSON.parse(line) as StoredEntry),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.redis.disconnect();
  }
}

class RedisStore implements RunStore {
  readonly shared = true;
  private readonly controller = new AbortController();
  readonly lost = this.controller.signal;
  readonly sync: SyncPrimitives;
  readonly gathering: GatherPrimitives;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly run: RedisRun,
    private readonly redis: Redis,
    private readonly address: QueueAddress,
    private readonly runner: string,
    private readonly jobs: readonly Job[],
    private readonly project: string,
  ) {
    this.renewal = setInterval(() => void this.renew().catch(() => {}), Math.max(200, address.leaseMs / 3));
    this.renewal.unref();
    this.sync = redisSync(redis, `spread:{${address.run}}:`, () => this.lost);
    this.gathering = redisGathering({
      script: (name, ...args) => this.run.script(name as keyof typeof SCRIPTS)(...args),
      guard: (what, op) => this.guard(what, op), runner, expireMs: address.expireMs,
    });
  }

  /** Runs a store operation; any failure loses the store for good. */
  private async guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.lost.aborted) throw this.lost.reason as Error;
    try {
      return await op();
    } catch (err) {
      // After its retries the client says only that it gave up: the connection's own error says why.
      const last = this.run.lastError();
      const why = /max retries|connection is closed|command timed out/i.test((err as Error).message) && last ? last.message : (err as Error).message;
      this.lose(`cannot ${what}: ${why}`);
      throw this.lost.reason as Error;
    }
  }

  private lose(why: string): void {
    if (this.lost.aborted) return;
    clearInterval(this.renewal);
    this.controller.abort(new StoreLostError(why));
  }

  private async snapshot(): Promise<{ pending: (Job | undefined)[]; suites: Map<string, number>; claims: [string, string][]; retried: Map<number, string> }> {
    const [bits, suites, claims, retried] = (await this.run.script('snapshot')(Date.now())) as Reply[];
    const buf = Buffer.isBuffer(bits) ? bits : Buffer.alloc(0);
    return {
      pending: this.jobs.map((job, i) => (bit(buf, i) ? job : undefined)),
      suites: new Map(pairs(suites).map(([k, v]) => [k, Number(v)])),
      claims: pairs(claims),
      retried: new Map(pairs(retried).map(([k, v]) => [Number(k), v])),
    };
  }

  claim(pick: Pick): Promise<Claim | undefined> {
    return this.guard('claim a job', async () => {
      for (;;) {
        const s = await this.snapshot();
        const index = pick({ pending: s.pending, suiteWorkers: s.suites });
        if (index === undefined) return undefined;
        const job = this.jobs[index]!;
        const taken = Number(await this.run.script('take')(index, this.runner, suiteKey(job)));
        if (taken === -1) throw new Error('this runner\'s lease expired (was it cut off for longer than the lease?)');
        if (taken === 1) {
          const lostRunner = s.retried.get(index);
          return { job, index, ...(lostRunner !== undefined ? { lostRunner } : {}) };
        }
      }
    });
  }

  finish(claim: Claim, entries: readonly StoredEntry[]): Promise<boolean> {
    return this.guard('record a result', async () =>
      Number(await this.run.script('finish')(claim.index, this.runner, this.address.expireMs, ...entries.map((e) => JSON.stringify(e)))) === 1);
  }

  release(claim: Claim): Promise<void> {
    return this.guard('hand a job back', async () => {
      await this.run.script('release')(claim.index, this.runner);
    });
  }

  record(entries: readonly StoredEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return this.guard('record a result', async () => {
      await this.redis.rpush(`spread:{${this.address.run}}:log`, ...entries.map((e) => JSON.stringify(e)));
    });
  }

  async awaitWork(backend: string, system: string, signal: AbortSignal): Promise<boolean> {
    const prefix = `${backend}\0${system}\0`;
    // Often enough that a runner leaves soon after the last job elsewhere ends; a snapshot is one small read.
    const pollMs = Math.max(200, Math.min(1000, this.address.leaseMs / 3));
    while (!signal.aborted) {
      const s = await this.guard('read the queue', () => this.snapshot());
      if (s.pending.some((j) => j !== undefined && j.backend.name === backend && j.system.name === system)) return true;
      // A multi-machine job gathering machines of the system, on any runner, wants this worker's.
      if (await this.gathering.isOpen(`${backend}:${system}`)) return true;
      const elsewhere = s.claims.some(([, v]) => !v.startsWith(`${this.runner}\n`) && v.slice(v.indexOf('\n') + 1).startsWith(prefix));
      if (!elsewhere) return false;
      await wait(pollMs, undefined, { signal }).catch(() => {});
    }
    return false;
  }

  async unclaimed(): Promise<readonly Job[]> {
    const s = await this.guard('read the queue', () => this.snapshot());
    return s.pending.filter((j): j is Job => j !== undefined);
  }

  async renew(): Promise<void> {
    const ok = await this.guard('renew the lease', () => this.run.script('renew')(this.address.expireMs, this.runner, this.address.leaseMs));
    if (Number(ok) !== 1) this.lose('this runner\'s lease expired before it could renew it (cut off for longer than the lease?)');
  }

  async leave(): Promise<void> {
    clearInterval(this.renewal);
    try {
      if (!this.lost.aborted) await this.run.script('leave')(this.runner);
    } finally {
      await this.run.close();
    }
  }

  async history(): Promise<ReadonlyMap<string, number>> {
    const all = await this.guard('read the shared history', () => this.redis.hgetall(this.historyKey()));
    return new Map(Object.entries(all).map(([k, v]) => [k, Number(v)] as const).filter(([, ms]) => Number.isFinite(ms) && ms >= 0));
  }

  recordDuration(job: Job, ms: number): Promise<void> {
    return this.guard('record the shared history', async () => {
      await this.redis.multi().hset(this.historyKey(), job.name, Math.round(ms)).pexpire(this.historyKey(), HISTORY_EXPIRE_MS).exec();
    });
  }

  private historyKey(): string {
    return `spread:history:${this.project}`;
  }
}

/**
 * The sync primitives on Redis: a counter per state and a list per topic,
 * polled (a blocking read would need a connection per waiter).
 */
function redisSync(redis: Redis, prefix: string, lost: () => AbortSignal): SyncPrimitives {
  const POLL_MS = 100;
  const pause = (signal: AbortSignal) => wait(POLL_MS, undefined, { signal: AbortSignal.any([signal, lost()]) });
  return {
    signalEntry: (state) => redis.incr(`${prefix}state:${state}`),
    barrier: async (state, target, signal) => {
      while (Number(await redis.get(`${prefix}state:${state}`)) < target) await pause(signal);
    },
    publish: (topic, payload) => redis.rpush(`${prefix}topic:${topic}`, payload),
    subscribe: async function* (topic, signal) {
      for (let next = 0; !signal.aborted;) {
        const items = await redis.lrange(`${prefix}topic:${topic}`, next, -1);
        for (const item of items) yield item;
        next += items.length;
        if (items.length === 0) await pause(signal).catch(() => {});
      }
    },
  };
}
