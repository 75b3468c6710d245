/**
 * Multi-machine jobs in a shared run (`-queue=redis://...`): the instances of
 * one job may be machines of different runners. The gathering lives in the
 * run's store (store.ts GatherPrimitives, atomic on the server), so the rules
 * of group.ts hold across runners:
 *
 * - At most one gathering per system in the whole run. The worker that
 *   claims the job opens it (its machine is instance 1, its runner the
 *   job's *owner*); every free worker of that system, on any runner, takes
 *   a seat before it claims a job of its own, and idle workers wake up for
 *   it. So a gathering fills as soon as N machines of the run are free, and
 *   two can never wait on each other.
 * - The store counts each runner's workers of each system; when the live
 *   runners' workers can no longer fill a gathering (runners stopped, were
 *   lost, or could not get machines), it is called off and the owner counts
 *   the job as aborted, once. A runner stopped while gathering gives up its
 *   seats (the owner's stop hands the job back to the queue); a lost
 *   runner's seats drop out.
 * - Running, the instances meet between the task's scripts through the
 *   store (the first report of each instance at each point wins), and the
 *   leases of the group's runners are watched: a lost runner's instances
 *   count as lost (their reports are filled in for them), the others' sync
 *   waits end at once with an error, and the job goes back to the queue,
 *   once, as any job of a lost runner.
 * - Only the owner emits the job's events (job-start, results, job-end), so
 *   the job is recorded once; the other runners keep what happens to their
 *   instances with the group, and the owner adopts it into the job's record.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { Emit } from '../events.js';
import type { Job, System } from '../project/types.js';
import type { Claim, GatherPrimitives, GatherState, Seat, StoredEntry } from '../store/store.js';
import type { SyncService } from '../sync/sync.js';
import type { MachineLink } from './machine-link.js';
import { ClaimsUnderWay, combine, GroupOutcome, hostOf, Member, PHASES, systemKey } from './group.js';
import type { Claimed, GroupCore, Groups, Phase, PhaseReport, PhaseResult } from './group.js';

/** What becomes of a claim when its group ends: recorded, handed back unstarted, or requeued after a lost runner. */
export type ClaimFate = 'finish' | 'release' | { readonly lostRunner: string };

/** What a shared group needs from its runner's queue (job-queue.ts) to record the job once. */
export interface GroupRecords {
  /** Keep the records of a job this runner has instances of but no claim on. */
  follow(job: Job): void;
  /** Those records so far, taken. */
  takeFollowed(job: Job): StoredEntry[];
  /** Stop keeping them; what is left. */
  unfollow(job: Job): StoredEntry[];
  /** Records of other runners' instances, for the claimed job's record. */
  adopt(job: Job, entries: readonly StoredEntry[]): void;
  /** The claim of `job` ends as `fate` says, once it resolves. */
  decide(job: Job, fate: Promise<ClaimFate>): void;
  /** A write nobody waits for, flushed before the runner leaves. */
  track(write: Promise<unknown>): void;
}

export interface SharedGroupsOptions {
  readonly emit: Emit;
  /** The sync service over the run's store. */
  readonly sync: SyncService;
  readonly gathering: GatherPrimitives;
  /** First Ctrl-C, or the store lost: gathering machines give up their seats. */
  readonly stopping: AbortSignal;
  /** The run's jobs, in the store's order. */
  readonly jobs: readonly Job[];
  /** This runner's name in the run. */
  readonly runner: string;
  readonly records: GroupRecords;
  /** How often gatherings and meetings are looked at (the runners' leases, five times as long). @default 100 */
  readonly pollMs?: number;
}

const seatOf = (seat: string, link: MachineLink): Omit<Seat, 'runner'> => ({ seat, host: hostOf(link), label: link.label });

export class SharedGroups implements Groups {
  private readonly claims = new ClaimsUnderWay();
  private readonly groups = new Map<string, SharedGroup>();
  private readonly pollMs: number;

  constructor(private readonly o: SharedGroupsOptions) {
    this.pollMs = o.pollMs ?? 100;
  }

  enlist(system: System): void {
    this.o.records.track(this.o.gathering.workers(systemKey(system), 1));
  }

  retire(system: System): void {
    this.o.records.track(this.o.gathering.workers(systemKey(system), -1));
  }

  isGathering(system: System): Promise<boolean> {
    return this.o.gathering.isOpen(systemKey(system)).catch(() => false);
  }

