/**
 * The contract between the code that runs jobs (run/, remote/, backends/),
 * which emits these events, and the reporters (report/), which consume them.
 * It imports only project types, so neither side ever reaches into the other.
 * Events carry everything a reporter needs: a reporter never sees the runner.
 */
import type { Output } from './output.js';
import { isEmptyOutput, isMultiline, outputBytes, outputText } from './output.js';
import type { Env, Job, Level } from './project/types.js';

export type Verb = 'preparing' | 'executing' | 'restoring';
export type LogLevel = 'info' | 'verbose' | 'debug';

/** The summary categories of the original (spec §6), in display order. */
export const OUTCOMES = [
  'task-done', 'task-abort', 'task-error', 'task-prepare-error', 'task-restore-error',
  'suite-prepare-error', 'suite-restore-error', 'backend-prepare-error', 'backend-restore-error',
  'project-prepare-error', 'project-restore-error',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** A script run at some level for some job, on some machine. */
export interface ScriptRef {
  /** Machine label, e.g. `spread-1-ubuntu-16-04` or `127.0.0.1:2222`. */
  readonly machine: string;
  readonly job: Job;
  readonly level: Level;
  readonly verb: Verb;
  /** `backend:system`, `backend:system:suite/` or the job name, by level. */
  readonly context: string;
  /**
   * How the log names the machine when that differs from `machine`: an
   * adhoc machine is named by its system, as in the original.
   */
  readonly label?: string;
  /** The worker running it, from 1 within its system. */
  readonly worker?: number;
  /** The instance of a multi-machine job it belongs to, from 1. */
  readonly instance?: number;
}

/**
 * Why a job ends without having run to its end (on its `task-abort`
 * result): `interrupted` (a signal or a lost stdout before it started),
 * `abend` (-abend stopped its worker), or `error` (an infrastructure failure:
 * allocation, connection, a prepare or restore above the task, a lost
 * worker, a script killed by a second signal).
 */
export interface AbortReason {
  readonly kind: 'interrupted' | 'abend' | 'error';
  /** One line, e.g. `not run: cannot allocate lxd:ubuntu-22.04: quota exceeded`. */
  readonly message: string;
}

export type MachineAction =
  | 'allocating' | 'allocated' | 'connecting' | 'connected' | 'reusing'
  | 'sending' | 'reusing-data' | 'discarding' | 'keeping' | 'reconnected';

export type RunEvent =
  /** A line for people that needs no structure (the original's one-off messages). */
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string }
  | { readonly type: 'run-start'; readonly jobs: readonly Job[]; readonly workers: number; readonly seed: number }
  | { readonly type: 'machine'; readonly action: MachineAction; readonly machine: string; readonly address?: string; readonly system: string }
  | (ScriptRef & {
    readonly type: 'script-start';
    readonly script: string;
    /** The environment exported before the script (secrets included: shown at -vv only). */
    readonly env: Env;
    readonly sequence?: { readonly index: number; readonly total: number };
  })
  /** Output bytes as they arrive, all of them (only `-logs` keeps them whole). */
  | (ScriptRef & { readonly type: 'script-output'; readonly chunk: Buffer })
  /** warn-timeout: the output since the last warning (`undefined` = unchanged, empty = still empty). */
  | (ScriptRef & { readonly type: 'script-warn'; readonly output: Buffer | undefined })
  | (ScriptRef & {
    readonly type: 'script-end';
    readonly ok: boolean;
    readonly durationMs: number;
    /** Trimmed, bounded (see output.ts); after reboots, every run's output. */
    readonly output: Output;
    /** Why it failed (see errorText); absent when ok. */
    readonly error?: ScriptError;
    /** The failure in one line: `exit status 1`, an ERROR message, `kill-timeout reached`... */
    readonly reason?: string;
  })
  /** The debug script's result after a failure. */
  | (ScriptRef & { readonly type: 'debug-output'; readonly output: Output; readonly error?: ScriptError })
  | (ScriptRef & { readonly type: 'reboot'; readonly phase: 'requested' | 'slow' })
  | { readonly type: 'job-start'; readonly job: Job; readonly machine: string }
  /** A job ran (its last repeat ended); failures are in its `script-end` events. */
  | { readonly type: 'job-end'; readonly job: Job; readonly machine: string; readonly outcome: Outcome; readonly durationMs: number }
  /** One entry of the summary; a job may get several (a done per repeat, an abort after a prepare error). */
  | { readonly type: 'result'; readonly outcome: Outcome; readonly job: Job; readonly why?: AbortReason }
  | { readonly type: 'artifacts'; readonly job: Job; readonly dir: string; readonly error?: string }
  /**
   * A flake hunt (-repeat-until): a run failed. A failure that matches ends
   * the hunt (and is the one reports record); one that does not has its
   * output saved to `file` and the hunt goes on.
   */
  | (ScriptRef & {
    readonly type: 'hunt-failure';
    /** The run's number within the hunt, from 1. */
    readonly run: number;
    readonly matched: boolean;
    readonly error: string;
    /** The failure in one line, as in `script-end`. */
    readonly reason?: string;
    readonly output: string;
    readonly file?: string;
  })
  /** The flake hunt is over: after a match, or with no match when the runs ran out or the run was stopped. */
  | {
    readonly type: 'hunt-end';
    /** Runs that ended, on every machine, and how many of them failed. */
    readonly runs: number;
    readonly failures: number;
    readonly machines: number;
    /** From the start of the hunt to the match, or to its end. */
    readonly durationMs: number;
    /** Where failures were saved. */
    readonly dir: string;
    readonly match?: {
      readonly job: Job;
      readonly machine: string;
      /** The task's directory on that machine, as a .tar.gz (absent when it could not be fetched). */
      readonly workdir?: string;
      /** Recorded in `.spread-reuse.yaml`, for `spread -reuse -shell <job>`. */
      readonly kept: boolean;
    };
  }
  /** A shared run (-queue) lost the runner that ran this job; it went back to the queue and runs again. */
  | { readonly type: 'job-retry'; readonly job: Job; readonly lostRunner: string }
  | { readonly type: 'run-end'; readonly interrupted: boolean };

