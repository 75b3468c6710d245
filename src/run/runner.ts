/**
 * A run (spec §5.1): backends, the reuse file, the packed project, one
 * worker per machine (`workers:` per system, never more than its jobs),
 * each walking the shared queue in its own seeded order, then the jobs left
 * over counted as aborted and every machine discarded or kept.
 */
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Backend, BackendContext } from '../backends/backend.js';
import { machineName } from '../backends/backend.js';
import { createBackend } from '../backends/registry.js';
import type { AbortReason, Emit } from '../events.js';
import { resolveVariant } from '../project/env.js';
import type { Evaluated } from '../project/evaluate.js';
import type { Job, Project, System } from '../project/types.js';
import { byCodeUnit } from '../project/env.js';
import { formatPackedSize, packContent } from './content.js';
import type { PackedContent } from './content.js';
import type { OpenShell } from './level-script.js';
import { Sequence } from './level-script.js';
import type { Content, LinkShared, MachineLink } from './machine-link.js';
import type { RunOptions } from './options.js';
import { History, HISTORY_FILE, orderByHistory } from './history.js';
import { Hunt, HuntQueue } from './hunt.js';
import { permutation } from './pick-job.js';
import { ReuseFile } from './reuse-file.js';
import { resolveTimeouts } from '../project/timeouts.js';
import { runWorker } from './worker.js';
import { MemoryStore } from '../store/memory.js';
import type { Joined, RunStore, SharedRun } from '../store/store.js';
import { contentDigest } from './content-digest.js';
import { JobQueue } from './job-queue.js';
import { LocalGroups } from './local-group.js';
import type { Groups } from './group.js';
import { SharedGroups } from './shared-group.js';
import { SyncEndpoint } from './sync-link.js';
import { MemorySync } from '../sync/memory.js';
import { StoreSync } from '../sync/store-sync.js';

export interface RunInput {
  readonly project: Project;
  /** The selected jobs, sorted. */
  readonly jobs: readonly Job[];
  readonly evaluated: Evaluated;
  readonly options: RunOptions;
  readonly emit: Emit;
  /** First Ctrl-C: no new jobs. */
  readonly stopping: AbortSignal;
  /** Second Ctrl-C: kill running scripts. */
  readonly abort: AbortSignal;
  /**
   * How long after `abort` the run may take to end: whatever has not been
   * discarded by then stays in the reuse file, and the run ends anyway.
   * @default STOP_GRACE_MS
   */
  readonly stopGraceMs?: number;
  readonly openShell?: OpenShell;
  /** Test hook: shorter retry timings. */
  readonly timing?: LinkShared['timing'];
  /** A run shared with other runners (-queue), joined once the project is packed, before any machine is allocated. */
  readonly sharedRun?: SharedRun;
}

/** The bound on the end of a run after a second signal (CI systems send SIGKILL after 10 to 30 s). */
export const STOP_GRACE_MS = 10_000;

export interface RunResult {
  /** Something outside the summary went wrong (artifacts, packing): the run is unsuccessful. */
  readonly failed: boolean;
}

export function reusePath(project: Project, options: RunOptions): string {
  if (options.reusePid !== 0) return join(project.dir, `.spread-reuse.${options.reusePid}.yaml`);
  if (options.reuse) return join(project.dir, '.spread-reuse.yaml');
  return join(project.dir, `.spread-reuse.${process.pid}.yaml`);
}

