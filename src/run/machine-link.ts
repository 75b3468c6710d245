/**
 * A worker's hold on one machine (spec §5.9): obtaining it (a recorded one
 * under -reuse, else a fresh allocation with the original's retries),
 * connecting, sending the project, redialing after a reboot or a dropped
 * connection, and letting it go (discarded, or kept under -reuse).
 */
import type { Readable } from 'node:stream';
import { setTimeout as wait } from 'node:timers/promises';
import type { Backend, Machine } from '../backends/backend.js';
import { FatalError, MachineGoneError, machineName } from '../backends/backend.js';
import type { AbortReason, Emit } from '../events.js';
import type { System } from '../project/types.js';
import { outputText } from '../output.js';
import type { Session } from '../remote/session.js';
import { DialRefusedError } from '../remote/ssh-session.js';
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
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
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

const systemName = (s: System): string => `${s.backend}:${s.name}`;

export const workerPath = (path: string, worker: number): string => path.replace(/\$(\{SPREAD_WORKER\}|SPREAD_WORKER\b)/g, String(worker));

function release(shared: LinkShared, machine: Pick<Machine, 'address'>): void {
  const n = shared.reserved.get(machine.address) ?? 0;
  if (n <= 1) shared.reserved.delete(machine.address);
  else shared.reserved.set(machine.address, n - 1);
}

