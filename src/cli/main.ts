#!/usr/bin/env node
/**
 * The `spread` command. Thin: parse flags, load the project, hand over to
 * -list or the runner, and turn errors into one line and an exit status
 * (1 for errors and unsuccessful runs, 2 for bad flags, as the original).
 */
import { join } from 'node:path';
import { parseTimeout, TIMEOUT_HINT } from '../project/duration.js';
import { ConfigError, formatWarning } from '../project/errors.js';
import { parseFilter } from '../project/filter.js';
import { findProjectFile, loadProject } from '../project/load.js';
import { startHostShell } from '../run/host-command.js';
import { FlagError, formatUsage, parseFlags } from './flags.js';
import { markRunStarted } from './launch.js';
import { listJobs } from './list.js';
import { toRunOptions, UsageError } from './options.js';
import { SPREAD_FLAGS, USAGE_LINE } from './spread-flags.js';
import type { Stopper } from './stopper.js';
import type { PastJobs } from './report-files.js';
// What only a run needs (the runner, SSH, tar, Redis, the reporters) is imported
// when a run starts, so -list, -h and -version never load it (see bench/startup.ts).

/**
 * stdout and stderr as the rest of main uses them: once the reader is gone
 * (EPIPE: `spread | head`), writes are dropped instead of crashing, and the
 * run is told its output is lost (it stops as after a first Ctrl-C).
 */
const open = { stdout: true, stderr: true };
let onOutputLost = (): void => {};
for (const name of ['stdout', 'stderr'] as const) {
  process[name].on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    open[name] = false;
    if (name === 'stdout') onOutputLost();
  });
}
const out = (text: string | Uint8Array): void => {
  if (open.stdout) process.stdout.write(text);
};
const err = (text: string): void => {
  if (open.stderr) process.stderr.write(text);
};
/** Set once a run can be stopped: after it, main exits as soon as it is done. */
let stopper: Stopper | undefined;