export async function runJobs(input: RunInput): Promise<RunResult> {
  const { project, options, emit, evaluated } = input;
  const log = (message: string, level: 'info' | 'verbose' | 'debug' = 'info') => emit({ type: 'log', level, message });
  let failed = false;

  const used = [...new Set(input.jobs.map((j) => j.backend))];
  const context: BackendContext = {
    project, password: options.password, keep: options.reuse,
    credentials: evaluated.credentials, key: evaluated.key, log, signal: input.stopping,
  };
  const backends = new Map<string, Backend>(used.map((b) => [b.name, createBackend(b, context)]));

  if (options.gc) {
    for (const backend of backends.values()) {
      if (!backend.gc) {
        log(`Backend ${JSON.stringify(backend.config.name)} (type ${backend.config.type}) has no garbage collection; nothing to do.`);
        continue;
      }
      try {
        await backend.gc(input.stopping);
      } catch (err) {
        log(`Error collecting garbage from ${JSON.stringify(backend.config.name)}: ${(err as Error).message}`);
        failed = true;
      }
    }
    return { failed };
  }

  const reuse = await ReuseFile.open(reusePath(project, options), (m) => log(m));
  const cut = deadlineAfter(input.abort, input.stopGraceMs ?? STOP_GRACE_MS);
  // Jobs that ended one way or another; the others are accounted for at the end, with the reason.
  const settled = new Set<Job>();
  const started = new Set<Job>();
  const tracked = emit;
  const track: Emit = (e) => {
    if (e.type === 'result' || e.type === 'job-end') settled.add(e.job);
    if (e.type === 'job-start') started.add(e.job);
    tracked(e);
  };
  const history = options.history && !options.discard ? History.load(join(project.dir, HISTORY_FILE)) : undefined;
  let content: PackedContent | undefined;
  const held = new Set<MachineLink>();
  let store: RunStore = new MemoryStore(input.jobs);
  let joined: Joined | undefined;
  let refused = false;
  let queue: JobQueue | undefined;
  let hunt: ReturnType<typeof startHunt> | undefined;
  let groups: ReturnType<typeof startGroups> = undefined;
  // Packing (work on this host) overlaps allocating and connecting (waiting on
  // the machines): a worker waits for the content only when it is ready to send
  // it. If packing fails, no worker goes on; the run then fails as before.
  const packFailed = new AbortController();
  const packing = options.discard ? undefined : pack(input, [...backends.keys()]).then(
    (packed) => {
      content = packed;
      log(`Project content is packed for delivery (${formatPackedSize(packed.size)}).`);
      return packed;
    },
    (err: unknown) => {
      packFailed.abort();
      throw err;
    },
  );
  packing?.catch(() => undefined);
  // No new job once interrupted, once packing failed, or once a shared run's store is lost.
  let stopping = AbortSignal.any([input.stopping, packFailed.signal]);
  const gaveUp = new Map<string, AbortReason>();
  try {
    const workers = workerCounts(project, input.jobs, options.repeatUntil !== undefined);
    const total = [...workers.values()].reduce((a, b) => a + b, 0);
    let seed = options.seed;
    if (!options.discard && seed === 0 && input.jobs.length > total) seed = Math.floor(Date.now() / 1000);
    if (input.sharedRun && !options.discard) {
      // A shared run is joined with the content's digest: that waits for the packing.
      const packed = await packing!;
      joined = await joinRun(input, input.sharedRun, packed, total, seed).catch((err: unknown) => {
        refused = true;
        throw err;
      });
      ({ store, seed } = joined);
      stopping = AbortSignal.any([stopping, store.lost]);
      store.lost.addEventListener('abort', () => {
        log(`Lost the shared run ${input.sharedRun!.label}: ${(store.lost.reason as Error).message.replace(/\.+$/, '')}. Finishing running jobs, restoring and discarding machines; their results are only in this log.`);
      }, { once: true });
    }
    if (!options.discard && seed !== options.seed) log(`Sequence of jobs produced with -seed=${seed}`);
    const shared: LinkShared = {
      emit: track, options, reuse, remotePath: evaluated.remotePath, stopping, held, reserved: new Map(), uploads: new Map(), unreachable: new Set(), gaveUp,
      content: (): Promise<Content> => packing!,
      needed: (system) => Math.max(0, ...input.jobs.filter((j) => j.system === system).map((j) => j.task.instances?.count ?? 0)),
      ...(input.timing ? { timing: input.timing } : {}),
    };
    if (!options.discard && !options.reuse && options.reusePid === 0) {
      log(`If killed, discard servers with: spread -reuse-pid=${process.pid} -discard`);
    }
    emit({ type: 'run-start', jobs: input.jobs, workers: total, seed });

    hunt = options.repeatUntil ? startHunt(input, reuse.path) : undefined;
    const jobQueue = hunt ? new HuntQueue(hunt.hunt, store, input.jobs, stopping) : new JobQueue(store, input.jobs, stopping, joined?.runner ?? '');
    queue = jobQueue;
    if (history && joined) {
      const known = await store.history().catch(() => new Map<string, number>());
      for (const job of input.jobs) {
        const ms = known.get(job.name);
        if (ms !== undefined) history.record(job, ms);
      }
    }
    // Plain runs feed the job times (a run with shells or repeats says little about a job's usual time);
    // outcomes come from every run nobody steers by hand.
    const recording = options.history && !options.discard && options.interaction.kind === 'none' && options.repeat === 0 && !options.repeatUntil;
    const steered = options.interaction.kind !== 'none' && options.interaction.kind !== 'abend';
    const runEmit: Emit = (e) => {
      if (recording && e.type === 'job-end' && e.outcome === 'task-done') {
        history?.record(e.job, e.durationMs);
        jobQueue.track(store.recordDuration(e.job, e.durationMs));
      }
      if (!steered && e.type === 'result' && e.outcome in PASSED) history?.recordOutcome(e.job, PASSED[e.outcome]!);
      track(e);
      jobQueue.tap(e);
    };
    const env = { emit: runEmit, options, evaluated, sequence: new Sequence(input.jobs.length), abort: input.abort, ...(input.openShell ? { openShell: input.openShell } : {}) };
    // Multi-machine jobs: their events go through runEmit as any job's.
    groups = startGroups(input.jobs, runEmit, stopping, joined ? { store, runner: joined.runner, queue: jobQueue } : undefined);
    // Each runner of a shared run walks the queue in orders of its own.
    const offset = joined ? (joined.runnerNo - 1) * 1000 : 0;
    const running: Promise<void>[] = [];
    for (const [system, n] of workers) {
      for (let i = 0; i < n; i++) {
        const seeded = permutation(input.jobs.length, seed + offset + i);
        const order = history ? orderByHistory(seeded, input.jobs, history) : seeded;
        const key = `${system.backend}:${system.name}`;
        running.push(runWorker({ backend: backends.get(system.backend)!, system, order, index: i + 1, queue: jobQueue, shared, env, ...(groups ? { groups } : {}), ...(hunt ? { hunt: hunt.hunt } : {}) }).catch((err: Error) => {
          log(`Worker for ${key} failed: ${err.message}`);
          gaveUp.set(key, { kind: 'error', message: `not run: the worker for ${key} failed: ${err.message}` });
          failed = true;
        }));
      }
    }
    await cut.bound(Promise.all(running));
    await cut.bound(packing?.then(() => undefined) ?? Promise.resolve());
  } finally {
    await cut.bound(packing?.then(() => undefined, () => undefined) ?? Promise.resolve());
    if (!options.discard && !joined && !refused) {
      // Every job not run to its end gets its reason; in a shared run, the jobs left belong to the other runners.
      for (const job of input.jobs) {
        if (settled.has(job)) continue;
        const why: AbortReason = input.stopping.aborted
          ? started.has(job)
            ? { kind: 'error', message: `interrupted: still running ${cut.passed ? 'when the run stopped waiting' : 'when the run was stopped'}` }
            : { kind: 'interrupted', message: 'not run: the run was interrupted' }
          : gaveUp.get(`${job.backend.name}:${job.system.name}`) ?? { kind: 'error', message: `not run: no machine of ${job.backend.name}:${job.system.name} was left to run it` };
        emit({ type: 'result', outcome: 'task-abort', job, why });
      }
    }
    if (joined) {
      const left = await store.unclaimed().catch(() => undefined);
      if (left?.length) log(`${left.length} job${left.length === 1 ? '' : 's'} left in the shared run ${input.sharedRun!.label} for other runners.`);
      await cut.bound(queue?.flush() ?? Promise.resolve());
      await cut.bound(store.leave().catch(() => {}));
      // Jobs handed back are not this runner's failures, but an interrupted or cut-off runner did not do its share.
      if (store.lost.aborted || input.stopping.aborted) failed = true;
    }
    // Machines still held: kept under -reuse, else discarded (a worker that died must not leak one).
    await cut.bound(Promise.all([...held].map(async (link) => {
      if (options.reuse || link.isKept) emit({ type: 'machine', action: 'keeping', machine: machineName(link.machine), address: link.machine.address, system: `${link.machine.system.backend}:${link.machine.system.name}` });
      else await link.release();
    })));
    if (cut.passed && !options.reuse && reuse.size > 0) {
      log(`Stopped waiting ${Math.round((input.stopGraceMs ?? STOP_GRACE_MS) / 1000)}s after the second interrupt; machines not yet discarded are listed in ${reuse.path}: discard them with: spread -reuse-pid=${options.reusePid || process.pid} -discard`);
    }
    cut.dispose();
    await reuse.close(!options.reuse && reuse.size === 0);
    try {
      history?.save();
    } catch (err) {
      log(`Cannot save job times to ${HISTORY_FILE}: ${(err as Error).message}`);
    }
    await content?.dispose();
    hunt?.finish();
    await groups?.endpoint.service.close();
    // A runner refused by a shared run ran nothing: its error says why, with no summary.
    if (!refused) emit({ type: 'run-end', interrupted: input.stopping.aborted });
  }
  return { failed };
}

