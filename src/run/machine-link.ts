/**
 * A worker's hold on one machine (spec §5.9): redialing after a reboot or a
 * dropped connection, and letting it go (discarded, or kept under -reuse).
 * Obtaining one is obtain-machine.ts.
 */
import type { Readable } from 'node:stream';
import { setTimeout as wait } from 'node:timers/promises';
import type { Machine } from '../backends/backend.js';
import { machineName } from '../backends/backend.js';
import type { AbortReason, Emit } from '../events.js';
import type { System } from '../project/types.js';
import { outputText } from '../output.js';
import type { Session } from '../remote/session.js';
import type { ReuseFile } from './reuse-file.js';
import type { RunOptions } from './options.js';

export interface Content {
  readonly size: number;
  open(): Readable;
}

/** What every link of a run shares. */
export interface LinkShared {
  readonly emit: Emit;
  readonly options: RunOptions;
  readonly reuse: ReuseFile;
  readonly remotePath: string;
  readonly content: () => Promise<Content>;
  /** Stop handing out work (first Ctrl-C): no new allocations. */
  readonly stopping: AbortSignal;
  /** Machines this run allocated and still holds (for "Keeping ..." at the end). */
  readonly held: Set<MachineLink>;
  /** Reuse entries taken by a worker, by address: a second worker must not take the same one. */
  readonly reserved: Map<string, number>;
  /**
   * The latest upload to each address: checking that the path is free and
   * sending the project happen as one step per address, so two workers on
   * one machine never both find the path empty.
   */
  readonly uploads: Map<string, Promise<unknown>>;
  /** Recorded machines this run could not reach: under -reuse they do not stop a worker from allocating. */
  readonly unreachable: Set<string>;
  /** Why the last attempt to obtain a machine of a system (`backend:system`) failed: its jobs then do not run. */
  readonly gaveUp: Map<string, AbortReason>;
  /** Workers a system needs at once whatever -reuse recorded: the most instances of its multi-machine jobs. */
  readonly needed?: (system: System) => number;
  /** Timings, overridable by tests: [allocate retry, allocate give-up, dial give-up] in ms. */
  readonly timing?: { readonly allocateRetryMs?: number; readonly allocateTimeoutMs?: number; readonly dialTimeoutMs?: number };
}

/** Wait, or stop waiting when the signal aborts (resolving either way). */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  wait(ms, undefined, signal ? { signal } : {}).catch(() => undefined);

export class MachineLink {
  private lost = false;
  private kept = false;

  constructor(
    readonly machine: Machine,
    public session: Session,
    private readonly shared: LinkShared,
    /** Allocated by this run (not reused from the file). */
    readonly fresh: boolean,
    /** The worker's number within its system, from 1 (for `$SPREAD_WORKER` in `path`). */
    readonly worker: number,
  ) {}

  get name(): string {
    return machineName(this.machine);
  }

  get label(): string {
    return this.machine.label;
  }

  /** How the log names the machine in parentheses (Machine.logLabel). */
  get logLabel(): string {
    return this.machine.logLabel ?? this.machine.label;
  }

  get sudo(): boolean {
    return this.machine.username !== 'root';
  }

  /**
   * The project's path on this machine: under a worker directory for the
   * local backend, and with `$SPREAD_WORKER` replaced by the worker's number,
   * so workers that share a machine can ask for paths of their own.
   */
  get remotePath(): string {
    return this.machine.root + workerPath(this.shared.remotePath, this.worker);
  }

  get isLost(): boolean {
    return this.lost;
  }

  /** Keep the machine after the run, with or without -reuse (where a flake hunt matched). */
  keep(): void {
    this.kept = true;
  }

  get isKept(): boolean {
    return this.kept;
  }

  /** Drop the machine from this run's reuse file (it is recorded in another one). */
  forget(): void {
    this.shared.reuse.remove(this.machine.system.backend, this.machine.system.name, this.machine.address);
  }

