/**
 * Running one script of one level for one job on a worker's machine, as the
 * original's Runner.run does: events around it, the REBOOT loop, the debug
 * script after a failure, and the interactive hooks of -debug and -shell.
 */
import type { Emit, ScriptError, ScriptRef, Verb } from '../events.js';
import type { Output } from '../output.js';
import { EMPTY_OUTPUT, isEmptyOutput, joinOutputs, outputOf } from '../output.js';
import type { Evaluated } from '../project/evaluate.js';
import { setVar } from '../project/env.js';
import { jobEnv } from '../project/job-env.js';
import type { Env, Job, Level } from '../project/types.js';
import { runScript } from '../remote/run-script.js';
import type { ScriptEnd } from '../remote/run-script.js';
import { renderScript } from '../remote/script.js';
import { ConnectionLostError } from '../remote/session.js';
import type { MachineLink } from './machine-link.js';
import type { RunOptions } from './options.js';
import { timeoutsFor } from '../project/timeouts.js';

const MAX_REBOOTS = 10;

/** Numbers jobs in the order they first execute (or finish without executing): the "(k/N)" of the log. */
export class Sequence {
  private readonly numbers = new Map<Job, number>();
  constructor(readonly total: number) {}
  of(job: Job): number {
    let n = this.numbers.get(job);
    if (n === undefined) this.numbers.set(job, (n = this.numbers.size + 1));
    return n;
  }
}

/** An interactive shell on the machine, for -debug and -shell modes (wired by the CLI); `sync`: with the sync helpers. */
export type OpenShell = (o: { link: MachineLink; job: Job; dir: string; env: Env; why: string; sync?: boolean }) => Promise<void>;

export interface WorkerEnv {
  readonly emit: Emit;
  readonly options: RunOptions;
  readonly evaluated: Evaluated;
  readonly sequence: Sequence;
  /** Aborted on a second Ctrl-C: running scripts are killed. */
  readonly abort: AbortSignal;
  readonly openShell?: OpenShell;
}

export interface LevelCall {
  readonly job: Job;
  readonly level: Level;
  readonly verb: Verb;
  readonly script: string;
  /** Run (traced) after a failure; '' for none. */
  readonly debug: string;
  /** A task script of one instance of a multi-machine job (run/group.ts). */
  readonly instance?: InstanceCall;
}

/** A script run for one instance of a multi-machine job, at any level. */
export interface InstanceCall {
  /** SPREAD_INSTANCE and friends. */
  readonly vars: Env;
  /** Task scripts: shown instead of the job name, `<job> instance 2/3`. */
  readonly context?: string;
  /** Which instance, from 1 (its scripts get a -logs file of their own). */
  readonly instance?: number;
  /** Task scripts: the sync helpers' variables on the link's current session (a reboot changes it). */
  readonly syncEnv?: (link: MachineLink) => Promise<Env>;
  /** Whether -debug/-shell shells open on this instance (-instance picks one). @default true */
  readonly interactive?: boolean;
}

export interface LevelResult {
  readonly ok: boolean;
  readonly output: Output;
  readonly error?: ScriptError;
  /** The failure in one line (for reports). */
  readonly reason?: string;
  /** Killed by a second signal: the script did not fail on its own. */
  readonly interrupted?: boolean;
}

export const contextOf = (job: Job, level: Level): string =>
  level === 'task' ? job.name : level === 'suite' ? `${job.backend.name}:${job.system.name}:${job.suite.name}` : `${job.backend.name}:${job.system.name}`;

/** Project and backend scripts run in the project dir; suite and task scripts in the task's. */
export const dirOf = (link: MachineLink, job: Job, level: Level): string =>
  level === 'project' || level === 'backend' ? link.remotePath : `${link.remotePath}/${job.task.name}`;

