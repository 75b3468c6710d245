/**
 * `-queue=URL`: connect to a shared run before anything else happens, and
 * `-queue=URL -summary`: wait for the run to end and print its merged
 * summary and reports, by replaying what its runners stored as the events
 * a single runner would have emitted (reporters never read the store).
 */
import { fanOut } from '../events.js';
import type { Reporter, RunEvent } from '../events.js';
import { expandJobs } from '../project/expand.js';
import type { Job, Project } from '../project/types.js';
import { consoleReporter, timestamp } from '../report/console.js';
import { isSuccessful, summarize } from '../report/summary.js';
import { toEvent } from '../run/stored-events.js';
import { parseQueueUrl, QueueUrlError } from '../store/queue-url.js';
import { connectRedisRun } from '../store/redis.js';
import type { SharedRun } from '../store/store.js';
import { UsageError } from './options.js';

export async function openQueue(url: string, env: NodeJS.ProcessEnv): Promise<SharedRun> {
  let address;
  try {
    address = parseQueueUrl(url, env);
  } catch (err) {
    if (err instanceof QueueUrlError) throw new UsageError(err.message);
    throw err;
  }
  return connectRedisRun(address);
}

export interface SummaryInput {
  readonly project: Project;
  readonly run: SharedRun;
  readonly write: (text: string | Uint8Array) => void;
  readonly reporters: readonly Reporter[];
  readonly signal: AbortSignal;
}

/** Exit status: 0 when every job of the run passed, 1 otherwise. */
export async function summaryCommand(input: SummaryInput): Promise<number> {
  const { run } = input;
  const say = (message: string) => input.write(`${timestamp(Date.now())} ${message}\n`);
  const stored = await run.waitForEnd(input.signal, say);
  const byName = new Map(expandJobs(input.project).map((j) => [j.name, j]));
  const jobs: Job[] = stored.jobs.map((name) => {
    const job = byName.get(name);
    if (!job) throw new UsageError(`job ${name} of the shared run ${run.label} is not in this project: run -summary in the runners' checkout`);
    return job;
  });

  // Replayed events keep the times they were recorded at.
  let at = Date.now();
  const events: RunEvent[] = [];
  const reporters: Reporter[] = [
    consoleReporter({ write: input.write, verbosity: 0 }),
    { result: (e) => void events.push(e) },
    ...input.reporters,
  ];
  const emit = fanOut(reporters, () => at);
  emit({ type: 'log', level: 'info', message: `Merged summary of the shared run ${run.label}: ${jobs.length} jobs, ${stored.runners} runner${stored.runners === 1 ? '' : 's'}, ${stored.workers} workers.` });
  const first = stored.entries.reduce((t, e) => Math.min(t, e.at), Infinity);
  at = Number.isFinite(first) ? first : at;
  emit({ type: 'run-start', jobs, workers: stored.workers, seed: stored.seed });
  for (const entry of stored.entries) {
    const { at: when, ...event } = toEvent(entry, jobs);
    at = when;
    emit(event as RunEvent);
  }
  at = Math.max(at, ...stored.entries.map((e) => e.at));
  if (stored.leftover.length > 0) {
    emit({ type: 'log', level: 'info', message: `${stored.leftover.length} job${stored.leftover.length === 1 ? '' : 's'} of the run never ran: no runner was left to take them.` });
  }
  // Infrastructure, not the tasks: every runner that could have run them stopped or was lost.
  for (const i of stored.leftover) emit({ type: 'result', outcome: 'task-abort', job: jobs[i]!, why: { kind: 'error', message: 'not run: no runner of the shared run was left to take it' } });
  emit({ type: 'run-end', interrupted: stored.leftover.length > 0 });
  for (const r of reporters) await r.close?.();
  return isSuccessful(summarize(events)) ? 0 : 1;
}
