#!/usr/bin/env node
/**
 * The `spread` command. Thin: parse flags, load the project, hand over to
 * -list or the runner, and turn errors into one line and an exit status
 * (1 for errors and unsuccessful runs, 2 for bad flags, as the original).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Reporter } from '../events.js';
import { parseTimeout, TIMEOUT_HINT } from '../project/duration.js';
import { jsonReporter } from '../report/json.js';
import { junitReporter } from '../report/junit.js';
import { htmlReporter } from '../report/html/reporter.js';
import { History, HISTORY_FILE } from '../run/history.js';
import type { JobHistory } from '../run/history.js';
import { ciMarkers } from '../report/ci-markers.js';
import type { LogMarkers } from '../report/ci-markers.js';
import { ConfigError, formatWarning } from '../project/errors.js';
import { parseFilter } from '../project/filter.js';
import { findProjectFile, loadProject } from '../project/load.js';
import { startHostShell } from '../run/host-command.js';
import { FlagError, formatUsage, parseFlags } from './flags.js';
import { listJobs } from './list.js';
import { runCommand } from './run.js';
import { interactiveShell, TerminalGate } from './shell.js';
import { StatusLine } from './status-line.js';
import { progressReporter } from '../report/progress.js';
import { toRunOptions, UsageError } from './options.js';
import { SPREAD_FLAGS, USAGE_LINE } from './spread-flags.js';
import { openQueue, summaryCommand } from './queue.js';

/** Modes that open shells, and so need a terminal. */
const INTERACTIVE: readonly string[] = ['debug', 'shell', 'shell-before', 'shell-after'];

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(SPREAD_FLAGS, argv);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n${formatUsage(SPREAD_FLAGS, USAGE_LINE)}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(formatUsage(SPREAD_FLAGS, USAGE_LINE));
    return 0;
  }
  const options = toRunOptions(parsed.values);
  const filter = parseFilter(parsed.positional);
  const host = startHostShell();
  const { project, warnings } = loadProject(findProjectFile(process.cwd()), { displayBase: process.cwd(), strict: parsed.values['strict'] === true });
  for (const w of warnings) process.stderr.write(`warning: ${formatWarning(w)}\n`);

  if (parsed.values['list'] === true) {
    process.stdout.write(await listJobs(project, filter, (cmd) => host.run(cmd)));
    return 0;
  }
  const queueUrl = typeof parsed.values['queue'] === 'string' && parsed.values['queue'] !== '' ? parsed.values['queue'] : undefined;
  if (parsed.values['summary'] === true && !queueUrl) throw new UsageError('-summary needs -queue=URL: the shared run to sum up');
  if (queueUrl && options.repeatUntil) throw new UsageError('cannot have both -repeat-until and -queue: a flake hunt runs on the machines of one runner');
  // Before anything is packed or allocated: an unreachable queue is one line.
  const sharedRun = queueUrl ? await openQueue(queueUrl, process.env) : undefined;
  if (sharedRun && parsed.values['summary'] === true) {
    try {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      return await summaryCommand({ project, run: sharedRun, write: (text) => process.stdout.write(text), reporters: [...fileReporters(parsed.values), ...htmlReporters(parsed.values, project.dir, options.history)], signal: stop.signal });
    } finally {
      await sharedRun.close();
    }
  }
  const interactive = INTERACTIVE.filter((name) => parsed.values[name] === true);
  if (interactive.length > 0 && !process.stdin.isTTY) {
    throw new UsageError(`-${interactive[0]} opens a shell and needs a terminal on stdin`);
  }
  const dialTimeoutMs = durationFromEnv('SPREAD_DIAL_TIMEOUT');
  const status = wantsStatusLine() ? new StatusLine(process.stdout) : undefined;
  const gate = status
    ? new TerminalGate(status.write, { hold: () => status.pause(), release: () => status.resume() })
    : new TerminalGate((text) => process.stdout.write(text));
  const reporters = [...fileReporters(parsed.values), ...htmlReporters(parsed.values, project.dir, options.history), ...(status ? [progressReporter(status.update)] : [])];
  let code: number;
  try {
    code = await runCommand({
    project, filter, options, host: (cmd) => host.run(cmd), write: gate.write, reporters,
    ...withMarkers(ciMarkers(process.env)),
    ...(dialTimeoutMs !== undefined ? { dialTimeoutMs } : {}),
    ...(interactive.length > 0 ? { openShell: interactiveShell(gate, process.stdin, process.stdout) } : {}),
    ...(sharedRun ? { sharedRun } : {}),
    });
  } finally {
    status?.close();
    await sharedRun?.close();
  }
  if (code !== 0) process.stderr.write('error: unsuccessful run\n');
  return code;
}

const withMarkers = (markers: LogMarkers | undefined) => (markers ? { markers } : {});

/** A live status line on an interactive terminal, unless CI or SPREAD_NO_PROGRESS says otherwise. */
const wantsStatusLine = (): boolean =>
  process.stdout.isTTY === true && process.env['CI'] !== 'true' && !process.env['SPREAD_NO_PROGRESS'] && process.env['TERM'] !== 'dumb';

/** -junit and -json: reports written when the run ends. */
function fileReporters(values: Record<string, unknown>): Reporter[] {
  const reporters: Reporter[] = [];
  const junit = values['junit'];
  const json = values['json'];
  if (typeof junit === 'string' && junit !== '') reporters.push(junitReporter((xml) => writeFileSync(junit, xml)));
  if (typeof json === 'string' && json !== '') reporters.push(jsonReporter((text) => writeFileSync(json, text)));
  return reporters;
}

/** -html: the report, with what history knew of each job before this run. */
function htmlReporters(values: Record<string, unknown>, projectDir: string, history: boolean): Reporter[] {
  const file = values['html'];
  if (typeof file !== 'string' || file === '') return [];
  const past = history ? History.load(join(projectDir, HISTORY_FILE)) : undefined;
  return [htmlReporter({
    file,
    write: (html) => {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, html);
    },
    ...(past ? { past: (name: string) => pastJob(past.past(name)) } : {}),
  })];
}

const pastJob = (h: JobHistory | undefined) => (h ? { recent: h.recent, ...(h.ms !== undefined ? { durationMs: h.ms } : {}) } : undefined);

/** A duration from the environment (`30s`, `2m`), or undefined when unset; a bad value is a usage error. */
function durationFromEnv(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const ms = parseTimeout(text);
  if (ms === undefined) throw new UsageError(`${name} ${TIMEOUT_HINT}, not ${JSON.stringify(text)}`);
  return ms;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
    } else {
      const e = err as Error;
      process.stderr.write(`error: ${e?.message ?? String(err)}\n`);
      if (process.env['SPREAD_DEBUG_STACK']) process.stderr.write(`${e?.stack}\n`);
    }
    process.exitCode = 1;
  },
);