export async function runLevel(link: MachineLink, w: WorkerEnv, call: LevelCall): Promise<LevelResult> {
  const script = call.script.trim();
  if (script === '') return { ok: true, output: EMPTY_OUTPUT };
  const { job, level, verb } = call;
  const ref: ScriptRef = {
    machine: link.label, job, level, verb, context: call.instance?.context ?? contextOf(job, level), worker: link.worker,
    // The original's naming (an adhoc machine by its system) for what the original has; instances of a
    // multi-machine job, which it has not, are told apart by their machines.
    ...(link.logLabel !== link.label && !call.instance ? { label: link.logLabel } : {}),
    ...(call.instance?.instance !== undefined ? { instance: call.instance.instance } : {}),
  };
  // After a second signal nothing new starts, restores included: the run is being cut short.
  if (w.abort.aborted) {
    w.emit({ type: 'log', level: 'verbose', message: `Skipping ${verb} ${ref.context} (${ref.machine}): interrupted.` });
    return { ok: false, output: EMPTY_OUTPUT, error: { message: 'interrupted' }, reason: 'interrupted', interrupted: true };
  }
  const dir = dirOf(link, job, level);
  // SPREAD_PATH is the project's path on this machine.
  const env = jobEnv(job, w.evaluated, link.remotePath, call.instance?.vars);
  const interaction = call.instance?.interactive === false ? { kind: 'none' as const } : w.options.interaction;
  const around = interaction.kind === 'shell-around' ? interaction : { before: false, after: false };
  const sequence = verb === 'executing' ? { index: w.sequence.of(job), total: w.sequence.total } : undefined;
  w.emit({ type: 'script-start', ...ref, script, env, ...(sequence ? { sequence } : {}) });

  if (verb === 'executing' && (interaction.kind === 'shell' || around.before)) {
    await shell(link, w, job, dir, env, `Starting shell instead of ${verb} ${ref.context}...`, call.instance);
    if (interaction.kind === 'shell') {
      w.emit({ type: 'script-end', ...ref, ok: true, durationMs: 0, output: EMPTY_OUTPUT });
      return { ok: true, output: EMPTY_OUTPUT };
    }
  }

  const started = Date.now();
  const { warnMs, killMs } = timeoutsFor(job, level);
  const result = await runWithReboots(link, w, ref, { script, dir, env, warnMs, killMs, ...(call.instance?.syncEnv ? { syncEnv: call.instance.syncEnv } : {}) });
  w.emit({
    type: 'script-end', ...ref, ok: result.ok, durationMs: Date.now() - started, output: result.output,
    ...(result.error !== undefined ? { error: result.error } : {}), ...(result.reason !== undefined ? { reason: result.reason } : {}),
  });

  if (!result.ok) {
    if (call.debug.trim() !== '' && !link.isLost && !w.abort.aborted) await runDebug(link, w, ref, { script: call.debug, dir, env, warnMs, killMs });
    if (interaction.kind === 'debug' || around.after) await shell(link, w, job, dir, env, 'Starting shell to debug...', call.instance);
  } else if (verb === 'executing' && around.after) {
    await shell(link, w, job, dir, env, `Starting shell after ${verb} ${ref.context}...`, call.instance);
  }
  return result;
}

export async function shell(link: MachineLink, w: WorkerEnv, job: Job, dir: string, env: Env, why: string, instance?: InstanceCall): Promise<void> {
  if (!w.openShell || link.isLost) return;
  w.emit({ type: 'log', level: 'info', message: why });
  try {
    // An instance's shell has the sync helpers, so a person can play its part.
    const synced = instance?.syncEnv ? [...env, ...(await instance.syncEnv(link))] : env;
    await w.openShell({ link, job, dir, env: synced, why, ...(instance?.syncEnv ? { sync: true } : {}) });
  } catch (err) {
    w.emit({ type: 'log', level: 'info', message: `Error running debug shell: ${(err as Error).message}` });
  }
  w.emit({ type: 'log', level: 'info', message: 'Continuing...' });
}

interface Prepared {
  readonly script: string;
  readonly dir: string;
  readonly env: Env;
  readonly warnMs: number;
  readonly killMs: number;
  /** Multi-machine jobs: the sync helpers and their variables, asked for on each (re)run. */
  readonly syncEnv?: (link: MachineLink) => Promise<Env>;
}

