/**
 * Flake hunting (`-repeat-until=RE`): the selected jobs run on every worker
 * of their systems at once, round after round, until a failure whose output
 * matches RE, as goswarm does for one command on many machines.
 *
 * HuntQueue is the job source workers claim from instead of the run's
 * queue: each worker walks its system's jobs in turn (starting at its own
 * offset, so two jobs on four machines both run from the first round), one
 * run per claim, for as long as the hunt lasts. `-repeat=N` bounds the runs
 * of each job (N+1, counted over every machine).
 *
 * When a failure matches, no new run starts anywhere; runs under way on
 * other machines are let finish, restores included. Cutting them would save
 * at most one run's time, but a cut run is neither a pass nor a failure, so
 * it would skew the failure rate, leave a machine mid-task with nothing
 * restored, and could throw away a second instance of the very failure being
 * hunted. (A second Ctrl-C still kills them, as in any run.) The machine that
 * matched is left as the failure left it: the task's directory is fetched
 * as a .tar.gz, nothing is restored, and the machine is kept and recorded in
 * `.spread-reuse.yaml` for `spread -reuse -shell <job>`. Failures that do
 * not match are saved one file each, with their output.
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Emit, ScriptRef } from '../events.js';
import { errorText } from '../events.js';
import { outputBytes, outputText } from '../output.js';
import type { Job, System } from '../project/types.js';
import type { Claim, RunStore } from '../store/store.js';
import { JobQueue } from './job-queue.js';
import type { LevelResult } from './level-script.js';
import type { MachineLink } from './machine-link.js';
import type { Picker } from './pick-job.js';
import { ReuseFile } from './reuse-file.js';

export interface HuntOptions {
  readonly until: RegExp;
  /** The selected jobs, sorted. */
  readonly jobs: readonly Job[];
  /** Runs of each job at most (`-repeat` + 1), or Infinity. */
  readonly runsPerJob: number;
  /** Where unmatched failures and the working directory go. */
  readonly dir: string;
  /** The reuse file the matching machine is recorded in, when the run's own file is another one. */
  readonly keepIn?: string;
  readonly emit: Emit;
  readonly now?: () => number;
}

/** What a worker reports after one run: the last task script it ran (prepare when that failed, else execute) and its result. */
export interface RunEnd {
  readonly ref: ScriptRef;
  readonly result: LevelResult;
}

export class Hunt {
  private readonly bySystem = new Map<string, Job[]>();
  private readonly handedOut = new Map<Job, number>();
  /** Each worker's place in its system's jobs, by the worker's own job order (one array per worker). */
  private readonly cursors = new WeakMap<readonly number[], number>();
  private readonly workersOf = new Map<string, number>();
  private readonly machines = new Set<string>();
  private readonly startedAt: number;
  private runs = 0;
  private failures = 0;
  private match?: { job: Job; link: MachineLink; atMs: number; workdir?: string; kept: boolean };