/** Joins the shared run with what decides it: the jobs, the packed content's digest and the options. */
async function joinRun(input: RunInput, run: SharedRun, packed: PackedContent, workers: number, seed: number): Promise<Joined> {
  const { options } = input;
  const digest = {
    project: input.project.name,
    content: await contentDigest(packed.open()),
    options: JSON.stringify({ repeat: options.repeat, repeatUntil: options.repeatUntil?.source ?? '', interaction: options.interaction.kind }),
  };
  const joined = await run.join({ jobs: input.jobs, digest, workers, seed });
  input.emit({
    type: 'log', level: 'info',
    message: `${joined.created ? 'Started' : 'Joined'} the shared run ${run.label} as runner ${joined.runnerNo} (${joined.runner}).`,
  });
  return joined;
}

/** The outcomes that say whether a job's own scripts passed. */
const PASSED: Partial<Record<string, boolean>> = { 'task-done': true, 'task-error': false, 'task-prepare-error': false, 'task-restore-error': false };

/**
 * Workers per system: `workers:`, but never more than the jobs it has (spec §5.1), counting the machines
 * of multi-machine jobs; a flake hunt uses every one.
 */
function workerCounts(project: Project, jobs: readonly Job[], hunting = false): Map<System, number> {
  const jobsOf = new Map<System, number>();
  for (const job of jobs) jobsOf.set(job.system, (jobsOf.get(job.system) ?? 0) + (job.task.instances?.count ?? 1));
  const counts = new Map<System, number>();
  // Declaration order, so workers start backend by backend as in the original.
  for (const system of project.backends.flatMap((b) => b.systems)) {
    const n = jobsOf.get(system) ?? 0;
    if (n > 0) counts.set(system, hunting ? system.workers : Math.min(system.workers, n));
  }
  return counts;
}

