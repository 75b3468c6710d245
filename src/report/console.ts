/**
 * The console log: the original's lines, word for word where users grep for
 * them, each stamped `YYYY-MM-DD HH:MM:SS` (local time), multi-line messages
 * with raw continuation lines. -v adds progress details, -vv every script
 * and its output. The summary closes the run.
 */
import { join } from 'node:path';
import type { Reporter, RunEvent, ScriptRef, Stamped, Verb } from '../events.js';
import { errorBytes } from '../events.js';
import { escapeBytes, isEmptyOutput, lateOutput, outputBytes } from '../output.js';
import { exportLine } from '../project/env.js';
import { logPath } from './log-names.js';
import type { LogMarkers } from './ci-markers.js';
import { retryLines, summarize, summaryLines } from './summary.js';
import type { Job } from '../project/types.js';

export interface ConsoleOptions {
  /** Gets the exact bytes of script output (never decoded), strings for the rest. */
  readonly write: (text: string | Uint8Array) => void;
  readonly verbosity: 0 | 1 | 2;
  /** Print the summary at the end (not for -discard and -gc). @default true */
  readonly summary?: boolean;
  /** The -logs directory: failures say which file has the full output. */
  readonly logs?: string;
  /** Folds and annotations for a CI's log viewer (GitHub Actions, Travis). */
  readonly markers?: LogMarkers;
}

const pad = (n: number): string => String(n).padStart(2, '0');

export function timestamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const TITLE: Record<Verb, string> = { preparing: 'Preparing', executing: 'Executing', restoring: 'Restoring' };
const MACHINE: Record<string, (e: { machine: string; address?: string }) => string | undefined> = {
  allocating: (e) => `Allocating ${e.machine}...`,
  allocated: () => undefined,
  connecting: (e) => `Connecting to ${e.machine}...`,
  connected: (e) => `Connected to ${e.machine} at ${e.address}.`,
  reusing: (e) => `Reusing ${e.machine}...`,
  sending: (e) => `Sending project content to ${e.machine}...`,
  'reusing-data': (e) => `Reusing project data on ${e.machine}...`,
  discarding: (e) => `Discarding ${e.machine}...`,
  keeping: (e) => `Keeping ${e.machine} at ${e.address}`,
  reconnected: (e) => `Reconnected to ${e.machine}.`,
};


export function consoleReporter(o: ConsoleOptions): Reporter {
  const results: RunEvent[] = [];
  const retried: Job[] = [];
  const print = (at: number, message: string | readonly (string | Buffer)[], level = 0) => {
    if (level > o.verbosity) return;
    if (typeof message === 'string') o.write(`${timestamp(at)} ${message}\n`);
    else o.write(Buffer.concat([Buffer.from(`${timestamp(at)} `), ...message.map((m) => (typeof m === 'string' ? Buffer.from(m) : m)), Buffer.from('\n')]));
  };
  /** The machine as the original's log names it (an adhoc machine by its system). */
  const shown = (e: { machine: string; label?: string }) => e.label ?? e.machine;
  const where = (e: { machine: string; label?: string; context: string }) => `${shown(e)} (${e.context})`;
  const logOf = (e: ScriptRef): string | undefined => (o.logs === undefined ? undefined : join(o.logs, logPath(e)));
  const mark = o.markers;
  const scriptKey = (e: { machine: string; context: string; verb: Verb }) => `${e.machine}\0${e.context}\0${e.verb}`;
  // A failure: its exact bytes on a plain log; as text through a CI's markers, which annotate it.
  const fail = (at: number, message: readonly (string | Buffer)[], f: { context: string; startedAt?: number; debug?: boolean }) => {
    if (!mark) return print(at, message);
    const text = escapeBytes(Buffer.concat(message.map((m) => (typeof m === 'string' ? Buffer.from(m) : m))));
    o.write(mark.failure({ at, message: text, text: `${timestamp(at)} ${text}\n`, ...f }));
  };
  return {
    log: (e) => print(e.at, e.message, e.level === 'info' ? 0 : e.level === 'verbose' ? 1 : 2),
    machine: (e) => {
      const message = MACHINE[e.action]?.(e);
      if (message) print(e.at, message);
    },
    'script-start': (e) => {
      const seq = e.sequence ? ` (${e.sequence.index}/${e.sequence.total})` : '';
      if (mark) o.write(mark.scriptStart({ at: e.at, key: scriptKey(e) }));
      print(e.at, `${TITLE[e.verb]} ${e.context} (${shown(e)})${seq}...`);
      if (o.verbosity >= 2) print(e.at, `Sending script for ${where(e)}:\n-----\n${e.env.map(exportLine).join('\n')}\n\n${e.script}\n------`, 2);
    },
    'script-warn': (e) => print(e.at, [`WARNING: ${where(e)} running late. `, lateOutput(e.output)]),
    'script-end': (e) => {
      const log = logOf(e);
      if (!isEmptyOutput(e.output)) print(e.at, [`Output from running script on ${where(e)}:\n-----\n`, outputBytes(e.output, log), '\n-----'], 2);
      if (mark) o.write(mark.scriptEnd({ at: e.at, key: scriptKey(e) }));
      if (e.ok) return;
      fail(e.at, [`Error ${e.verb} ${e.context} (${shown(e)}) : `, e.error ? errorBytes(e.error, e.output, log) : ''], { context: e.context, startedAt: e.at - e.durationMs });
      if (log !== undefined) print(e.at, `Full log of ${e.verb} ${e.context}: ${log}`);
    },
    'debug-output': (e) => {
      if (e.error !== undefined) fail(e.at, [`Error debugging ${e.context} (${shown(e)}) : `, errorBytes(e.error, e.output)], { context: e.context, debug: true });
      else fail(e.at, [`Debug output for ${e.context} (${shown(e)}) : `, errorBytes({ exitCode: 0 }, e.output)], { context: e.context, debug: true });
    },
    reboot: (e) => print(e.at, e.phase === 'requested' ? `Rebooting on ${where(e)} as requested...` : `Reboot on ${where(e)} is taking a while...`),
    result: (e) => void results.push(e),
    'job-retry': (e) => {
      retried.push(e.job);
      print(e.at, `Running ${e.job.name} again: its runner ${e.lostRunner} was lost.`);
    },
    'run-end': (e: Stamped<Extract<RunEvent, { type: 'run-end' }>>) => {
      if (o.summary === false) return;
      for (const line of [...summaryLines(summarize(results)), ...retryLines(retried)]) print(e.at, line);
    },
  };
}