  constructor(private readonly o: HuntOptions) {
    for (const job of o.jobs) {
      const key = systemKey(job.system);
      const list = this.bySystem.get(key);
      if (list) list.push(job);
      else this.bySystem.set(key, [job]);
    }
    this.startedAt = this.now();
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Whether a failure matched (everyone stops). */
  get matched(): boolean {
    return this.match !== undefined;
  }

  /** Whether a worker of `backend:system` would get a run. */
  hasWork(backend: string, system: string): boolean {
    return !this.match && (this.bySystem.get(`${backend}:${system}`) ?? []).some((job) => this.left(job));
  }

  /** The next run for a worker: its system's jobs in turn; undefined once the hunt is over for it. */
  next(w: Picker): Job | undefined {
    if (this.match) return undefined;
    const key = `${w.backend}:${w.system}`;
    const jobs = this.bySystem.get(key) ?? [];
    let cursor = this.cursors.get(w.order);
    if (cursor === undefined) {
      // Workers start one job apart.
      cursor = this.workersOf.get(key) ?? 0;
      this.workersOf.set(key, cursor + 1);
    }
    for (let step = 0; step < jobs.length; step++) {
      const job = jobs[(cursor + step) % jobs.length]!;
      if (!this.left(job)) continue;
      this.cursors.set(w.order, cursor + step + 1);
      this.handedOut.set(job, (this.handedOut.get(job) ?? 0) + 1);
      return job;
    }
    return undefined;
  }

  private left(job: Job): boolean {
    return (this.handedOut.get(job) ?? 0) < this.o.runsPerJob;
  }

  /**
   * A run ended on `link`. Returns true when its failure matched: the hunt
   * is then over, and the caller keeps the machine as it is (no restore).
   */
  async ended(link: MachineLink, end: RunEnd): Promise<boolean> {
    const { result: failure, ref } = end;
    // A run killed by a second signal neither passed nor failed: it is not counted.
    if (failure.interrupted) return false;
    this.runs++;
    this.machines.add(link.label);
    if (failure.ok) return false;
    this.failures++;
    const run = this.runs;
    const error = failure.error ? errorText(failure.error, failure.output) : '';
    const output = outputText(failure.output);
    const why = failure.reason !== undefined ? { reason: failure.reason } : {};
    const matched = !this.match && (this.o.until.test(output) || this.o.until.test(error));
    if (!matched) {
      const file = this.save(ref, run, error, outputBytes(failure.output));
      this.o.emit({ type: 'hunt-failure', ...ref, run, matched, error, ...why, output, ...(file ? { file } : {}) });
      return false;
    }
    this.match = { job: ref.job, link, atMs: this.now() - this.startedAt, kept: false };
    this.o.emit({ type: 'hunt-failure', ...ref, run, matched, error, ...why, output });
    await this.hold(link, ref.job);
    return true;
  }

  /** An unmatched failure's output in `<dir>/<job>/failure-<run>.log`; undefined when it cannot be written (the log says why). */
  private save(ref: ScriptRef, run: number, error: string, output: Buffer): string | undefined {
    const file = join(this.o.dir, ref.job.name, `failure-${run}.log`);
    const head = [`job: ${ref.job.name}`, `machine: ${ref.machine}`, `run: ${run}`, `failed: ${ref.verb} (${ref.level})`, `at: ${new Date(this.now()).toISOString()}`];
    try {
      mkdirSync(join(this.o.dir, ref.job.name), { recursive: true });
      // The output as the script printed it, byte for byte.
      writeFileSync(file, Buffer.concat([Buffer.from(`${head.join('\n')}\nerror: ${error.trim()}\n\n`), output, Buffer.from(output.at(-1) === 0x0a ? '' : '\n')]));
      return file;
    } catch (err) {
      this.o.emit({ type: 'log', level: 'info', message: `Cannot save the failure of ${ref.job.name} on ${ref.machine}: ${(err as Error).message}` });
      return undefined;
    }
  }

  /** The matching machine: its task directory fetched, the machine kept and recorded for -reuse. */
  private async hold(link: MachineLink, job: Job): Promise<void> {
    const match = this.match!;
    const file = join(this.o.dir, job.name, 'workdir.tar.gz');
    try {
      mkdirSync(join(this.o.dir, job.name), { recursive: true });
      const tar = await link.session.download(`${link.remotePath}/${job.task.name}`, ['.']);
      await pipeline(tar, createGzip(), createWriteStream(file));
      match.workdir = file;
    } catch (err) {
      this.o.emit({ type: 'log', level: 'info', message: `Cannot fetch the working directory of ${job.name} from ${link.name}: ${(err as Error).message}` });
    }
    link.keep();
    match.kept = true;
    if (this.o.keepIn) {
      try {
        const shared = await ReuseFile.open(this.o.keepIn, (message) => this.o.emit({ type: 'log', level: 'info', message }));
        shared.add(link.machine.system.backend, link.machine.system.name, link.machine.reuseEntry());
        shared.close();
        link.forget();
      } catch (err) {
        match.kept = false;
        this.o.emit({ type: 'log', level: 'info', message: `Cannot record ${link.name} in ${this.o.keepIn}: ${(err as Error).message}` });
      }
    }
  }

  /** The hunt's closing event. */
  end(): void {
    const m = this.match;
    this.o.emit({
      type: 'hunt-end', runs: this.runs, failures: this.failures, machines: this.machines.size, dir: this.o.dir,
      durationMs: m ? m.atMs : this.now() - this.startedAt,
      ...(m ? { match: { job: m.job, machine: m.link.label, kept: m.kept, ...(m.workdir ? { workdir: m.workdir } : {}) } } : {}),
    });
  }
}

const systemKey = (system: System): string => `${system.backend}:${system.name}`;

/**
 * The job source of a flake hunt, in place of the run's queue: claims are
 * the hunt's runs. A job leaves the run's store at its first run, so only
 * jobs that never ran count as aborted at the end.
 */
export class HuntQueue extends JobQueue {
  private readonly started = new Set<Job>();
  private readonly slots: Map<Job, number>;

  constructor(readonly hunt: Hunt, store: RunStore, jobs: readonly Job[], stopping: AbortSignal) {
    super(store, jobs, stopping, '');
    this.slots = new Map(jobs.map((job, i) => [job, i]));
  }

  override async claim(w: Picker): Promise<Claim | undefined> {
    if (this.stopping.aborted) return undefined;
    const job = this.hunt.next(w);
    if (!job) return undefined;
    const index = this.slots.get(job)!;
    if (!this.started.has(job)) {
      this.started.add(job);
      await this.store.claim((s) => (s.pending[index] ? index : undefined)).catch(() => undefined);
    }
    return { job, index };
  }

  override async finish(): Promise<boolean> {
    return true;
  }

  override async release(): Promise<void> {}

  override awaitWork(backend: string, system: string): Promise<boolean> {
    return Promise.resolve(!this.stopping.aborted && this.hunt.hasWork(backend, system));
  }
}
