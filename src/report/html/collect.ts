/**
 * Builds a report page's data from the event stream: the machines as
 * lanes, every run of a job's task scripts on a lane with its prepare,
 * execute and restore times, the project, backend and suite scripts, the
 * failures with their output and debug output, artifacts, and the flake
 * hunt's result; with what history said before the run.
 */
import type { EventOf, Outcome, Reporter, Stamped } from '../../events.js';
import { errorText, OUTCOMES } from '../../events.js';
import { outputText } from '../../output.js';
import type { Job } from '../../project/types.js';
import { jobStatus, resultFor } from '../job-results.js';
import type { JobResult } from '../job-results.js';
import type { ArtifactsData, FailureData, HuntData, LaneData, ReportData } from './model.js';
import { J, LEVELS, REPORT_DATA_VERSION, RUN_EXECUTE_FAILED, RUN_MATCHED, RUN_PREPARE_FAILED, RUN_RESTORE_FAILED, STATUSES } from './model.js';

/** What history knew of a job before this run. */
export interface PastJob {
  readonly durationMs?: number;
  /** Outcomes, oldest first: `P` passed, `F` failed. */
  readonly recent: string;
}

export interface CollectOptions {
  /** History before this run, by job name. */
  readonly past?: (jobName: string) => PastJob | undefined;
  /** Where artifact directories and saved files are linked from (the report's directory). */
  readonly relative?: (path: string) => string;
}

/** Output kept per failure: the head and the tail, the middle elided. */
export const OUTPUT_HEAD = 4 * 1024;
export const OUTPUT_TAIL = 60 * 1024;

export const clip = (text: string): string =>
  text.length <= OUTPUT_HEAD + OUTPUT_TAIL
    ? text
    : `${text.slice(0, OUTPUT_HEAD)}\n(... ${text.length - OUTPUT_HEAD - OUTPUT_TAIL} characters elided ...)\n${text.slice(-OUTPUT_TAIL)}`;

interface OpenRun {
  job: Job;
  t: [number, number, number, number];
  flags: number;
}

type Lane = { name: string; system: string; from: number; to: number };

/** Numbers things in the order first seen: `of(x)` is x's index in `list`. */
function numbering<T>(): { list: T[]; of: (x: T) => number } {
  const list: T[] = [];
  const index = new Map<T, number>();
  return {
    list,
    of: (x) => {
      let i = index.get(x);
      if (i === undefined) index.set(x, (i = list.push(x) - 1));
      return i;
    },
  };
}

