/** Everything the command line decides about a run, in one readonly type. */

export type Verbosity = 0 | 1 | 2;

/** At most one of these per run (the original's mutual-exclusion rule). */
export type Interaction =
  | { readonly kind: 'none' }
  /** `-debug`: a shell after any failing script, then go on. */
  | { readonly kind: 'debug' }
  /** `-shell`: a shell instead of each task's execute. */
  | { readonly kind: 'shell' }
  /** `-shell-before` / `-shell-after`. */
  | { readonly kind: 'shell-around'; readonly before: boolean; readonly after: boolean }
  /** `-abend`: stop at the first failure without restoring. */
  | { readonly kind: 'abend' }
  /** `-restore`: run only restore scripts. */
  | { readonly kind: 'restore' };

export interface RunOptions {
  /** Root password for machines this run allocates (`-pass`; random by default). */
  readonly password: string;
  readonly verbosity: Verbosity;
  /** Keep machines and record them in the reuse file; reuse recorded ones. @default false */
  readonly reuse: boolean;
  /** Use `.spread-reuse.<pid>.yaml` left by a killed run. @default 0 (none) */
  readonly reusePid: number;
  /** Re-upload the project to reused machines. @default false */
  readonly resend: boolean;
  /** Discard the recorded machines and run nothing. @default false */
  readonly discard: boolean;
  readonly interaction: Interaction;
  /** Fetch task artifacts into this directory. */
  readonly artifacts?: string;
  /** Name artifact directories with `__` for `:` (see project/safe-names.ts), as -logs files are named. @default false */
  readonly artifactsSafeNames?: boolean;
  /** Seed of the job order; 0 picks one from the clock and prints it. */
  readonly seed: number;
  /** Run each task this many extra times, stopping at its first failure. @default 0 */
  readonly repeat: number;
  /**
   * `-repeat-until`: a flake hunt. The selected jobs run on every worker of
   * their systems at once, round after round, until a failure whose output
   * matches (each job at most -repeat + 1 times when -repeat is given).
   */
  readonly repeatUntil?: RegExp;
  /** Garbage-collect backend leftovers and exit. @default false */
  readonly gc: boolean;
  /** Start jobs that took longest last time first, and record this run's times (`-history=false` turns it off). @default true */
  readonly history: boolean;
  /**
   * `-instance=N`: the instance of a multi-machine task that -debug/-shell*
   * open their shells on. @default every failing instance for -debug, the first for -shell*
   */
  readonly shellInstance?: number;
}