/**
 * Multi-machine jobs gather their machines through Groups and talk to a
 * sync service: the run's own, or in a shared run the shared store's, so
 * their states live with the run and their instances may be machines of
 * different runners (shared-group.ts).
 */
function startGroups(jobs: readonly Job[], emit: Emit, stopping: AbortSignal, shared?: { store: RunStore; runner: string; queue: JobQueue }): { groups: Groups; endpoint: SyncEndpoint } | undefined {
  if (!jobs.some((j) => j.task.instances)) return undefined;
  const store = shared?.store;
  const sync = store?.sync ? new StoreSync(store.sync) : new MemorySync();
  const groups: Groups = shared && store?.gathering
    ? new SharedGroups({ emit, sync, stopping, gathering: store.gathering, jobs, runner: shared.runner, records: shared.queue })
    : new LocalGroups({ emit, sync, stopping });
  return { groups, endpoint: new SyncEndpoint(sync) };
}

/** Pack once for every machine; the repack script sees the project env and SPREAD_BACKENDS. */
async function pack(input: RunInput, backendNames: string[]): Promise<PackedContent> {
  const { project, evaluated } = input;
  const env = [...resolveVariant(evaluated.env(project.env), ''), ['SPREAD_BACKENDS', backendNames.sort(byCodeUnit).join(' ')] as const];
  const { warnMs, killMs } = resolveTimeouts(project.warnTimeout, project.killTimeout);
  try {
    return await packContent({
      dir: project.dir,
      ...(evaluated.include.length > 0 ? { include: evaluated.include } : {}),
      exclude: evaluated.exclude,
      rename: evaluated.rename,
      repack: project.repack,
      env,
      warnTimeoutMs: warnMs,
      killTimeoutMs: killMs,
      onWarning: (message) => input.emit({ type: 'log', level: 'info', message: `WARNING: ${message}` }),
      signal: input.stopping,
    });
  } catch (err) {
    input.emit({ type: 'log', level: 'info', message: `Error packing project content for delivery: ${(err as Error).message}` });
    throw new Error('cannot pack project content for delivery');
  }
}

