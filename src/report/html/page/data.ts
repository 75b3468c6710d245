/// <reference lib="dom" />
/**
 * Page script: the report data decoded into what the page's parts use:
 * one object per job, runs grouped by lane and by job.
 */
import type { ReportData } from '../model.js';
import { J, R, R_SIZE, STATUSES } from '../model.js';

export interface PageJob {
  readonly i: number;
  readonly name: string;
  readonly backend: string;
  readonly system: string;
  readonly suite: string;
  readonly status: string;
  readonly ms: number;
  /** -1 when unknown. */
  readonly previousMs: number;
  /** Machine of its last run, '' when it never ran. */
  readonly machine: string;
  readonly runs: number;
  readonly failedRuns: number;
  readonly failure: number;
  /** Recent outcomes (history and this run), '' without history. */
  readonly recent: string;
  readonly artifacts: number;
}

export interface Decoded {
  readonly data: ReportData;
  readonly jobs: readonly PageJob[];
  /** Run offsets (into data.runs) per lane, by start time. */
  readonly runsByLane: readonly number[][];
  /** Run offsets per job. */
  readonly runsByJob: ReadonlyMap<number, number[]>;
  /** The run's end time of the whole run, in ms from its start. */
  readonly span: number;
}

export function decode(data: ReportData): Decoded {
  const s = data.strings;
  const jobs = data.jobs.map((row, i): PageJob => {
    const task = s[row[J.Task]!]!;
    const variant = s[row[J.Variant]!]!;
    const sample = row[J.Sample]!;
    const backend = s[row[J.Backend]!]!;
    const system = s[row[J.System]!]!;
    const lane = row[J.Lane]!;
    return {
      i, backend, system, suite: s[row[J.Suite]!]!,
      name: `${backend}:${system}:${task}${variant ? `:${variant}` : ''}${sample > 0 ? `#${sample}` : ''}`,
      status: STATUSES[row[J.Status]!] ?? 'skipped',
      ms: row[J.DurationMs]!, previousMs: row[J.PreviousMs]!,
      machine: lane >= 0 ? data.lanes[lane]!.name : '',
      runs: row[J.Runs]!, failedRuns: row[J.FailedRuns]!, failure: row[J.Failure]!,
      recent: row[J.Recent]! >= 0 ? s[row[J.Recent]!]! : '',
      artifacts: row[J.Artifacts]!,
    };
  });
  const runsByLane: number[][] = data.lanes.map(() => []);
  const runsByJob = new Map<number, number[]>();
  for (let at = 0; at < data.runs.length; at += R_SIZE) {
    runsByLane[data.runs[at + R.Lane]!]?.push(at);
    const job = data.runs[at + R.Job]!;
    const list = runsByJob.get(job);
    if (list) list.push(at);
    else runsByJob.set(job, [at]);
  }
  for (const list of runsByLane) list.sort((a, b) => data.runs[a + R.T0]! - data.runs[b + R.T0]!);
  let span = data.endedAt - data.startedAt;
  for (const lane of data.lanes) span = Math.max(span, lane.to);
  return { data, jobs, runsByLane, runsByJob, span: Math.max(span, 1) };
}
