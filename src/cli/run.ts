/**
 * `spread [filters]`: run the selected jobs and print the summary. The
 * Stopper turns signals into the two stop levels (see stopper.ts): once
 * stops handing out jobs (running scripts, restores and discards go on);
 * twice kills running scripts too (machines are still discarded, within a
 * bound).
 */
import { fanOut } from '../events.js';
import type { Reporter, RunEvent } from '../events.js';
import { expandJobs } from '../project/expand.js';
import { evaluateProject } from '../project/evaluate.js';
import type { HostRunner } from '../project/evaluate.js';
import type { Filter } from '../project/filter.js';
import { selectJobs } from '../project/select.js';
import type { Project } from '../project/types.js';
import type { LogMarkers } from '../report/ci-markers.js';
import { consoleReporter } from '../report/console.js';
import { huntReporter } from '../report/hunt.js';
import { isSuccessful, summarize } from '../report/summary.js';
import type { RunOptions } from '../run/options.js';
import { runJobs } from '../run/runner.js';
import type { OpenShell } from '../run/level-script.js';
import type { SharedRun } from '../store/store.js';
import { Stopper } from './stopper.js';

export interface RunCommandInput {
  /** How long to keep trying to reach a machine, in ms (`SPREAD_DIAL_TIMEOUT`). */
  readonly dialTimeoutMs?: number;
  readonly project: Project;
  readonly filter: Filter;
  readonly options: RunOptions;
  readonly host: HostRunner;
  readonly write: (text: string | Uint8Array) => void;
  /** The -logs directory, for the console to point at. */
  readonly logs?: string;
  readonly reporters?: readonly Reporter[];
  /** Opens interactive shells (-debug, -shell...); without it those modes are refused. */
  readonly openShell?: OpenShell;
  /** Folds and annotations for the CI the run is in. */
  readonly markers?: LogMarkers;
  /** Signals and a lost output, already listening; without it the run cannot be stopped. */
  readonly stopper?: Stopper;
  /** A run shared with other runners (-queue). */
  readonly sharedRun?: SharedRun;
}

/** Resolves to the exit status: 0 for a successful run, 1 otherwise. */
export async function runCommand(input: RunCommandInput): Promise<number> {
  const { project, options } = input;
  const stopper = input.stopper ?? new Stopper();
  const all = expandJobs(project);
  const evaluated = await evaluateProject(project, all, input.host);
  const jobs = selectJobs(all, input.filter);

  const events: RunEvent[] = [];
  const quiet = options.discard || options.gc;
  const emit = fanOut([
    consoleReporter({ write: input.write, verbosity: options.verbosity, summary: !quiet, ...(input.markers ? { markers: input.markers } : {}), ...(input.logs ? { logs: input.logs } : {}) }),
    ...(options.repeatUntil ? [huntReporter(input.write)] : []),
    { result: (e) => void events.push(e), artifacts: (e) => void events.push(e) },
    ...(input.reporters ?? []),
  ]);
  // Once the run has ended (perhaps cut short by the bound after a second
  // signal), late events from scripts still winding down are dropped.
  let ended = false;
  const guarded = (e: RunEvent) => {
    if (ended) return;
    if (e.type === 'run-end') ended = true;
    emit(e);
  };

  guarded({ type: 'log', level: 'verbose', message: `Found ${project.file}.` });
  stopper.say = (message) => guarded({ type: 'log', level: 'info', message });
  const timing = input.dialTimeoutMs !== undefined ? { dialTimeoutMs: input.dialTimeoutMs } : undefined;
  const result = await runJobs({
    project, jobs, evaluated, options, emit: guarded, stopping: stopper.stopping.signal, abort: stopper.abort.signal, stopGraceMs: stopper.graceMs,
    ...(timing ? { timing } : {}), ...(input.openShell ? { openShell: input.openShell } : {}),
    ...(input.sharedRun ? { sharedRun: input.sharedRun } : {}),
  });
  if (quiet) return result.failed ? 1 : 0;
  const ok = isSuccessful(summarize(events)) && !result.failed && !events.some((e) => e.type === 'artifacts' && e.error !== undefined);
  return ok ? 0 : 1;
}