/** Modes that open shells, and so need a terminal. */
const INTERACTIVE: readonly string[] = ['debug', 'shell', 'shell-before', 'shell-after'];

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(SPREAD_FLAGS, argv);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    err(`${error.message}\n${formatUsage(SPREAD_FLAGS, USAGE_LINE)}`);
    return 2;
  }
  if (parsed.help) {
    out(formatUsage(SPREAD_FLAGS, USAGE_LINE));
    return 0;
  }
  if (parsed.values['version'] === true) {
    out(`spread-ts ${(await import('./version.js')).spreadVersion()}\n`);
    return 0;
  }
  const options = toRunOptions(parsed.values);
  const filter = parseFilter(parsed.positional);
  const host = startHostShell();
  const { project, warnings } = loadProject(findProjectFile(process.cwd()), { displayBase: process.cwd(), strict: parsed.values['strict'] === true });
  for (const w of warnings) err(`warning: ${formatWarning(w)}\n`);

  if (parsed.values['list'] === true) {
    out(await listJobs(project, filter, (cmd) => host.run(cmd)));
    return 0;
  }
  const queueUrl = typeof parsed.values['queue'] === 'string' && parsed.values['queue'] !== '' ? parsed.values['queue'] : undefined;
  if (parsed.values['summary'] === true && !queueUrl) throw new UsageError('-summary needs -queue=URL: the shared run to sum up');
  if (queueUrl && options.repeatUntil) throw new UsageError('cannot have both -repeat-until and -queue: a flake hunt runs on the machines of one runner');
  // Before anything is packed or allocated: an unreachable queue is one line.
  const queue = queueUrl ? await import('./queue.js') : undefined;
  const { reportFiles } = await import('./report-files.js');
  const past = await pastJobs(project.dir, options.history);
  const sharedRun = queueUrl ? await queue!.openQueue(queueUrl, process.env) : undefined;
  if (sharedRun && parsed.values['summary'] === true) {
    try {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      return await queue!.summaryCommand({ project, run: sharedRun, write: out, reporters: reportFiles(parsed.values, process.cwd(), past).reporters, signal: stop.signal });
    } finally {
      await sharedRun.close();
    }
  }
  const [{ runCommand }, { interactiveShell, TerminalGate }, { StatusLine }, { progressReporter }, { EPIPE_STATUS, Stopper }, { STOP_GRACE_MS }] = await Promise.all([
    import('./run.js'), import('./shell.js'), import('./status-line.js'), import('../report/progress.js'), import('./stopper.js'), import('../run/runner.js'),
  ]);
  markRunStarted();
  const interactive = INTERACTIVE.filter((name) => parsed.values[name] === true);
  if (interactive.length > 0 && !process.stdin.isTTY) {
    throw new UsageError(`-${interactive[0]} opens a shell and needs a terminal on stdin`);
  }
  const dialTimeoutMs = durationFromEnv('SPREAD_DIAL_TIMEOUT');
  const status = wantsStatusLine() ? new StatusLine(process.stdout) : undefined;
  const gate = status
    ? new TerminalGate(status.write, { hold: () => status.pause(), release: () => status.resume() })
    : new TerminalGate((text) => out(text));
  const logs = typeof parsed.values['logs'] === 'string' && parsed.values['logs'] !== '' ? parsed.values['logs'] : undefined;
  const files = reportFiles(parsed.values, process.cwd(), past, logs);
  const markers = (await import('../report/ci-markers.js')).ciMarkers(process.env);
  const reporters = [...files.reporters, ...(status ? [progressReporter(status.update)] : [])];
  const stop = (stopper = new Stopper(durationFromEnv('SPREAD_STOP_GRACE') ?? STOP_GRACE_MS).listen());
  onOutputLost = () => stop.request('EPIPE');
  if (!open.stdout) stop.request('EPIPE');
  let code: number;
  try {
    code = await runCommand({
      project, filter, options, host: (cmd) => host.run(cmd), write: gate.write, reporters, stopper: stop, ...(logs ? { logs } : {}),
      ...(dialTimeoutMs !== undefined ? { dialTimeoutMs } : {}),
      ...(interactive.length > 0 ? { openShell: interactiveShell(gate, process.stdin, process.stdout) } : {}),
      ...(sharedRun ? { sharedRun } : {}),
      ...(markers ? { markers } : {}),
    });
  } finally {
    status?.close();
    stop.dispose();
    await sharedRun?.close();
  }
  for (const line of files.errors) err(`error: ${line}\n`);
  if (files.errors.length > 0 && code === 0) code = 1;
  if (stop.outputLost) {
    err('error: standard output closed (EPIPE): the run was cut short\n');
    return EPIPE_STATUS;
  }
  if (code !== 0) err('error: unsuccessful run\n');
  return code;
}

/** A live status line on an interactive terminal, unless CI or SPREAD_NO_PROGRESS says otherwise. */
const wantsStatusLine = (): boolean =>
  process.stdout.isTTY === true && process.env['CI'] !== 'true' && !process.env['SPREAD_NO_PROGRESS'] && process.env['TERM'] !== 'dumb';

/** What history knew of each job before this run, for -html (none with -history=false). */
async function pastJobs(projectDir: string, history: boolean): Promise<PastJobs | undefined> {
  if (!history) return undefined;
  const { History, HISTORY_FILE } = await import('../run/history.js');
  const known = History.load(join(projectDir, HISTORY_FILE));
  return (name) => {
    const h = known.past(name);
    return h ? { recent: h.recent, ...(h.ms !== undefined ? { durationMs: h.ms } : {}) } : undefined;
  };
}

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
    // A stopped run ends now: a connection or a discard still winding down must not hold it past its bound.
    if (stopper?.cause !== undefined) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof UsageError) {
      err(`error: ${error.message}\n`);
    } else {
      const e = error as Error;
      err(`error: ${e?.message ?? String(error)}\n`);
      if (process.env['SPREAD_DEBUG_STACK']) err(`${e?.stack}\n`);
    }
    process.exitCode = 1;
  },
);
