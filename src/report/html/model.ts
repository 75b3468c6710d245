/**
 * The data a report page carries (as JSON inside the HTML file), shared by
 * the collector that builds it and the page script that shows it. Compact,
 * because a snapd-sized run has tens of thousands of jobs: strings are
 * interned, rows are arrays of numbers, times are milliseconds from the
 * start of the run.
 */

export const REPORT_DATA_VERSION = 1;

/** Job statuses, as in the JSON and JUnit reports (see report/job-results.ts). */
export const STATUSES = ['passed', 'failed', 'error', 'skipped'] as const;

/** Columns of a job row. */
export const enum J {
  Backend, System, Suite, Task, Variant,
  /** 0 when the task has no samples. */
  Sample,
  /** Index in STATUSES. */
  Status,
  DurationMs,
  /** The previous run's time from history, -1 when unknown. */
  PreviousMs,
  /** The lane of its last run, -1 when it never ran. */
  Lane,
  Runs,
  FailedRuns,
  /** Index of its failure in `failures`, -1 for none. */
  Failure,
  /** Its recent outcomes from history with this run's last (`PPFP`), a string index; -1 when there is no history. */
  Recent,
  /** Index in `artifacts`, -1 for none. */
  Artifacts,
}
export type JobRow = readonly number[];

/** Columns of a run (one prepare/execute/restore of a job on a lane). */
export const enum R {
  Job, Lane,
  /** Prepare start, execute start, restore start, end. */
  T0, T1, T2, T3,
  /** RUN_* bits. */
  Flags,
}
export const R_SIZE = 7;
export const RUN_PREPARE_FAILED = 1;
export const RUN_EXECUTE_FAILED = 2;
export const RUN_RESTORE_FAILED = 4;
/** The run whose failure matched a flake hunt. */
export const RUN_MATCHED = 8;

/** Columns of a project, backend or suite script on a lane. */
export const enum L {
  Lane,
  /** Index in LEVELS. */
  Level,
  /** 0 preparing, 1 restoring. */
  Verb,
  Start, End,
  /** 1 ok, 0 failed. */
  Ok,
  Job,
}
export const L_SIZE = 7;
export const LEVELS = ['project', 'backend', 'suite'] as const;

export interface LaneData {
  /** The machine label: an address, a container name. */
  readonly name: string;
  /** `backend:system` */
  readonly system: string;
  /** When the machine was connected, and let go (ms). */
  readonly from: number;
  readonly to: number;
}

export interface FailureData {
  readonly job: number;
  readonly lane: number;
  readonly level: string;
  readonly verb: string;
  readonly context: string;
  readonly at: number;
  /** The error as the log prints it after "Error <verb> <context> (<machine>) : ", or '' when that is just the output. */
  readonly error: string;
  /** The output, its middle elided past a size. */
  readonly output: string;
  debug?: string;
  /** The failure a flake hunt matched. */
  matched?: boolean;
  /** Where a flake hunt saved this unmatched failure (relative to the report). */
  saved?: string;
}

export interface HuntData {
  readonly runs: number;
  readonly failures: number;
  readonly machines: number;
  readonly durationMs: number;
  readonly matchedJob: number;
  readonly machine?: string;
  readonly workdir?: string;
  readonly kept: boolean;
}

export interface ArtifactsData {
  /** Relative to the report file (or absolute when on another tree). */
  readonly path: string;
  readonly error?: string;
}

export interface ReportData {
  readonly version: number;
  readonly project: string;
  readonly seed: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly interrupted: boolean;
  /** The summary's categories with their counts, in the original's order. */
  readonly summary: readonly (readonly [outcome: string, count: number])[];
  readonly strings: readonly string[];
  readonly lanes: readonly LaneData[];
  readonly jobs: readonly JobRow[];
  /** R_SIZE numbers per run. */
  readonly runs: readonly number[];
  /** L_SIZE numbers per level script. */
  readonly levels: readonly number[];
  readonly failures: readonly FailureData[];
  readonly artifacts: readonly ArtifactsData[];
  readonly hunt?: HuntData;
}
