/**
 * One worker: one machine of one system, taking jobs from the shared
 * pending list until none is left for it. The prepare/restore nesting is the
 * original's (spec §5.3): project and backend prepare once per machine, the
 * suite prepare on entering a suite and its restore on leaving it, the
 * task's prepare/execute/restore for every job and repeat, and on the way
 * out suite, backend and project restore, using the last job's environment.
 */
import type { Backend } from '../backends/backend.js';
import type { Outcome } from '../events.js';
import type { Job, Suite, System } from '../project/types.js';
import { fetchArtifacts } from './artifacts.js';
import { runLevel } from './level-script.js';
import type { LevelCall, LevelResult, WorkerEnv } from './level-script.js';
import type { Claim } from '../store/store.js';
import type { JobQueue } from './job-queue.js';
import type { LinkShared, MachineLink } from './machine-link.js';
import { obtainMachine } from './machine-link.js';
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
  // A machine lost for good is let go and replaced, with fresh nesting state.
  // In a shared run, a worker whose jobs all went to other runners waits
  // without a machine for any of them that comes back (its runner lost).
  while (!input.queue.stopping.aborted && (await input.queue.awaitWork(input.system.backend, input.system.name))) {
    const link = await obtainMachine(input.shared, input.backend, input.system, input.index);
    if (!link) return;
    const end = await runOnMachine(input, link);
    await link.release();
    if (end === 'stop' || (end === 'idle' && !input.queue.shared)) return;
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
  const result = (outcome: Outcome, job: Job) => w.emit({ type: 'result', outcome, job });
  const runFull = async (call: LevelCall): Promise<LevelResult> => {
    const r = await runLevel(link, w, call);
    if (!r.ok && abendMode) abend = true;
    return r;
  };
  const run = async (call: LevelCall): Promise<boolean> => (await runFull(call)).ok;

  let abend = false;
  let badProject = false;
  const badSuite = new Set<Suite>();
  let insideProject = false;
  let insideBackend = false;
  let insideSuite: Suite | undefined;
  let claim: Claim | undefined;
  let last: Job | undefined;
  let idle = false;

  for (;;) {
    if (claim) {
      w.sequence.of(claim.job);
      if (!(await queue.finish(claim)) && queue.shared && !queue.store.lost.aborted) {
        w.emit({ type: 'log', level: 'info', message: `Results of ${claim.job.name} are not kept in the shared run: this runner no longer holds it.` });
      }
      claim = undefined;
    }
    if (badProject || abend || link.isLost || queue.stopping.aborted) break;
    claim = await queue.claim({ backend: input.system.backend, system: input.system.name, suite: insideSuite, last, order: input.order });
    if (!claim) {
      idle = true;
      break;
    }
    const job = claim.job;
    if (claim.lostRunner !== undefined) {
      w.emit({ type: 'job-retry', job, lostRunner: claim.lostRunner });
    }

    if (badSuite.has(job.suite)) {
      result('task-abort', job);
      continue;
    }
    if (insideSuite && insideSuite !== job.suite) {
      if (!(await run({ job: last!, level: 'suite', verb: 'restoring', script: insideSuite.restore, debug: insideSuite.debug }))) {
        result('suite-restore-error', last!);
        result('task-abort', job);
        badProject = true;
        continue;
      }
      insideSuite = undefined;
    }
    last = job;
    if (!insideProject) {
      insideProject = true;
      if (!restoreOnly && !(await run({ job, level: 'project', verb: 'preparing', script: job.project.prepare, debug: job.project.debug }))) {
        result('project-prepare-error', job);
        result('task-abort', job);
        badProject = true;
        continue;
      }
      insideBackend = true;
      if (!restoreOnly && !(await run({ job, level: 'backend', verb: 'preparing', script: job.backend.prepare, debug: job.backend.debug }))) {
        result('backend-prepare-error', job);
        result('task-abort', job);
        badProject = true;
        continue;
      }
    }
    if (insideSuite !== job.suite) {
      insideSuite = job.suite;
      if (!restoreOnly && !(await run({ job, level: 'suite', verb: 'preparing', script: job.suite.prepare, debug: job.suite.debug }))) {
        result('suite-prepare-error', job);
        result('task-abort', job);
        badSuite.add(job.suite);
        // A hunt would hand this worker the same jobs again and again.
        if (input.hunt) badProject = true;
        continue;
      }
    }
    // Stopped while preparing: a shared run hands the job to another runner instead.
    if (queue.stopping.aborted && queue.shared) {
      await queue.release(claim);
      claim = undefined;
      break;
    }
    // A flake hunt's match leaves the machine as it is: nothing more runs or is restored there.
    badProject = await runTask(input, link, job, runFull, () => abend, () => void (abend = true));
  }

  // A lost machine cannot be restored: it is discarded as it is.
  if (link.isLost) return queue.stopping.aborted ? 'stop' : 'replace';
  if (!abend && insideSuite && last) {
    if (!(await run({ job: last, level: 'suite', verb: 'restoring', script: insideSuite.restore, debug: insideSuite.debug }))) result('suite-restore-error', last);
  }
  if (!abend && insideBackend && last) {
    if (!(await run({ job: last, level: 'backend', verb: 'restoring', script: last.backend.restore, debug: last.backend.debug }))) result('backend-restore-error', last);
  }
  if (!abend && insideProject && last) {
    if (!(await run({ job: last, level: 'project', verb: 'restoring', script: last.project.restore, debug: last.project.debug }))) result('project-restore-error', last);
  }
  if (link.isLost && !queue.stopping.aborted) return 'replace';
  return idle ? 'idle' : 'stop';
}