/** The script, run again after each REBOOT with SPREAD_REBOOT set to the key or the count (spec §5.5). */
async function runWithReboots(link: MachineLink, w: WorkerEnv, ref: ScriptRef, p: Prepared): Promise<LevelResult> {
  const outputs: Output[] = [];
  const where = `${ref.label ?? ref.machine} (${ref.context})`;
  let key = '';
  for (let reboot = 0; ; reboot++) {
    if (key === '') key = String(reboot);
    let end: ScriptEnd;
    let env = p.env;
    if (p.syncEnv) {
      try {
        env = [...env, ...(await p.syncEnv(link))];
      } catch (err) {
        return { ok: false, output: joinOutputs(outputs), error: { message: (err as Error).message } };
      }
    }
    try {
      end = await runScript({
        session: link.session,
        script: renderScript({ script: p.script, dir: p.dir, env: setVar(env, 'SPREAD_REBOOT', key), sudo: link.sudo, sync: p.syncEnv !== undefined }),
        warnMs: p.warnMs,
        killMs: p.killMs,
        signal: w.abort,
        onWarn: (output) => w.emit({ type: 'script-warn', ...ref, output }),
        onOutput: (chunk) => w.emit({ type: 'script-output', ...ref, chunk }),
      });
    } catch (err) {
      // Whatever happened to the machine, this script failed and the worker goes on.
      if (!(err instanceof ConnectionLostError)) return { ok: false, output: joinOutputs(outputs), error: { message: (err as Error).message } };
      outputs.push(outputOf(`<connection to ${link.name} lost>`));
      await link.recover();
      const lost = `connection to ${link.name} lost`;
      return { ok: false, output: joinOutputs(outputs), error: { message: lost }, reason: lost };
    }
    outputs.push(end.output);
    const output = joinOutputs(outputs);
    if (end.kind === 'ok') return { ok: true, output };
    if (end.kind === 'error') return { ok: false, output, error: { message: end.message }, reason: end.message };
    if (end.kind === 'failed') {
      const reason = end.stopped === 'kill-timeout' ? 'kill-timeout reached' : end.stopped === 'interrupted' ? 'interrupted' : `exit status ${end.exitCode}`;
      return { ok: false, output, error: { exitCode: end.exitCode }, reason, ...(end.stopped === 'interrupted' ? { interrupted: true } : {}) };
    }
    if (reboot >= MAX_REBOOTS + 1) {
      const error = `rebooted on ${where} more than ${MAX_REBOOTS} times`;
      return { ok: false, output, error: { message: error }, reason: error };
    }
    w.emit({ type: 'reboot', ...ref, phase: 'requested' });
    key = end.key;
    try {
      await link.reboot(where, p.warnMs, p.killMs, () => w.emit({ type: 'reboot', ...ref, phase: 'slow' }));
    } catch (err) {
      return { ok: false, output, error: { message: (err as Error).message }, reason: (err as Error).message };
    }
  }
}

async function runDebug(link: MachineLink, w: WorkerEnv, ref: ScriptRef, p: Prepared): Promise<void> {
  try {
    const end = await runScript({
      session: link.session,
      script: renderScript({ script: p.script, dir: p.dir, env: setVar(p.env, 'SPREAD_REBOOT', '0'), sudo: link.sudo }),
      warnMs: p.warnMs,
      killMs: p.killMs,
      signal: w.abort,
    });
    if (end.kind === 'ok') {
      if (!isEmptyOutput(end.output)) w.emit({ type: 'debug-output', ...ref, output: end.output });
    } else {
      const error: ScriptError = end.kind === 'error' ? { message: end.message } : end.kind === 'failed' ? { exitCode: end.exitCode } : { message: 'reboot requested in a debug script' };
      w.emit({ type: 'debug-output', ...ref, output: end.output, error });
    }
  } catch (err) {
    w.emit({ type: 'debug-output', ...ref, output: EMPTY_OUTPUT, error: { message: (err as Error).message } });
    if (err instanceof ConnectionLostError) await link.recover();
  }
}
