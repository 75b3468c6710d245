/**
 * Gathering the machines of a multi-machine job (`instances: N`, see
 * docs/tasks.md), and keeping its instances in step between the scripts.
 *
 * Scheduling: a worker that takes such a job from the queue opens its
 * group and waits; every other worker of the same system joins the open
 * group before it takes a job of its own, so the group starts as soon as
 * N - 1 of them are free. Only one group per system gathers at a time:
 * two half-gathered groups could otherwise wait on each other forever.
 * The load-time check (workers >= N) makes a full group possible; a worker
 * that ends early (its machine could not be had) is counted out, and a
 * group that can no longer fill is aborted, as is a gathering group at
 * the first Ctrl-C.
 *
 * In step: each member runs its own part (its nesting, then the task's
 * scripts on its machine) and meets the others at phases (prepared,
 * executed, restored) where their results are combined. The group, not
 * each member, emits the job's events (job-start, results, job-end), once.
 *
 * This file holds what every kind of group shares (Groups, the worker's
 * side; GroupCore, a member's; the outcome of the phases) and LocalGroups,
 * the groups of one process. In a shared run the instances of one job may
 * be machines of different runners: shared-group.ts gathers them through
 * the run's store.
 */
import { randomBytes } from 'node:crypto';
import type { AbortReason, Emit, Outcome } from '../events.js';
import type { Env, Job, System } from '../project/types.js';
import type { Claim } from '../store/store.js';
import { parseAddress } from '../remote/shell-words.js';
import { plural } from '../sync/sync.js';
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

export interface GroupsOptions {
  readonly emit: Emit;
  readonly sync: SyncService;
  /** First Ctrl-C: groups still gathering are called off. */
  readonly stopping: AbortSignal;
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

/** The groups of one process: at most one gathering per system. */
export class LocalGroups implements Groups {
  private readonly gathering = new Map<string, Group>();
  private readonly alive = new Map<string, number>();
  private readonly claims = new ClaimsUnderWay();

  constructor(private readonly o: GroupsOptions) {
    o.stopping.addEventListener('abort', () => {
      for (const group of [...this.gathering.values()]) group.callOff('the run was interrupted');
    }, { once: true });
  }

  enlist(system: System): void {
    this.alive.set(systemKey(system), (this.alive.get(systemKey(system)) ?? 0) + 1);
  }

  retire(system: System): void {
    const key = systemKey(system);
    const left = (this.alive.get(key) ?? 1) - 1;
    this.alive.set(key, left);
    const group = this.gathering.get(key);
    if (group && left < group.count) group.callOff(`only ${plural(left, 'worker')} of ${key} left to run it`);
  }

  isGathering(system: System): Promise<boolean> {
    return Promise.resolve(this.gathering.has(systemKey(system)));
  }

  claim(system: System, link: MachineLink, take: () => Promise<Claim | undefined>): Promise<Claimed> {
    const key = systemKey(system);
    return this.claims.during(key, async () => {
      const claim = await take();
      if (!claim) return {};
      if (!claim.job.task.instances) return { claim };
      if (this.gathering.has(key)) return { claim, busy: true };
      return { claim, member: this.open(claim.job, link) };
    });
  }

  settled(system: System): Promise<void> {
    return this.claims.settled(systemKey(system));
  }

  join(system: System, link: MachineLink): Promise<Member | undefined> {
    return Promise.resolve(this.gathering.get(systemKey(system))?.add(link));
  }

  /** A worker took a multi-machine job from the queue: it opens the job's group as instance 1. */
  private open(job: Job, link: MachineLink): Member {
    const key = systemKey(job.system);
    const group: Group = new Group(job, this.o, () => {
      if (this.gathering.get(key) === group) this.gathering.delete(key);
    });
    this.gathering.set(key, group);
    const member = group.add(link);
    this.o.emit({ type: 'log', level: 'verbose', message: `Gathering ${group.count} machines of ${key} for ${job.name}...` });
    const alive = this.alive.get(key) ?? 0;
    if (alive < group.count) group.callOff(`only ${plural(alive, 'worker')} of ${key} to run it`);
    return member;
  }
}

/** A group of one process: its members are this process's workers. */
class Group implements GroupCore {
  readonly count: number;
  readonly members: Member[] = [];
  private state: 'gathering' | 'running' | 'off' = 'gathering';
  private readonly started: Promise<boolean>;
  private settle!: (ok: boolean) => void;
  private round = 1;
  private arrivals = new Map<Phase, Map<Member, PhaseReport>>();
  private waiting = new Map<Phase, ((r: PhaseResult) => void)[]>();
  private finished = 0;
  private startedAt = 0;
  private readonly outcome: GroupOutcome;
  readonly id = randomBytes(4).toString('hex');