/**
 * Why a script failed, as the original prints it after
 * "Error <verb> <ctx> (<machine>) : ": a message of its own, or the
 * script's output (the usual case), which errorText/errorBytes shape.
 */
export type ScriptError =
  /** The ERROR helper's message, a reboot that never came back, a lost connection... */
  | { readonly message: string }
  /** The output is the message (framed by dashes when it has several lines); when empty, the exit status. */
  | { readonly exitCode: number };

const exitMessage = (exitCode: number): string => `Process exited with status ${exitCode}`;

/** The failure as text (for reports that cannot carry bytes): see outputText. */
export function errorText(error: ScriptError, output: Output, see?: string): string {
  if ('message' in error) return error.message;
  if (isEmptyOutput(output)) return exitMessage(error.exitCode);
  const text = outputText(output, see);
  return isMultiline(output) ? `\n-----\n${text}\n-----` : text;
}

/** The failure as the exact bytes to print (console, logs). */
export function errorBytes(error: ScriptError, output: Output, see?: string): Buffer {
  if ('message' in error) return Buffer.from(error.message);
  if (isEmptyOutput(output)) return Buffer.from(exitMessage(error.exitCode));
  const bytes = outputBytes(output, see);
  return isMultiline(output) ? Buffer.concat([Buffer.from('\n-----\n'), bytes, Buffer.from('\n-----')]) : bytes;
}

export type EventType = RunEvent['type'];
export type EventOf<T extends EventType> = Extract<RunEvent, { type: T }>;
export type Stamped<E extends RunEvent = RunEvent> = E & { readonly at: number };

/** A consumer of events: a plain object of optional handlers keyed by type. */
export type Reporter = { readonly [T in EventType]?: (event: Stamped<EventOf<T>>) => void | Promise<void> } & {
  close?(): void | Promise<void>;
};

export type Emit = (event: RunEvent) => void;

/** Fan events out to reporters in order, stamping each with its time. */
export function fanOut(reporters: readonly Reporter[], now: () => number = Date.now): Emit {
  return (event) => {
    const stamped = { ...event, at: now() } as Stamped;
    for (const r of reporters) {
      const handler = r[event.type] as ((e: Stamped) => void | Promise<void>) | undefined;
      if (handler) void handler.call(r, stamped);
    }
  };
}
