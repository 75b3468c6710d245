/**
 * One worker: one machine of one system, taking jobs from the shared
 * pending list until none is left for it. The prepare/restore nesting is the
 * original's (spec §5.3): project and backend prepare once per machine, the
 * suite prepare on entering a suite and its restore on leaving it, the
 * task's prepare/execute/restore for every job and repeat, and on the way
 * out suite, backend and project restore, using the last job's environment.
 */
import type { Backend } from '../backends/backend.js';
import type { AbortReason, Outcome } from '../events.js';
import type { Env, Job, Suite, System } from '../project/types.js';
import { fetchArtifacts } from './artifacts.js';
import { contextOf, runLevel } from './level-script.js';
import type { LevelCall, LevelResult, WorkerEnv } from './level-script.js';
import type { Claim } from '../store/store.js';
import type { JobQueue } from './job-queue.js';
import type { LinkShared, MachineLink } from './machine-link.js';
import { obtainMachine } from './obtain-machine.js';
import type { Groups, Member } from './group.js';
import { runGroupPart } from './group-task.js';
import type { SyncEndpoint } from './sync-link.js';
import type { Hunt } from './hunt.js';

export interface WorkerInput {
  readonly backend: Backend;
  readonly system: System;
  readonly order: readonly number[];
  /** This worker's number within its system, from 1. */
  readonly index: number;
  /** The run's queue: every worker of every runner claims from it. */
  readonly queue: JobQueue;
  readonly shared: LinkShared;
  readonly env: WorkerEnv;
  /** Multi-machine jobs: their gathering, and how their instances reach the sync service. */
  readonly groups?: { readonly groups: Groups; readonly endpoint: SyncEndpoint };
  /** A flake hunt (-repeat-until): the queue hands out its runs; each run's end is reported to it. */
  readonly hunt?: Hunt;
}

/** Joins scripts as one, each in its own subshell (spec §5.3). */
export const joinScripts = (...scripts: readonly string[]): string =>
  scripts.filter((s) => s !== '').map((s) => `(\n${s}\n)`).join('\n\n');

const taskPrepare = (j: Job): string => joinScripts(j.project.prepareEach, j.backend.prepareEach, j.suite.prepareEach, j.task.prepare);
const taskRestore = (j: Job): string => joinScripts(j.task.restore, j.suite.restoreEach, j.backend.restoreEach, j.project.restoreEach);
const taskDebug = (j: Job): string => joinScripts(j.task.debug, j.suite.debugEach, j.backend.debugEach, j.project.debugEach);

export async function runWorker(input: WorkerInput): Promise<void> {
  input.groups?.groups.enlist(input.system);
  try {
    // A machine lost for good is let go and replaced, with fresh nesting state.
    // In a shared run, a worker whose jobs all went to other runners waits
    // without a machine for any of them that comes back (its runner lost).
    while (!input.queue.stopping.aborted && ((await input.groups?.groups.isGathering(input.system)) || (await input.queue.awaitWork(input.system.backend, input.system.name)))) {
      const link = await obtainMachine(input.shared, input.backend, input.system, input.index);
      if (!link) return;
      const end = await runOnMachine(input, link);
      await link.release();
      if (end === 'stop' || (end === 'idle' && !input.queue.shared)) return;
    }
  } finally {
    input.groups?.groups.retire(input.system);
  }
}

/**
 * Runs jobs on one machine until it is lost ('replace': the worker should
 * get another), no job is left for it ('idle'), or it must stop ('stop':
 * a failed project prepare or restore, -abend, Ctrl-C).
 */