/**
 * A flake hunt over the selected jobs; failures go under -artifacts, or a
 * fresh temporary directory (removed at the end if nothing was saved).
 */
function startHunt(input: RunInput, reuseFile: string): { hunt: Hunt; finish: () => void } {
  const { options, emit, project } = input;
  const dir = options.artifacts ? resolve(options.artifacts) : mkdtempSync(join(tmpdir(), 'spread-hunt-'));
  const shell = reusePath(project, { ...options, reuse: true, reusePid: 0 });
  const hunt = new Hunt({
    until: options.repeatUntil!, jobs: input.jobs, dir, emit,
    runsPerJob: options.repeat > 0 ? options.repeat + 1 : Infinity,
    ...(reuseFile !== shell ? { keepIn: shell } : {}),
  });
  const machines = [...workerCounts(project, input.jobs, true).values()].reduce((a, b) => a + b, 0);
  emit({ type: 'log', level: 'info', message: `Hunting for a failure matching ${options.repeatUntil} with ${input.jobs.length} job${input.jobs.length === 1 ? '' : 's'} on ${machines} machine${machines === 1 ? '' : 's'}; failures are saved under ${dir}` });
  return {
    hunt,
    finish: () => {
      hunt.end();
      if (!options.artifacts) {
        try {
          rmdirSync(dir); // Only when empty: nothing was saved.
        } catch {
          // Failures were saved there.
        }
      }
    },
  };
}

/**
 * The bound on a run after a second signal: `bound(p)` waits for p, but no
 * longer than `graceMs` after `abort` fires; `passed` says the time ran out.
 */
function deadlineAfter(abort: AbortSignal, graceMs: number): { bound<T>(p: Promise<T>): Promise<T | undefined>; readonly passed: boolean; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let passed = false;
  let onAbort = (): void => {};
  const reached = new Promise<undefined>((resolve) => {
    onAbort = () => {
      timer = setTimeout(() => {
        passed = true;
        resolve(undefined);
      }, graceMs);
      timer.unref();
    };
    if (abort.aborted) onAbort();
    else abort.addEventListener('abort', onAbort, { once: true });
  });
  return {
    bound: (p) => (passed ? Promise.resolve(undefined) : Promise.race([p, reached])),
    get passed() {
      return passed;
    },
    dispose: () => {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
    },
  };
}