/**
 * The task and its repeats; true when its restore failed (the machine is
 * then not trusted). Repeats stop at the first failure, and at Ctrl-C. In a
 * flake hunt (-repeat-until) this is one run, and a failure that matches
 * calls `hold`: the machine is left as it is.
 */
async function runTask(input: WorkerInput, link: MachineLink, job: Job, run: (c: LevelCall) => Promise<LevelResult>, abended: () => boolean, hold: () => void): Promise<boolean> {
  const w = input.env;
  const hunt = input.hunt;
  const restoreOnly = w.options.interaction.kind === 'restore';
  const started = Date.now();
  w.emit({ type: 'job-start', job, machine: link.label });
  let debug = taskDebug(job);
  let outcome: 'task-done' | 'task-error' | 'task-prepare-error' | 'task-abort' = restoreOnly ? 'task-abort' : 'task-done';
  let badProject = false;
  let matched = false;
  const ref = (verb: 'preparing' | 'executing') => ({ machine: link.label, job, level: 'task' as const, verb, context: job.name });
  const limit = restoreOnly || hunt ? 0 : w.options.repeat;
  for (let left = limit; left >= 0; left--) {
    if (restoreOnly) {
      left = -1;
    } else {
      const prepared = await run({ job, level: 'task', verb: 'preparing', script: taskPrepare(job), debug });
      if (!prepared.ok) {
        w.emit({ type: 'result', outcome: 'task-prepare-error', job });
        w.emit({ type: 'result', outcome: 'task-abort', job });
        outcome = 'task-prepare-error';
        [debug, left] = ['', -1];
        matched = (await hunt?.ended(link, { ref: ref('preparing'), result: prepared })) === true;
      } else {
        const executed = await run({ job, level: 'task', verb: 'executing', script: job.task.execute, debug });
        if (executed.ok) {
          w.emit({ type: 'result', outcome: 'task-done', job });
        } else {
          w.emit({ type: 'result', outcome: 'task-error', job });
          outcome = 'task-error';
          [debug, left] = ['', -1];
        }
        matched = (await hunt?.ended(link, { ref: ref('executing'), result: executed })) === true;
      }
    }
    if (input.queue.stopping.aborted || link.isLost || abended()) left = -1;
    if (!abended() && !restoreOnly && left <= 0 && !link.isLost) await fetchArtifacts(link, w, job);
    if (matched) hold();
    if (!abended() && !link.isLost && !(await run({ job, level: 'task', verb: 'restoring', script: taskRestore(job), debug })).ok) {
      w.emit({ type: 'result', outcome: 'task-restore-error', job });
      badProject = true;
      left = -1;
    }
  }
  w.emit({ type: 'job-end', job, machine: link.label, outcome, durationMs: Date.now() - started });
  return badProject;
}