async function runOnMachine(input: WorkerInput, link: MachineLink): Promise<'replace' | 'idle' | 'stop'> {
  const { queue, env: w } = input;
  const restoreOnly = w.options.interaction.kind === 'restore';
  const abendMode = w.options.interaction.kind === 'abend';
  const result = (outcome: Outcome, job: Job, why?: AbortReason) => w.emit({ type: 'result', outcome, job, ...(why ? { why } : {}) });
  // The instance variables of multi-machine jobs this machine took part in, for every level's scripts (the job's env may use them).
  const instanceVars = new Map<Job, Env>();
  const runFull = async (call: LevelCall): Promise<LevelResult> => {
    const vars = call.instance ? undefined : instanceVars.get(call.job);
    const r = await runLevel(link, w, vars ? { ...call, instance: { vars } } : call);
    if (!r.ok && !r.interrupted && abendMode) abend = true;
    return r;
  };
  let stopWhy: AbortReason | undefined;
  /**
   * A project, backend or suite script failed: its category (not for a
   * script killed by a second signal), and `next` does not run, for that reason.
   */
  const levelFailed = (r: LevelResult, call: LevelCall, outcome: Outcome, blame: Job, next: Job): AbortReason => {
    const what = `${call.verb} ${contextOf(call.job, call.level)}`;
    const why: AbortReason = r.interrupted
      ? { kind: 'error', message: `interrupted while ${what}` }
      : { kind: 'error', message: `not run: ${what} failed on ${link.label}: ${r.reason ?? 'failed'}` };
    if (!r.interrupted) result(outcome, blame);
    aborted(next, why);
    return why;
  };
  const run = async (call: LevelCall, outcome: Outcome, next: Job, blame = call.job): Promise<boolean> => {
    const r = await runFull(call);
    if (!r.ok) stopWhy = levelFailed(r, call, outcome, blame, next);
    return r.ok;
  };
  /** The restores on the way out: a failure is counted, a skip after a second signal is not. */
  const unwind = async (call: LevelCall, outcome: Outcome): Promise<void> => {
    const r = await runFull(call);
    if (!r.ok && !r.interrupted) result(outcome, call.job);
  };

  let abend = false;
  /** A flake hunt matched here: the machine stays as the failure left it (nothing more runs or is restored). */
  let held = false;
  let badProject = false;
  /** Suites whose prepare failed on this machine, with the reason their jobs do not run. */
  const badSuite = new Map<Suite, AbortReason>();
  let insideProject = false;
  let insideBackend = false;
  let insideSuite: Suite | undefined;
  let claim: Claim | undefined;
  let last: Job | undefined;
  let idle = false;
  // This worker's part in a multi-machine job: such a job is aborted once, by its group.
  let member: Member | undefined;
  const aborted = (j: Job, why?: AbortReason) => (member ? member.abandon() : result('task-abort', j, why));

  for (;;) {
    if (claim) {
      w.sequence.of(claim.job);
      if (!(await queue.finish(claim)) && queue.shared && !queue.store.lost.aborted) {
        w.emit({ type: 'log', level: 'info', message: `Results of ${claim.job.name} are not kept in the shared run: this runner no longer holds it.` });
      }
      claim = undefined;
    }
    if (member) w.sequence.of(member.job);
    if (badProject || abend || link.isLost || queue.stopping.aborted) break;
    // A multi-machine job gathering machines of this system comes first (see group.ts);
    // the worker that claimed it holds the claim for the whole group.
    const groups = input.groups?.groups;
    member = await groups?.join(input.system, link);
    if (!member) {
      const take = () => queue.claim({ backend: input.system.backend, system: input.system.name, suite: insideSuite, last, order: input.order });
      const got = groups ? await groups.claim(input.system, link, take) : { claim: await take() };
      claim = got.claim;
      member = got.member;
      // One group gathers per system at a time: another one opened while this claim was on its way.
      if (got.busy && claim) {
        await queue.release(claim);
        claim = undefined;
        continue;
      }
      if (!claim) {
        // A sibling may be opening a group from its own claim: join it rather than leave.
        await groups?.settled(input.system);
        if (await groups?.isGathering(input.system)) continue;
        idle = true;
        break;
      }
      if (claim.lostRunner !== undefined) {
        w.emit({ type: 'job-retry', job: claim.job, lostRunner: claim.lostRunner });
      }
    }
    const job = member ? member.job : claim!.job;
    if (member) {
      if (!(await member.gathered())) continue;
      instanceVars.set(job, member.vars());
    }

    const bad = badSuite.get(job.suite);
    if (bad) {
      aborted(job, bad);
      continue;
    }
    if (insideSuite && insideSuite !== job.suite) {
      if (!(await run({ job: last!, level: 'suite', verb: 'restoring', script: insideSuite.restore, debug: insideSuite.debug }, 'suite-restore-error', job))) {
        badProject = true;
        continue;
      }
      insideSuite = undefined;
    }
    last = job;
    if (!insideProject) {
      insideProject = true;
      if (!restoreOnly && !(await run({ job, level: 'project', verb: 'preparing', script: job.project.prepare, debug: job.project.debug }, 'project-prepare-error', job))) {
        badProject = true;
        continue;
      }
      insideBackend = true;
      if (!restoreOnly && !(await run({ job, level: 'backend', verb: 'preparing', script: job.backend.prepare, debug: job.backend.debug }, 'backend-prepare-error', job))) {
        badProject = true;
        continue;
      }
    }
    if (insideSuite !== job.suite) {
      insideSuite = job.suite;
      if (!restoreOnly && !(await run({ job, level: 'suite', verb: 'preparing', script: job.suite.prepare, debug: job.suite.debug }, 'suite-prepare-error', job))) {
        badSuite.set(job.suite, stopWhy!);
        stopWhy = undefined;
        // A hunt would hand this worker the same jobs again and again.
        if (input.hunt) badProject = true;
        continue;
      }
    }
    // Stopped while preparing: a shared run hands the job to another runner instead (a group, gathered, goes on).
    if (queue.stopping.aborted && queue.shared && !member && claim) {
      await queue.release(claim);
      claim = undefined;
      break;
    }
    if (member && input.groups) {
      badProject = await runGroupPart({
        member, link, env: w, endpoint: input.groups.endpoint, stopping: queue.stopping, run: runFull,
        scripts: { prepare: taskPrepare(job), restore: taskRestore(job), debug: taskDebug(job) },
        abended: () => abend, abend: () => { abend = true; },
      });
    } else {
      const task = await runTask(input, link, job, runFull, () => abend, () => { abend = held = true; });
      badProject = task !== undefined;
      stopWhy = task ?? stopWhy;
    }
  }
  if (abend && !held) stopWhy = { kind: 'abend', message: `not run: -abend stopped the worker on ${link.label} after a failure` };
  // The reason the system's jobs left over did not run, if no other worker runs them.
  if (stopWhy && (badProject || abend)) input.shared.gaveUp.set(`${input.system.backend}:${input.system.name}`, stopWhy);

  // A lost machine cannot be restored: it is discarded as it is.
  if (link.isLost) return queue.stopping.aborted ? 'stop' : 'replace';
  if (!abend && insideSuite && last) {
    await unwind({ job: last, level: 'suite', verb: 'restoring', script: insideSuite.restore, debug: insideSuite.debug }, 'suite-restore-error');
  }
  if (!abend && insideBackend && last) {
    await unwind({ job: last, level: 'backend', verb: 'restoring', script: last.backend.restore, debug: last.backend.debug }, 'backend-restore-error');
  }
  if (!abend && insideProject && last) {
    await unwind({ job: last, level: 'project', verb: 'restoring', script: last.project.restore, debug: last.project.debug }, 'project-restore-error');
  }
  if (link.isLost && !queue.stopping.aborted) return 'replace';
  return idle ? 'idle' : 'stop';
}

