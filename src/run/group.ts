/**
 * The groups of multi-machine jobs (`instances: N`, see docs/tasks.md), as
 * every kind of them shares: Groups (what a worker asks: a group to join,
 * a claim that opens one), GroupCore (what a member asks of its group), the
 * members themselves, and how the phases between the task's scripts
 * (prepared, executed, restored) combine into the job's results.
 *
 * Two kinds: local-group.ts, the groups of one process (the default), and
 * shared-group.ts, where the instances of one job may be machines of
 * different runners of a shared run, gathered through the run's store.
 * Either way each member runs its own part (its nesting, then the task's
 * scripts on its machine) and meets the others at the phases, and the group,
 * not each member, emits the job's events (job-start, results, job-end), once.
 */
import { randomBytes } from 'node:crypto';
import type { AbortReason, Emit, Outcome } from '../events.js';
import type { Env, Job, System } from '../project/types.js';
import type { Claim } from '../store/store.js';
import { parseAddress } from '../remote/shell-words.js';
import type { SyncService } from '../sync/sync.js';
import type { MachineLink } from './machine-link.js';

/** What every member of a group reports at a phase. */
export interface PhaseReport {
  readonly ok: boolean;
  /** The member's script failed here (not merely skipped because of another). */
  readonly failed?: boolean;
  /** The member can go on to another round (its machine is fine, no Ctrl-C, no -abend stop). */
  readonly canRepeat?: boolean;
  /** The member's failure matches -repeat-until (or there is none). */
  readonly stops?: boolean;
  /** The member could not take part (its suite or project failed to prepare): why the job is not run. */
  readonly abandoned?: string;
  /** The member's runner was lost (a shared run): its name. */
  readonly lost?: string;
}

/** What the members learn at a phase: the same for all of them. */
export interface PhaseResult {
  /** Every member's report was ok. */
  readonly ok: boolean;
  /** Some member's script failed at this phase. */
  readonly failed: boolean;
  readonly canRepeat: boolean;
  readonly stops: boolean;
  /** Some member could not take part: why the job is not run. */
  readonly abandoned?: string;
}

export type Phase = 'prepared' | 'executed' | 'restored';
export const PHASES: readonly Phase[] = ['prepared', 'executed', 'restored'];

/** Every member's report at a phase, combined: the same for all of them. */
export function combine(reports: Iterable<PhaseReport>): PhaseResult {
  const all = [...reports];
  const abandoned = all.find((r) => r.abandoned !== undefined)?.abandoned;
  return {
    ok: all.every((r) => r.ok),
    failed: all.some((r) => r.failed === true),
    canRepeat: all.every((r) => r.canRepeat !== false),
    stops: all.some((r) => r.failed === true && r.stops !== false),
    ...(abandoned !== undefined ? { abandoned } : {}),
  };
}

/**
 * The job's results from the phases, once per round, in the order a single
 * job gives them (worker.ts): no abort after a failed prepare, and a round
 * is done only once its restore passed too. `emit` is the group's: the
 * runner that records the job (a shared run's other runners keep quiet).
 */
export class GroupOutcome {
  private outcome: Outcome = 'task-done';
  private aborted = false;
  private prepareFailed = false;
  /** The round's prepare and execute passed everywhere: done once its restore passes. */
  private roundPassed = false;

  constructor(private readonly job: Job, private readonly emit: Emit) {}

  get isAborted(): boolean {
    return this.aborted;
  }

  /** The job is not run (to its end): aborted once, with the reason. */
  abort(why: AbortReason): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit({ type: 'result', outcome: 'task-abort', job: this.job, why });
    this.outcome = 'task-abort';
  }

  /** This attempt does not count (it will run again): no result from now on. */
  drop(): void {
    this.aborted = true;
    this.outcome = 'task-abort';
  }

  /** Every member arrived at `phase` of the current round. */
  phase(phase: Phase, r: PhaseResult): void {
    if (phase === 'prepared') this.prepareFailed = r.failed;
    if (phase === 'executed' && !this.aborted) {
      if (this.prepareFailed) this.result('task-prepare-error');
      else if (r.failed || !r.ok) this.result('task-error');
      else this.roundPassed = true;
    }
    if (phase === 'restored') {
      if (r.failed) this.result('task-restore-error');
      else if (this.roundPassed) this.result('task-done');
      this.roundPassed = false;
    }
  }

  /** The outcome the job ends with. */
  end(restoreOnly: boolean): Outcome {
    return restoreOnly && this.outcome === 'task-done' ? 'task-abort' : this.outcome;
  }

  private result(outcome: Outcome): void {
    this.emit({ type: 'result', outcome, job: this.job });
    // As for a single job: the last failure of execute or prepare names the job's end.
    if (outcome === 'task-error' || outcome === 'task-prepare-error') this.outcome = outcome;
  }
}

export const systemKey = (s: System): string => `${s.backend}:${s.name}`;

/** What a worker's claim gave, through Groups.claim. */
export interface Claimed {
  readonly claim?: Claim;
  /** The claim was a multi-machine job: this worker opened its group. */
  readonly member?: Member;
  /** The claim was a multi-machine job but another group gathers on the system: hand the claim back and join that one. */
  readonly busy?: boolean;
}

