/**
 * Obtaining a machine for a worker (spec §5.9): a recorded one under
 * -reuse, else a fresh allocation with the original's retries; connecting,
 * and sending the project. What a worker then holds is machine-link.ts.
 */
import type { Backend, Machine } from '../backends/backend.js';
import { FatalError, MachineGoneError, machineName } from '../backends/backend.js';
import type { System } from '../project/types.js';
import { outputText } from '../output.js';
import type { Session } from '../remote/session.js';
import { DialRefusedError } from '../remote/ssh-dial.js';
import { discard, type LinkShared, MachineLink, release, sleep, systemName } from './machine-link.js';

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