/**
 * The task and its repeats; a reason when its restore failed (the machine is
 * then not trusted) or a second signal killed it. Repeats stop at the first
 * failure, and at Ctrl-C. In a flake hunt (-repeat-until) this is one run,
 * and a failure that matches calls `hold` after the artifacts are fetched:
 * the machine is left as it is. A repeat counts as done once its restore
 * passed too, so the summary never calls successful a task whose restore
 * failed.
 */
async function runTask(input: WorkerInput, link: MachineLink, job: Job, run: (c: LevelCall) => Promise<LevelResult>, abended: () => boolean, hold: () => void): Promise<AbortReason | undefined> {
  const w = input.env;
  const hunt = input.hunt;
  const restoreOnly = w.options.interaction.kind === 'restore';
  const started = Date.now();
  w.emit({ type: 'job-start', job, machine: link.label });
  let debug = taskDebug(job);
  let outcome: Outcome = restoreOnly ? 'task-abort' : 'task-done';
  let stop: AbortReason | undefined;
  let matched = false;
  const ref = (verb: 'preparing' | 'executing') => ({ machine: link.label, job, level: 'task' as const, verb, context: job.name });
  /** A second signal killed the task's script: the job is cut, not failed. */
  const killed = (verb: string): void => {
    stop = { kind: 'error', message: `interrupted while ${verb} ${job.name}` };
    w.emit({ type: 'result', outcome: 'task-abort', job, why: stop });
    outcome = 'task-abort';
  };
  const limit = restoreOnly || hunt ? 0 : w.options.repeat;
  for (let left = limit; left >= 0; left--) {
    let passed = false;
    if (restoreOnly) {
      left = -1;
    } else {
      const prepared = await run({ job, level: 'task', verb: 'preparing', script: taskPrepare(job), debug });
      if (prepared.interrupted) {
        killed('preparing');
      } else if (!prepared.ok) {
        w.emit({ type: 'result', outcome: 'task-prepare-error', job });
        outcome = 'task-prepare-error';
        [debug, left] = ['', -1];
        matched = (await hunt?.ended(link, { ref: ref('preparing'), result: prepared })) === true;
      } else {
        const executed = await run({ job, level: 'task', verb: 'executing', script: job.task.execute, debug });
        if (executed.interrupted) {
          killed('executing');
        } else if (executed.ok) {
          passed = true;
        } else {
          w.emit({ type: 'result', outcome: 'task-error', job });
          outcome = 'task-error';
          [debug, left] = ['', -1];
        }
        if (!executed.interrupted) matched = (await hunt?.ended(link, { ref: ref('executing'), result: executed })) === true;
      }
    }
    if (input.queue.stopping.aborted || link.isLost || abended()) left = -1;
    if (!abended() && !restoreOnly && left <= 0 && !link.isLost) await fetchArtifacts(link, w, job);
    if (matched) hold();
    const restored = !abended() && !link.isLost ? await run({ job, level: 'task', verb: 'restoring', script: taskRestore(job), debug }) : undefined;
    if (restored && !restored.ok && !restored.interrupted) {
      w.emit({ type: 'result', outcome: 'task-restore-error', job });
      if (passed) outcome = 'task-restore-error';
      stop = { kind: 'error', message: `not run: restoring ${job.name} failed on ${link.label}: ${restored.reason ?? 'failed'}` };
      left = -1;
    } else if (passed) {
      w.emit({ type: 'result', outcome: 'task-done', job });
    }
  }
  w.emit({ type: 'job-end', job, machine: link.label, outcome, durationMs: Date.now() - started });
  return stop;
}