  /**
   * Claims of this process are settled, and no runner is between taking a
   * multi-machine job of the system and opening its gathering: a worker
   * whose claim found nothing would otherwise let its machine go just
   * before the gathering it could join opens.
   */
  async settled(system: System): Promise<void> {
    await this.claims.settled(systemKey(system));
    const jobs = this.o.jobs.flatMap((j, i) => (j.task.instances && j.system === system ? [i] : []));
    while (!this.o.stopping.aborted && (await this.o.gathering.isOpening(jobs).catch(() => false))) {
      await wait(this.pollMs, undefined, { signal: this.o.stopping }).catch(() => {});
    }
  }

  claim(system: System, link: MachineLink, take: () => Promise<Claim | undefined>): Promise<Claimed> {
    const key = systemKey(system);
    return this.claims.during(key, async () => {
      const claim = await take();
      if (!claim) return {};
      const instances = claim.job.task.instances;
      if (!instances) return { claim };
      const seat = randomBytes(6).toString('hex');
      // A store that fails is lost for the run: the claim goes back, and the worker stops.
      const opened = await this.o.gathering.open(claim, key, instances.count, seatOf(seat, link)).catch(() => 'busy' as const);
      if (opened === 'busy') return { claim, busy: true };
      this.o.emit({ type: 'log', level: 'verbose', message: `Gathering ${instances.count} machines of ${key} for ${claim.job.name} in the shared run...` });
      const group = this.group(opened.id, claim.job, instances.count, this.o.runner);
      group.isRetry = claim.lostRunner !== undefined;
      return { claim, member: group.add(link, seat) };
    });
  }

  async join(system: System, link: MachineLink): Promise<Member | undefined> {
    if (this.o.stopping.aborted) return undefined;
    const seat = randomBytes(6).toString('hex');
    const joined = await this.o.gathering.join(systemKey(system), seatOf(seat, link)).catch(() => undefined);
    const job = joined && this.o.jobs[joined.job];
    if (!joined || !job) return undefined;
    if (joined.owner !== this.o.runner) {
      this.o.emit({ type: 'log', level: 'verbose', message: `Joining with ${link.label} the machines runner ${joined.owner} gathers for ${job.name}...` });
    }
    return this.group(joined.id, job, joined.count, joined.owner).add(link, seat);
  }

  private group(id: string, job: Job, count: number, owner: string): SharedGroup {
    let group = this.groups.get(id);
    if (!group) {
      group = new SharedGroup(id, job, count, owner === this.o.runner, this.o, () => this.groups.delete(id));
      this.groups.set(id, group);
    }
    return group;
  }
}

/** This runner's side of one group: its members, and what it learns from the store. */
class SharedGroup implements GroupCore {
  private readonly members: Member[] = [];
  /** Every instance's seat, in instance order, once running. */
  private seats: readonly Seat[] = [];
  private round = 1;
  private startedAt = 0;
  private started?: Promise<boolean>;
  private readonly meetings = new Map<string, Promise<PhaseResult>>();
  /** Meeting points (round, phase) a member of this runner reported at. */
  private readonly reported: [number, Phase][] = [];
  /** A runner seen lost (its instances' waits were ended). */
  private readonly lostSeen = new Set<string>();
  /** A runner whose instance was lost before a meeting: the job goes back to the queue. */
  private lostRunner?: string;
  private watch?: NodeJS.Timeout;
  private finished = 0;
  private readonly outcome: GroupOutcome;
  private settleFate: (fate: ClaimFate) => void = () => {};
  private readonly pollMs: number;
  /** The owner's claim is the retry of a job whose runner was lost: a second loss aborts it. */
  isRetry = false;

  constructor(
    readonly id: string,
    readonly job: Job,
    readonly count: number,
    /** This runner holds the job's claim: it speaks for the job. */
    private readonly owned: boolean,
    private readonly o: SharedGroupsOptions,
    private readonly forget: () => void,
  ) {
    this.pollMs = o.pollMs ?? 100;
    // The other runners keep quiet: their results would count the job again.
    this.outcome = new GroupOutcome(job, owned ? o.emit : () => {});
    if (owned) o.records.decide(job, new Promise((resolve) => { this.settleFate = resolve; }));
    else o.records.follow(job);
  }

  get sync(): SyncService {
    return this.o.sync;
  }

  get emit(): Emit {
    return this.o.emit;
  }

  add(link: MachineLink, seat: string): Member {
    const member = new Member(this, link, seat);
    this.members.push(member);
    return member;
  }