/** A reporter that gathers the page data; `onEnd` gets it when the run ends. */
export function collectReport(onEnd: (data: ReportData) => void, o: CollectOptions = {}): Reporter {
  // Times count from run-start (nothing this collects comes before it).
  let startedAt = 0;
  let seed = 0;
  let project = '';
  const { list: strings, of: intern } = numbering<string>();
  const { list: jobs, of: indexOf } = numbering<Job>();
  const results = new Map<Job, JobResult>();
  const lanes: Lane[] = [];
  const laneIndex = new Map<string, number>();
  const rel = (at: number) => at - startedAt;
  const laneOf = (name: string, system: string, at: number): number => {
    let i = laneIndex.get(name);
    if (i === undefined) laneIndex.set(name, (i = lanes.push({ name, system, from: rel(at), to: rel(at) }) - 1));
    // A shared run's merged summary replays events job by job, not in time order.
    const lane = lanes[i]!;
    lane.from = Math.min(lane.from, rel(at));
    lane.to = Math.max(lane.to, rel(at));
    return i;
  };
  const systemOf = (job: Job) => `${job.backend.name}:${job.system.name}`;
  const runs: number[] = [];
  const levels: number[] = [];
  const open = new Map<number, OpenRun>();
  const levelStarts = new Map<string, number>();
  const failures: FailureData[] = [];
  const jobFailure = new Map<Job, number>();
  const lastFailure = new Map<string, number>();
  const artifacts: ArtifactsData[] = [];
  const jobArtifacts = new Map<Job, number>();
  const ran = new Map<Job, { runs: number; failed: number; lane: number }>();
  const summary = new Map<Outcome, number>(OUTCOMES.map((x) => [x, 0]));
  let hunt: HuntData | undefined;

  const closeRun = (lane: number, at: number) => {
    const r = open.get(lane);
    if (!r) return;
    open.delete(lane);
    // A part that did not run (no restore after -abend, only a restore with -restore) takes no time.
    const [t0] = r.t;
    const t3 = Math.max(t0, r.t[3] >= 0 ? r.t[3] : rel(at));
    const t2 = Math.min(t3, r.t[2] >= 0 ? r.t[2] : t3);
    const t1 = Math.min(t2, r.t[1] >= 0 ? r.t[1] : t2);
    runs.push(indexOf(r.job), lane, t0, t1, t2, t3, r.flags);
    const stats = ran.get(r.job) ?? { runs: 0, failed: 0, lane };
    stats.runs++;
    stats.lane = lane;
    if (r.flags & (RUN_PREPARE_FAILED | RUN_EXECUTE_FAILED | RUN_RESTORE_FAILED)) stats.failed++;
    ran.set(r.job, stats);
  };
  const runOn = (lane: number, job: Job, at: number): OpenRun => {
    let r = open.get(lane);
    if (!r || r.job !== job) {
      closeRun(lane, at);
      open.set(lane, (r = { job, t: [rel(at), -1, -1, -1], flags: 0 }));
    }
    return r;
  };
  const scriptKey = (e: { machine: string; level: string; verb: string }) => `${e.machine}\0${e.level}\0${e.verb}`;

  return {
    'run-start': (e) => {
      startedAt = e.at;
      seed = e.seed;
      project = e.jobs[0]?.project.name ?? '';
      for (const job of e.jobs) {
        indexOf(job);
        resultFor(results, job);
      }
    },
    machine: (e) => {
      // `backend:system (label)`: the label names the lane.
      const label = e.machine.startsWith(`${e.system} (`) ? e.machine.slice(e.system.length + 2, -1) : undefined;
      if (label && e.action !== 'allocating') laneOf(label, e.system, e.at);
    },
    'job-start': (e) => {
      const lane = laneOf(e.machine, systemOf(e.job), e.at);
      closeRun(lane, e.at);
      runOn(lane, e.job, e.at);
    },
    'script-start': (e) => {
      const lane = laneOf(e.machine, systemOf(e.job), e.at);
      if (e.level !== 'task') return void levelStarts.set(scriptKey(e), rel(e.at));
      let r = runOn(lane, e.job, e.at);
      // -repeat: a new prepare after an execute starts the next run.
      if (e.verb === 'preparing' && r.t[1] >= 0) {
        closeRun(lane, e.at);
        r = runOn(lane, e.job, e.at);
      }
      if (e.verb === 'preparing') r.t[0] = rel(e.at);
      if (e.verb === 'executing') r.t[1] = rel(e.at);
      if (e.verb === 'restoring') r.t[2] = rel(e.at);
    },
    'script-end': (e) => {
      const lane = laneOf(e.machine, systemOf(e.job), e.at);
      if (!e.ok) {
        const output = outputText(e.output);
        const i = failures.push({
          job: indexOf(e.job), lane, level: e.level, verb: e.verb, context: e.context, at: rel(e.at),
          error: ownError(e.error ? errorText(e.error, e.output) : '', output), output: clip(output),
        }) - 1;
        if (!jobFailure.has(e.job)) jobFailure.set(e.job, i);
        lastFailure.set(scriptKey(e), i);
      }
      if (e.level !== 'task') {
        const start = levelStarts.get(scriptKey(e)) ?? rel(e.at) - e.durationMs;
        levels.push(lane, LEVELS.indexOf(e.level as (typeof LEVELS)[number]), e.verb === 'restoring' ? 1 : 0, start, rel(e.at), e.ok ? 1 : 0, indexOf(e.job));
        return;
      }
      const r = runOn(lane, e.job, e.at);
      if (e.verb === 'preparing') {
        r.t[1] = rel(e.at);
        if (!e.ok) r.flags |= RUN_PREPARE_FAILED;
      } else if (e.verb === 'executing') {
        r.t[2] = rel(e.at);
        if (!e.ok) r.flags |= RUN_EXECUTE_FAILED;
      } else {
        r.t[3] = rel(e.at);
        if (!e.ok) r.flags |= RUN_RESTORE_FAILED;
      }
    },
    'debug-output': (e) => {
      const i = lastFailure.get(scriptKey(e));
      if (i !== undefined) failures[i]!.debug = clip(e.error !== undefined ? `${errorText(e.error, e.output)}\n${outputText(e.output)}`.trim() : outputText(e.output));
    },
    'job-end': (e) => {
      const lane = laneOf(e.machine, systemOf(e.job), e.at);
      closeRun(lane, e.at);
      resultFor(results, e.job).durationMs = e.durationMs;
    },
    result: (e) => {
      resultFor(results, e.job).outcomes.push(e.outcome);
      summary.set(e.outcome, (summary.get(e.outcome) ?? 0) + 1);
    },
    artifacts: (e) => {
      jobArtifacts.set(e.job, artifacts.push({ path: o.relative ? o.relative(e.dir) : e.dir, ...(e.error !== undefined ? { error: e.error } : {}) }) - 1);
    },
    'hunt-failure': (e) => {
      const i = lastFailure.get(scriptKey(e));
      if (i === undefined) return;
      const failure = failures[i]!;
      if (e.file) failure.saved = o.relative ? o.relative(e.file) : e.file;
      if (!e.matched) return;
      failure.matched = true;
      jobFailure.set(e.job, i);
      // The run is still open: it ends after the artifacts are fetched.
      const r = open.get(failure.lane);
      if (r) r.flags |= RUN_MATCHED;
    },
    'hunt-end': (e) => {
      hunt = huntData(e, (job) => indexOf(job), o.relative);
    },
    'run-end': (e) => {
      for (const lane of [...open.keys()]) closeRun(lane, e.at);
      const rows = jobs.map((job) => jobRow(job));
      onEnd({
        version: REPORT_DATA_VERSION, project, seed, startedAt, endedAt: e.at, interrupted: e.interrupted,
        summary: [...summary].filter(([outcome, n]) => n > 0 || outcome === 'task-done' || outcome === 'task-abort'),
        strings, lanes: lanes as LaneData[], jobs: rows, runs, levels, failures, artifacts, ...(hunt ? { hunt } : {}),
      });
    },
  };

  function jobRow(job: Job): number[] {
    const result = resultFor(results, job);
    const status = STATUSES.indexOf(jobStatus(result));
    const stats = ran.get(job);
    const past = o.past?.(job.name);
    const own = result.outcomes.some((x) => x === 'task-error' || x === 'task-prepare-error' || x === 'task-restore-error') ? 'F' : result.outcomes.includes('task-done') ? 'P' : '';
    const recent = past ? `${past.recent}${own}`.slice(-10) : '';
    const row: number[] = [];
    row[J.Backend] = intern(job.backend.name);
    row[J.System] = intern(job.system.name);
    row[J.Suite] = intern(job.suite.name);
    row[J.Task] = intern(job.task.name);
    row[J.Variant] = intern(job.variant);
    row[J.Sample] = job.task.samples > 1 ? job.sample : 0;
    row[J.Status] = status;
    row[J.DurationMs] = Math.round(result.durationMs);
    row[J.PreviousMs] = past?.durationMs ?? -1;
    row[J.Lane] = stats?.lane ?? -1;
    row[J.Runs] = stats?.runs ?? 0;
    row[J.FailedRuns] = stats?.failed ?? 0;
    row[J.Failure] = jobFailure.get(job) ?? -1;
    row[J.Recent] = recent ? intern(recent) : -1;
    row[J.Artifacts] = jobArtifacts.get(job) ?? -1;
    return row;
  }
}

/** The error, or '' when it only repeats the output (framed by dashes, as the log shows it): the page shows the output anyway. */
function ownError(error: string, output: string): string {
  const text = output.trim();
  return text !== '' && (error === text || error === `\n-----\n${text}\n-----`) ? '' : error;
}

function huntData(e: Stamped<EventOf<'hunt-end'>>, indexOf: (job: Job) => number, relative?: (path: string) => string): HuntData {
  const m = e.match;
  return {
    runs: e.runs, failures: e.failures, machines: e.machines, durationMs: e.durationMs,
    matchedJob: m ? indexOf(m.job) : -1, kept: m?.kept ?? false,
    ...(m ? { machine: m.machine } : {}),
    ...(m?.workdir ? { workdir: relative ? relative(m.workdir) : m.workdir } : {}),
  };
}