/** The groups of a run, as its workers see them: at most one gathering per system. */
export interface Groups {
  /** A worker of `system` starts. */
  enlist(system: System): void;
  /** A worker of `system` ended: a gathering group that can no longer fill is called off. */
  retire(system: System): void;
  /** Whether a group of this system waits for workers. */
  isGathering(system: System): Promise<boolean>;
  /**
   * A worker's claim: a multi-machine job opens its group before the claim
   * counts as settled, so a sibling whose own claim found nothing can wait
   * (settled) and join it instead of going idle while the group needs it.
   */
  claim(system: System, link: MachineLink, take: () => Promise<Claim | undefined>): Promise<Claimed>;
  /** Resolves once no claim of the system is under way in this process. */
  settled(system: System): Promise<void>;
  /** Join the group gathering on this worker's system, if there is one. */
  join(system: System, link: MachineLink): Promise<Member | undefined>;
}

/** What a member needs from its group, wherever the other members are. */
export interface GroupCore {
  readonly job: Job;
  readonly count: number;
  readonly sync: SyncService;
  readonly emit: Emit;
  /** The member's number, 1 to count, once the group started. */
  instanceOf(member: Member): number;
  /** Every instance's host, in instance order. */
  hosts(): readonly string[];
  /** The machines of the group, for job-level lines. */
  machines(): string;
  /** The sync group of the current round. */
  syncGroup(): string;
  /** True once every instance has a machine; false when the group was called off. */
  whenStarted(member: Member): Promise<boolean>;
  /** The member could not take part: the job is aborted once. */
  abandon(member: Member): void;
  /** Report at a phase; resolves with everyone's combined report once all members arrived. */
  arrive(member: Member, phase: Phase, report: PhaseReport): Promise<PhaseResult>;
  /** Every other member's waits end: this one failed. */
  fail(member: Member, what: string): void;
  /** A member's part ended. */
  done(member: Member): void;
}

/** Claims under way per system in this process, and who waits for them to settle. */
export class ClaimsUnderWay {
  private readonly claiming = new Map<string, number>();
  private readonly settling = new Map<string, (() => void)[]>();

  async during<T>(key: string, claim: () => Promise<T>): Promise<T> {
    this.claiming.set(key, (this.claiming.get(key) ?? 0) + 1);
    try {
      return await claim();
    } finally {
      const left = (this.claiming.get(key) ?? 1) - 1;
      this.claiming.set(key, left);
      if (left === 0) for (const wake of this.settling.get(key)?.splice(0) ?? []) wake();
    }
  }

  settled(key: string): Promise<void> {
    if ((this.claiming.get(key) ?? 0) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.settling.get(key) ?? [];
      list.push(resolve);
      this.settling.set(key, list);
    });
  }
}

/** One worker's place in a group: instance K of N on its machine. */
export class Member {
  isDone = false;
  /** -restore: only restore scripts run. Set by the member's worker. */
  restoreOnly = false;
  /** This instance's secret for the sync helpers (see run/sync-link.ts). */
  readonly token = randomBytes(16).toString('hex');

  constructor(
    private readonly group: GroupCore,
    readonly link: MachineLink,
    /** The member's seat in its gathering: unique in the run. */
    readonly seat = randomBytes(6).toString('hex'),
  ) {}

  get job(): Job {
    return this.group.job;
  }

  get count(): number {
    return this.group.count;
  }

  /** This instance's number, 1 to N (known once the group started). */
  get instance(): number {
    return this.group.instanceOf(this);
  }

  /** True once every instance has a machine; false when the group was called off. */
  gathered(): Promise<boolean> {
    return this.group.whenStarted(this);
  }

  /** `backend:system:suite/task instance 2/3`: the context of this instance's scripts in the log. */
  get context(): string {
    return `${this.job.name} instance ${this.instance}/${this.count}`;
  }

  get role(): string {
    return this.job.task.instances!.roles[this.instance - 1] ?? '';
  }

  get syncGroup(): string {
    return this.group.syncGroup();
  }

  get sync(): SyncService {
    return this.group.sync;
  }

  get emit(): Emit {
    return this.group.emit;
  }

  /** `SPREAD_INSTANCE`, `SPREAD_INSTANCES`, `SPREAD_INSTANCE_ADDRESSES` (every instance's host, in order) and `SPREAD_ROLE`. */
  vars(): Env {
    return [
      ['SPREAD_INSTANCE', String(this.instance)],
      ['SPREAD_INSTANCES', String(this.count)],
      ['SPREAD_INSTANCE_ADDRESSES', this.group.hosts().join(' ')],
      ['SPREAD_ROLE', this.role],
    ];
  }

  /** The machines of the group, for job-level lines. */
  machines(): string {
    return this.group.machines();
  }

  abandon(): void {
    this.arrived = new Set(PHASES);
    this.group.abandon(this);
  }

  private arrived = new Set<Phase>();

  arrive(phase: Phase, report: PhaseReport): Promise<PhaseResult> {
    this.arrived.add(phase);
    if (phase === 'restored') {
      const all = this.group.arrive(this, phase, report);
      this.arrived = new Set();
      return all;
    }
    return this.group.arrive(this, phase, report);
  }

  /** This member's part broke off (an unexpected error): the others are not kept waiting. */
  leave(why: string): void {
    this.group.fail(this, why);
    for (const phase of PHASES) if (!this.arrived.has(phase)) void this.arrive(phase, { ok: false, failed: true, canRepeat: false });
    this.done();
  }

  fail(what: string): void {
    this.group.fail(this, what);
  }

  done(): void {
    this.group.done(this);
  }
}

/** The host other instances reach this one at: the address without its SSH port (this host for the local backend). */
export const hostOf = (link: MachineLink): string =>
  link.machine.root !== '' ? '127.0.0.1' : parseAddress(link.machine.address).host;
