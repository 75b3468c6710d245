/**
 * Gathering multi-machine jobs across runners on Redis (store.ts
 * GatherPrimitives): each call is one Lua script of redis-gather-scripts.ts,
 * so every check and the write it guards are one atomic step on the server.
 */
import type { Claim, GatherPrimitives, GatherState, Seat, StoredEntry } from './store.js';

type Reply = Buffer | number | null | Reply[];
/** Runs one of the run's scripts by name with the run's prefix first. */
export type RunScript = (name: string, ...args: (string | number | Buffer)[]) => Promise<Reply>;

const text = (r: Reply | undefined): string => (Buffer.isBuffer(r) ? r.toString('utf8') : r === null || r === undefined ? '' : String(r));

/** Seats as the scripts keep them (an empty Lua table encodes as `{}`). */
const seatsOf = (json: string): Seat[] => {
  const parsed = JSON.parse(json || '[]') as unknown;
  return Array.isArray(parsed) ? (parsed as Seat[]) : [];
};

const stateOf = (r: Reply): GatherState => {
  const [state, a, flags] = (r as Reply[]).map(text);
  if (state === 'gathering') return { state, seats: seatsOf(a!) };
  if (state === 'running') {
    const seats = seatsOf(a!);
    return { state, seats, lost: [...new Set(seats.filter((_, i) => flags![i] === '0').map((s) => s.runner))] };
  }
  return { state: state === 'off' ? 'off' : 'dissolved', reason: a ?? '' };
};

export function redisGathering(o: {
  readonly script: RunScript;
  /** Runs a store operation; a failure loses the store (see RedisStore.guard). */
  readonly guard: <T>(what: string, op: () => Promise<T>) => Promise<T>;
  readonly runner: string;
  readonly expireMs: number;
}): GatherPrimitives {
  const { script, guard, runner, expireMs } = o;
  return {
    workers: (system, delta) => guard('count the workers', async () => {
      await script('gatherWorkers', expireMs, runner, system, delta);
    }),
    open: (claim: Claim, system, count, seat) => guard('open a gathering', async () => {
      const id = seat.seat;
      const r = text(await script('gatherOpen', expireMs, runner, claim.index, system, id, count, JSON.stringify(seat)));
      if (r === 'lost') throw new Error('this runner no longer holds the job it gathers machines for (its lease expired?)');
      return r === 'busy' ? 'busy' : { id };
    }),
    join: (system, seat) => guard('join a gathering', async () => {
      const r = await script('gatherJoin', expireMs, runner, system, JSON.stringify(seat));
      if (!Array.isArray(r)) return undefined;
      const [id, job, count, owner] = r.map(text);
      return { id: id!, job: Number(job), count: Number(count), owner: owner! };
    }),
    isOpen: (system) => guard('read the gatherings', async () => Number(await script('gatherIsOpen', system)) === 1),
    isOpening: (jobs) => guard('read the gatherings', async () => jobs.length > 0 && Number(await script('gatherOpening', ...jobs)) === 1),
    status: (id) => guard('read a gathering', async () => stateOf(await script('gatherStatus', id))),
    leave: (id, seat) => guard('leave a gathering', async () => stateOf(await script('gatherLeave', id, seat))),
    meet: (id, point, instance, report) => guard('meet the other instances', async () => {
      const [reports, lost] = (await script('gatherMeet', expireMs, id, point, instance ?? '', report ?? '')) as Reply[][];
      const pairs = (list: Reply[] | undefined) => {
        const out = new Map<number, string>();
        for (let i = 0; list && i + 1 < list.length; i += 2) out.set(Number(text(list[i])), text(list[i + 1]));
        return out;
      };
      return { reports: pairs(reports), lost: pairs(lost) };
    }),
    keep: (id, entries) => guard('keep records with the group', async () => {
      if (entries.length > 0) await script('gatherKeep', expireMs, id, ...entries.map((e) => JSON.stringify(e)));
    }),
    take: (id) => guard('take the group\'s records', async () =>
      ((await script('gatherTake', id)) as Reply[]).map((e) => JSON.parse(text(e)) as StoredEntry)),
    requeue: (claim, lostRunner) => guard('hand a job back', async () => {
      await script('gatherRequeue', claim.index, runner, lostRunner, Date.now());
    }),
  };
}