  async bootId(): Promise<string> {
    const r = await this.session.exec({ script: 'cat /proc/sys/kernel/random/boot_id' });
    const output = outputText(r.output).trim();
    if (r.exitCode !== 0) throw new Error(`cannot obtain the remote system boot_id: ${output}`);
    return output;
  }

  /**
   * Reboot and redial until the boot id changes (spec §5.5): retries every
   * 200 ms, `onSlow` at each warn interval, failing after the kill timeout.
   */
  async reboot(context: string, warnMs: number, killMs: number, onSlow: () => void): Promise<void> {
    if (!this.machine.canReboot) throw new Error(`cannot reboot ${this.name}: ${this.machine.system.backend} machines cannot be rebooted`);
    const before = await this.bootId();
    const old = this.session;
    const started = Date.now();
    let nextWarn = started + warnMs;
    // Close the old session only once `reboot` has run (it returns, or the machine drops the link),
    // not after a fixed pause: on a busy machine the command may not have started yet.
    const cap = new AbortController();
    await Promise.race([old.exec({ script: 'reboot' }).catch(() => {}), sleep(Math.min(killMs, 60_000), cap.signal)]);
    cap.abort();
    await old.close().catch(() => {});
    for (;;) {
      let live = false;
      try {
        const session = await this.machine.connect(AbortSignal.timeout(5000));
        this.session = session;
        if ((await this.bootId().catch(() => before)) !== before) return;
        live = true;
      } catch {
        // Not back yet.
      }
      const now = Date.now();
      if (now - started > killMs) {
        // The next job needs a live session: the one just made (the machine never went down), or a new one.
        if (!live) await this.recover();
        throw new Error(`kill-timeout reached after ${context} reboot request`);
      }
      if (live) await this.session.close().catch(() => {});
      if (now > nextWarn) {
        onSlow();
        nextWarn += warnMs;
      }
      await sleep(200);
    }
  }

  /**
   * After a dropped connection: redial for up to the dial timeout. On
   * failure the machine is marked lost (the worker then lets it go).
   */
  async recover(): Promise<boolean> {
    await this.session.close().catch(() => {});
    const deadline = Date.now() + (this.shared.timing?.dialTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      try {
        this.session = await this.machine.connect(AbortSignal.timeout(10_000));
        this.shared.emit({ type: 'machine', action: 'reconnected', machine: this.name, address: this.machine.address, system: systemName(this.machine.system) });
        return true;
      } catch {
        await sleep(1000);
      }
    }
    this.lost = true;
    return false;
  }

  /** Discard the machine, or keep it under -reuse (a lost machine is always discarded). */
  async release(): Promise<void> {
    await this.session.close().catch(() => {});
    release(this.shared, this.machine);
    if ((this.shared.options.reuse || this.kept) && !this.lost) return;
    this.shared.held.delete(this);
    await discard(this.shared, this.machine);
  }
}

export const systemName = (s: System): string => `${s.backend}:${s.name}`;

export const workerPath = (path: string, worker: number): string => path.replace(/\$(\{SPREAD_WORKER\}|SPREAD_WORKER\b)/g, String(worker));

/** Gives back a worker's claim on an address (LinkShared.reserved). */
export function release(shared: LinkShared, machine: Pick<Machine, 'address'>): void {
  const n = shared.reserved.get(machine.address) ?? 0;
  if (n <= 1) shared.reserved.delete(machine.address);
  else shared.reserved.set(machine.address, n - 1);
}

/** Discards the machine through its backend and forgets it in the reuse file; failures are logged, not thrown. */
export async function discard(shared: LinkShared, machine: Machine): Promise<void> {
  shared.emit({ type: 'machine', action: 'discarding', machine: machineName(machine), system: systemName(machine.system) });
  try {
    await machine.discard();
  } catch (err) {
    shared.emit({ type: 'log', level: 'info', message: `Error discarding ${machineName(machine)}: ${(err as Error).message}` });
  }
  try {
    await shared.reuse.remove(machine.system.backend, machine.system.name, machine.address);
  } catch (err) {
    shared.emit({ type: 'log', level: 'info', message: `Error removing ${machineName(machine)} from reuse file: ${(err as Error).message}` });
  }
}