async function discard(shared: LinkShared, machine: Machine): Promise<void> {
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

const gaveUp = (shared: LinkShared, system: System, why: string): void =>
  void shared.gaveUp.set(systemName(system), { kind: 'error', message: `not run: ${why}` });

const log = (shared: LinkShared, message: string, level: 'info' | 'verbose' | 'debug' = 'info'): void =>
  shared.emit({ type: 'log', level, message });

/** A machine for a worker, ready to run jobs; undefined when none can be had. */
export async function obtainMachine(shared: LinkShared, backend: Backend, system: System, worker: number): Promise<MachineLink | undefined> {
  for (let attempt = 1; !shared.stopping.aborted; attempt++) {
    if (attempt > 3) {
      log(shared, `Cannot allocate ${systemName(system)} after too many retries.`);
      gaveUp(shared, system, `cannot allocate ${systemName(system)} after too many retries`);
      return undefined;
    }
    let link = await reuseMachine(shared, backend, system, worker);
    const reused = link !== undefined;
    if (!link) {
      if (shared.options.discard) return undefined;
      // Under -reuse, recorded machines that are all busy with other workers
      // mean this worker is not needed. A recorded machine that cannot be
      // reached (gone, garbage-collected) does not count: allocate instead.
      const live = shared.reuse.entries(system.backend, system.name).filter((e) => !shared.unreachable.has(e.address));
      if (shared.options.reuse && live.length > 0 && worker > (shared.needed?.(system) ?? 0)) return undefined;
      link = await allocateMachine(shared, backend, system, worker);
      if (!link) return undefined;
    }
    if (await sendContent(shared, link, reused)) return link;
    await link.session.close().catch(() => {});
    if (!reused) {
      release(shared, link.machine);
      shared.held.delete(link);
      await discard(shared, link.machine);
    }
  }
  return undefined;
}

function sendContent(shared: LinkShared, link: MachineLink, reused: boolean): Promise<boolean> {
  const address = link.machine.address;
  const turn = (shared.uploads.get(address) ?? Promise.resolve()).then(() => sendContentNow(shared, link, reused));
  shared.uploads.set(address, turn.catch(() => undefined));
  return turn;
}

async function sendContentNow(shared: LinkShared, link: MachineLink, reused: boolean): Promise<boolean> {
  const path = link.remotePath;
  let send = true;
  try {
    if (reused && shared.options.resend) {
      log(shared, `Removing project data from ${link.name} at ${path}...`);
      await link.session.exec({ script: `rm -rf '${path}'` });
    } else if (reused) {
      send = await missingOrEmpty(link.session, path);
    }
    if (!send) {
      shared.emit({ type: 'machine', action: 'reusing-data', machine: link.name, system: systemName(link.machine.system) });
      return true;
    }
    shared.emit({ type: 'machine', action: 'sending', machine: link.name, system: systemName(link.machine.system) });
    const content = await shared.content();
    // A new machine's directory must be empty: checked with the upload, in one round trip.
    if (!(await link.session.upload(content.open(), path, { ifEmpty: !reused }))) throw new Error(`remote directory ${path} on ${link.name} is not empty`);
    return true;
  } catch (err) {
    const why = (err as Error).message;
    log(shared, reused ? `Cannot send project content to ${link.name}: ${why}` : `Discarding ${link.name}, cannot send project content: ${why}`);
    gaveUp(shared, link.machine.system, `cannot send project content to ${link.name}: ${why}`);
    return false;
  }
}

async function missingOrEmpty(session: Session, dir: string): Promise<boolean> {
  const r = await session.exec({ script: `! test -e '${dir}' || ls -a '${dir}'` });
  const output = outputText(r.output);
  if (r.exitCode !== 0) throw new Error(`cannot check if ${dir} is empty: ${output.trim()}`);
  return output.split('\n').every((l) => l.trim() === '' || l.trim() === '.' || l.trim() === '..');
}

async function reuseMachine(shared: LinkShared, backend: Backend, system: System, worker: number): Promise<MachineLink | undefined> {
  for (const entry of shared.reuse.entries(system.backend, system.name)) {
    // Count from the file as it is now, not from the list above: another
    // worker may have discarded (and released) this entry in the meantime.
    const recorded = shared.reuse.entries(system.backend, system.name).filter((e) => e.address === entry.address).length;
    if ((shared.reserved.get(entry.address) ?? 0) >= recorded) continue;
    shared.reserved.set(entry.address, (shared.reserved.get(entry.address) ?? 0) + 1);
    let machine: Machine;
    try {
      machine = await backend.reuse(entry, system);
    } catch (err) {
      shared.unreachable.add(entry.address);
      if (shared.options.discard || err instanceof MachineGoneError) {
        // Nothing left to throw away, nothing to come back to: the machine is gone already.
        log(shared, `Forgetting ${systemName(system)} at ${entry.address}: ${(err as Error).message}`);
        await shared.reuse.remove(system.backend, system.name, entry.address).catch((err: Error) => log(shared, `Error removing ${systemName(system)} at ${entry.address} from reuse file: ${err.message}`));
      } else {
        log(shared, `Cannot reuse ${systemName(system)} at ${entry.address}: ${(err as Error).message}`);
      }
      continue;
    }
    if (machine.address !== entry.address) {
      // Restarted elsewhere (a stopped container gets a new port): the entry follows it, so a later discard finds it.
      log(shared, `${machineName(machine)} moved from ${entry.address} to ${machine.address}.`, 'verbose');
      // Reserved under its new address before the write is awaited, so no other worker takes it meanwhile.
      release(shared, { address: entry.address });
      shared.reserved.set(machine.address, (shared.reserved.get(machine.address) ?? 0) + 1);
      await shared.reuse.replace(system.backend, system.name, entry.address, machine.reuseEntry()).catch((err: Error) => log(shared, `Error updating ${systemName(system)} in reuse file: ${err.message}`));
    }
    if (shared.options.discard) {
      await discard(shared, machine);
      release(shared, machine);
      continue;
    }
    shared.emit({ type: 'machine', action: 'reusing', machine: machineName(machine), system: systemName(system), address: entry.address });
    try {
      const session = await machine.connect(AbortSignal.timeout(10_000));
      return new MachineLink(machine, session, shared, false, worker);
    } catch (err) {
      shared.unreachable.add(entry.address);
      if (shared.options.reuse) {
        log(shared, `Cannot reuse ${systemName(system)} at ${entry.address}: ${(err as Error).message}`);
      } else {
        log(shared, `Discarding ${machineName(machine)}: ${(err as Error).message}`);
        await discard(shared, machine);
      }
      release(shared, machine);
    }
  }
  return undefined;
}

async function allocateMachine(shared: LinkShared, backend: Backend, system: System, worker: number): Promise<MachineLink | undefined> {
  shared.emit({ type: 'machine', action: 'allocating', machine: systemName(system), system: systemName(system) });
  const retryMs = shared.timing?.allocateRetryMs ?? 5000;
  const deadline = Date.now() + (shared.timing?.allocateTimeoutMs ?? 5 * 60_000);
  let machine: Machine | undefined;
  let lastError = '';
  let lastLog = 0;
  while (!machine) {
    try {
      machine = await backend.allocate(system, shared.stopping);
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastError || Date.now() - lastLog > 15_000) {
        log(shared, `Cannot allocate ${systemName(system)}: ${message}`);
        lastLog = Date.now();
      }
      lastError = message;
      if (err instanceof FatalError || Date.now() > deadline || shared.stopping.aborted) {
        gaveUp(shared, system, `cannot allocate ${systemName(system)}: ${message}`);
        return undefined;
      }
      await sleep(retryMs, shared.stopping);
      if (shared.stopping.aborted) return undefined;
    }
  }
  shared.reserved.set(machine.address, (shared.reserved.get(machine.address) ?? 0) + 1);
  try {
    // On disk before dialing, as the original: a machine is never held unrecorded.
    await shared.reuse.add(system.backend, system.name, machine.reuseEntry());
  } catch (err) {
    log(shared, `Error adding ${machineName(machine)} to reuse file: ${(err as Error).message}`);
  }
  shared.emit({ type: 'machine', action: 'connecting', machine: machineName(machine), system: systemName(system) });
  const session = await dialWithRetries(shared, machine);
  if (!session) {
    release(shared, machine);
    await discard(shared, machine);
    return undefined;
  }
  shared.emit({ type: 'machine', action: 'connected', machine: machineName(machine), address: machine.address, system: systemName(system) });
  const link = new MachineLink(machine, session, shared, true, worker);
  shared.held.add(link);
  return link;
}

/** Dial until it works or a minute passes; early failures retry quickly (containers come up in a second or two). */
async function dialWithRetries(shared: LinkShared, machine: Machine): Promise<Session | undefined> {
  const deadline = Date.now() + (shared.timing?.dialTimeoutMs ?? 60_000);
  let delay = 250;
  let lastError = '';
  let refused = false;
  for (;;) {
    try {
      return await machine.connect(AbortSignal.timeout(10_000));
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastError) log(shared, `Cannot connect to ${machineName(machine)}: ${message}`, 'debug');
      lastError = message;
      // A refused password, no common algorithm, not SSH at all: once is enough.
      if (err instanceof DialRefusedError) refused = true;
    }
    if (refused || Date.now() > deadline || shared.stopping.aborted) {
      log(shared, `Discarding ${machineName(machine)}, cannot connect: ${lastError}`);
      gaveUp(shared, machine.system, `cannot connect to ${machineName(machine)}: ${lastError}`);
      return undefined;
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
}