  constructor(readonly job: Job, private readonly o: GroupsOptions, private readonly closeGathering: () => void) {
    this.count = job.task.instances!.count;
    this.started = new Promise((resolve) => { this.settle = resolve; });
    this.outcome = new GroupOutcome(job, o.emit);
  }

  add(link: MachineLink): Member {
    const member = new Member(this, link);
    this.members.push(member);
    if (this.members.length === this.count) this.start();
    return member;
  }

  private start(): void {
    this.state = 'running';
    this.closeGathering();
    this.startedAt = Date.now();
    this.o.emit({ type: 'job-start', job: this.job, machine: this.machines() });
    this.settle(true);
  }

  /** Stop gathering: the job is aborted once, and every member goes back to its queue. */
  callOff(why: string): void {
    if (this.state !== 'gathering') return;
    this.state = 'off';
    this.closeGathering();
    this.o.emit({ type: 'log', level: 'info', message: `Not starting ${this.job.name} on ${this.count} machines: ${why}.` });
    this.outcome.abort({ kind: why === 'the run was interrupted' ? 'interrupted' : 'error', message: `not run: ${why}` });
    this.settle(false);
  }

  whenStarted(): Promise<boolean> {
    return this.started;
  }

  instanceOf(member: Member): number {
    return this.members.indexOf(member) + 1;
  }

  hosts(): string[] {
    return this.members.map((m) => hostOf(m.link));
  }

  machines(): string {
    return this.members.map((m) => m.link.label).join(', ');
  }

  /** The sync group of the current round (a store scopes it by run): repeats start with fresh states and topics. */
  syncGroup(): string {
    return `${this.job.name}/${this.id}/${this.round}`;
  }

  get sync(): SyncService {
    return this.o.sync;
  }

  emit: Emit = (e) => this.o.emit(e);

  abandon(member: Member): void {
    this.outcome.abort({ kind: 'error', message: `not run: instance ${member.instance} (${member.link.label}) could not start it` });
    void this.o.sync.fail(this.syncGroup(), `instance ${member.instance} (${member.link.label}) could not start ${this.job.name}`);
    for (const phase of PHASES) void this.arrive(member, phase, { ok: false, failed: false, canRepeat: false });
    this.done(member);
  }

  arrive(member: Member, phase: Phase, report: PhaseReport): Promise<PhaseResult> {
    let reports = this.arrivals.get(phase);
    if (!reports) this.arrivals.set(phase, (reports = new Map()));
    const result = new Promise<PhaseResult>((resolve) => {
      const list = this.waiting.get(phase) ?? [];
      list.push(resolve);
      this.waiting.set(phase, list);
    });
    reports.set(member, report);
    if (reports.size === this.count) {
      const combined = combine(reports.values());
      const waiting = this.waiting.get(phase)?.splice(0) ?? [];
      this.whenAllArrived(phase, combined);
      for (const wake of waiting) wake(combined);
    }
    return result;
  }

  private whenAllArrived(phase: Phase, r: PhaseResult): void {
    this.outcome.phase(phase, r);
    if (phase === 'restored') {
      // The next round starts afresh.
      void this.o.sync.clear(this.syncGroup());
      this.round++;
      this.arrivals = new Map();
      this.waiting = new Map();
    }
  }

  /** A member's part ended; the last one ends the job. */
  done(member: Member): void {
    if (member.isDone) return;
    member.isDone = true;
    this.finished++;
    if (this.finished < this.count) return;
    void this.o.sync.clear(this.syncGroup());
    this.o.emit({ type: 'job-end', job: this.job, machine: this.machines(), outcome: this.outcome.end(this.members[0]!.restoreOnly), durationMs: Date.now() - this.startedAt });
  }

  fail(member: Member, what: string): void {
    void this.o.sync.fail(this.syncGroup(), `instance ${member.instance} (${member.link.label}) failed ${what}`);
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