  instanceOf(member: Member): number {
    return this.seats.findIndex((s) => s.seat === member.seat) + 1;
  }

  hosts(): string[] {
    return this.seats.map((s) => s.host);
  }

  machines(): string {
    return this.seats.map((s) => s.label).join(', ');
  }

  syncGroup(): string {
    return `${this.job.name}/${this.id}/${this.round}`;
  }

  whenStarted(): Promise<boolean> {
    return (this.started ??= this.gather());
  }

  /** Waits for the gathering to fill; gives up this runner's seats when it stops. */
  private async gather(): Promise<boolean> {
    const { gathering, stopping } = this.o;
    try {
      for (;;) {
        let s: GatherState | undefined;
        if (stopping.aborted) {
          // Too late once running (the group goes on); called off already, it stays so.
          for (const m of this.members) s = await gathering.leave(this.id, m.seat);
          s ??= await gathering.status(this.id);
          if (s.state === 'gathering' || s.state === 'dissolved') return this.calledOff({ state: 'dissolved', reason: 'this runner stopped' });
        } else {
          s = await gathering.status(this.id);
        }
        if (s.state === 'running') return this.begin(s.seats);
        if (s.state !== 'gathering') return this.calledOff(s);
        await wait(this.pollMs, undefined, { signal: stopping }).catch(() => {});
      }
    } catch (err) {
      return this.calledOff({ state: 'off', reason: (err as Error).message });
    }
  }

  private calledOff(s: { readonly state: 'off' | 'dissolved'; readonly reason: string }): boolean {
    const log = (message: string, level: 'info' | 'verbose' = 'info') => this.o.emit({ type: 'log', level, message });
    if (!this.owned) {
      log(`Leaving the machines gathered for ${this.job.name}: ${s.reason}.`, 'verbose');
      this.o.records.unfollow(this.job);
    } else if (s.state === 'off') {
      log(`Not starting ${this.job.name} on ${this.count} machines: ${s.reason}.`);
      this.outcome.abort({ kind: 'error', message: `not run: ${s.reason}` });
      this.settleFate('finish');
    } else {
      log(`Not starting ${this.job.name} on ${this.count} machines: ${s.reason}; it goes back to the shared run.`);
      this.settleFate('release');
    }
    this.forget();
    return false;
  }

  private begin(seats: readonly Seat[]): boolean {
    this.seats = seats;
    this.startedAt = Date.now();
    if (this.owned) this.o.emit({ type: 'job-start', job: this.job, machine: this.machines() });
    // A runner lost while its instances run: the others' waits end now, not at their timeouts.
    this.watch = setInterval(() => {
      this.o.gathering.status(this.id).then((s) => {
        if (s.state === 'running') for (const runner of s.lost) this.seeLost(runner);
      }, () => {});
    }, this.pollMs * 5);
    this.watch.unref();
    return true;
  }

  private seeLost(runner: string): void {
    if (this.lostSeen.has(runner)) return;
    this.lostSeen.add(runner);
    const k = this.seats.findIndex((s) => s.runner === runner) + 1;
    const what = `instance ${k} (${this.seats[k - 1]?.label ?? '?'}) was lost with its runner ${runner}`;
    this.o.emit({ type: 'log', level: 'info', message: `Runner ${runner} of ${this.job.name} instance ${k}/${this.count} was lost: the other instances stop waiting for it.` });
    this.o.sync.fail(this.syncGroup(), what).catch(() => {});
  }

  abandon(member: Member): void {
    const what = `instance ${member.instance} (${member.link.label})`;
    this.o.sync.fail(this.syncGroup(), `${what} could not start ${this.job.name}`).catch(() => {});
    const report: PhaseReport = { ok: false, failed: false, canRepeat: false, abandoned: `not run: ${what} could not start it` };
    for (const phase of PHASES) void this.arrive(member, phase, report);
    this.done(member);
  }

  fail(member: Member, what: string): void {
    this.o.sync.fail(this.syncGroup(), `instance ${member.instance} (${member.link.label}) failed ${what}`).catch(() => {});
  }

  async arrive(member: Member, phase: Phase, report: PhaseReport): Promise<PhaseResult> {
    const round = this.round;
    this.reported.push([round, phase]);
    try {
      // A follower's records reach the group before its report: the owner takes them once everyone reported.
      if (!this.owned) await this.o.gathering.keep(this.id, this.o.records.takeFollowed(this.job));
      await this.o.gathering.meet(this.id, `${round}/${phase}`, this.instanceOf(member), JSON.stringify(report));
    } catch (err) {
      return this.cut(err as Error);
    }
    return this.meeting(round, phase);
  }

