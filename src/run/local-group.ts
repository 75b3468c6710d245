/**
 * The groups of one process, the default (group.ts): gathering the
 * machines of a multi-machine job among this runner's workers, and keeping
 * its instances in step between the scripts.
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
 */
import { randomBytes } from 'node:crypto';
import type { Emit } from '../events.js';
import type { Job, System } from '../project/types.js';
import type { Claim } from '../store/store.js';
import { plural } from '../sync/sync.js';
import type { SyncService } from '../sync/sync.js';
import type { MachineLink } from './machine-link.js';
import { ClaimsUnderWay, combine, GroupOutcome, hostOf, Member, PHASES, systemKey } from './group.js';
import type { Claimed, GroupCore, Groups, Phase, PhaseReport, PhaseResult } from './group.js';

export interface LocalGroupsOptions {
  readonly emit: Emit;
  readonly sync: SyncService;
  /** First Ctrl-C: groups still gathering are called off. */
  readonly stopping: AbortSignal;
}

/** The groups of one process: at most one gathering per system. */
export class LocalGroups implements Groups {
  private readonly gathering = new Map<string, Group>();
  private readonly alive = new Map<string, number>();
  private readonly claims = new ClaimsUnderWay();

  constructor(private readonly o: LocalGroupsOptions) {
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

  constructor(readonly job: Job, private readonly o: LocalGroupsOptions, private readonly closeGathering: () => void) {
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