  /** Everyone's combined report at a point, once all are in; processed once per runner, in order. */
  private meeting(round: number, phase: Phase): Promise<PhaseResult> {
    const point = `${round}/${phase}`;
    let met = this.meetings.get(point);
    if (!met) this.meetings.set(point, (met = this.meet(round, phase)));
    return met;
  }

  private async meet(round: number, phase: Phase): Promise<PhaseResult> {
    const point = `${round}/${phase}`;
    let reports: PhaseReport[];
    try {
      for (;;) {
        const m = await this.o.gathering.meet(this.id, point);
        const missing = [...m.lost].filter(([k]) => !m.reports.has(k));
        // A lost runner's instances will not report: their reports say so (the first report wins, so all runners agree).
        for (const [k, runner] of missing) {
          this.seeLost(runner);
          await this.o.gathering.meet(this.id, point, k, JSON.stringify({ ok: false, failed: false, canRepeat: false, lost: runner } satisfies PhaseReport));
        }
        if (missing.length > 0) continue;
        if (m.reports.size >= this.count) {
          reports = [...m.reports.values()].map((r) => JSON.parse(r) as PhaseReport);
          break;
        }
        await wait(this.pollMs);
      }
    } catch (err) {
      return this.cut(err as Error);
    }
    // The results of a phase follow those of the one before it.
    const order = (round - 1) * PHASES.length + PHASES.indexOf(phase);
    for (let i = order - 1; i >= Math.max(0, order - PHASES.length); i--) {
      const before = this.meetings.get(`${Math.floor(i / PHASES.length) + 1}/${PHASES[i % PHASES.length]}`);
      if (before) {
        await before;
        break;
      }
    }
    const combined = combine(reports);
    if (this.owned) this.o.records.adopt(this.job, await this.o.gathering.take(this.id).catch(() => []));
    const lost = reports.find((r) => r.lost !== undefined)?.lost;
    if (lost !== undefined && this.lostRunner === undefined) {
      this.lostRunner = lost;
      // As for a job whose runner was lost (store/redis-scripts.ts REQUEUE): it runs again, once.
      if (this.isRetry) this.outcome.abort({ kind: 'error', message: `not run: a runner of its group was lost, in its retry too (${lost})` });
      else this.outcome.drop();
    }
    if (combined.abandoned !== undefined) this.outcome.abort({ kind: 'error', message: combined.abandoned });
    this.outcome.phase(phase, combined);
    if (phase === 'restored') this.round = round + 1;
    return combined;
  }

  /** The store failed (it is lost for the run): the instances here stop meeting the others, restore and end. */
  private cut(err: Error): PhaseResult {
    this.outcome.abort({ kind: 'error', message: `not run to its end: cannot meet the other instances: ${err.message}` });
    return { ok: false, failed: false, canRepeat: false, stops: true };
  }

  done(member: Member): void {
    if (member.isDone) return;
    member.isDone = true;
    if (++this.finished < this.members.length) return;
    clearInterval(this.watch);
    void this.end();
  }

  /** Every member of this runner is done: a follower hands over what is left; the owner ends the job once the group has. */
  private async end(): Promise<void> {
    try {
      if (!this.owned) {
        await this.o.gathering.keep(this.id, this.o.records.unfollow(this.job)).catch(() => {});
        return;
      }
      // A member that abandoned reported at points it did not wait for: the group ends with them.
      await Promise.all(this.reported.map(([round, phase]) => this.meeting(round, phase)));
      this.o.records.adopt(this.job, await this.o.gathering.take(this.id).catch(() => []));
      const outcome = this.outcome.end(this.members[0]!.restoreOnly);
      this.o.emit({ type: 'job-end', job: this.job, machine: this.machines(), outcome, durationMs: Date.now() - this.startedAt });
      if (this.lostRunner !== undefined && !this.isRetry) {
        this.o.emit({ type: 'log', level: 'info', message: `${this.job.name} goes back to the shared run: runner ${this.lostRunner} was lost while it ran.` });
      }
      this.settleFate(this.lostRunner !== undefined ? { lostRunner: this.lostRunner } : 'finish');
    } finally {
      this.forget();
    }
  }
}
