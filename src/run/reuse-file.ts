/**
 * The reuse file (spec §5.10): every machine a run holds, so that `-reuse`
 * can use it again and `-reuse-pid=N -discard` can throw away what a killed
 * run left. Same format as the original, so both tools read each other's:
 *
 *     backends:
 *         lxd:
 *             systems:
 *                 - ubuntu-16.04:
 *                       password: ...
 *                       address: ...
 *                       data: {name: spread-1-ubuntu-16-04}
 *
 * Same crash safety too: each change goes first to `<file>.new` (written to a
 * temporary file and renamed, so it is whole or absent), then into the file
 * itself, then `.new` is removed; a reader finding `.new` trusts it. Unlike
 * the original those files sit next to the reuse file, not in the working
 * directory. The file is mode 0600 (it holds passwords) and locked for the
 * whole run with flock(2) through util-linux `flock`, which is the lock the
 * original takes, so two runs never share machines.
 *
 * The writes (each synced to disk, as the original syncs them) go through
 * libuv's thread pool, one after another: a synced write takes milliseconds
 * to tens of them, and done synchronously it stalled every other worker's
 * SSH traffic each time a machine came or went. A caller that must know its
 * change is on disk (before dialing a new machine) awaits it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import type { ReuseEntry } from '../backends/backend.js';

interface Stored extends ReuseEntry {
  readonly system: string;
}

export class ReuseFile {
  private constructor(
    readonly path: string,
    private readonly lock: ChildProcess | undefined,
    private backends: Map<string, Stored[]>,
  ) {}

  /** The writes in flight, in order; each writes the state as it is when it starts. */
  private writing: Promise<void> = Promise.resolve();
  /** A write is queued behind the current one and will include every change made until it starts. */
  private queued: Promise<void> | undefined;

  /** Open and lock; says so after 3 s of waiting for another run. */
  static async open(path: string, log: (message: string) => void): Promise<ReuseFile> {
    closeSync(openSync(path, 'a', 0o600));
    const lock = await takeLock(path, () => log('Waiting for another process to release reuse lock.'));
    const source = existsSync(`${path}.new`) ? `${path}.new` : path;
    let backends: Map<string, Stored[]>;
    try {
      backends = decode(readFileSync(source, 'utf8'));
    } catch (err) {
      lock?.kill();
      throw new Error(`cannot read reuse tracking file ${source}: ${(err as Error).message}`);
    }
    return new ReuseFile(path, lock, backends);
  }

  /** Entries recorded for a system, oldest first. */
  entries(backend: string, system: string): ReuseEntry[] {
    return (this.backends.get(backend) ?? []).filter((e) => e.system === system).map(({ system: _, ...entry }) => entry);
  }

  get size(): number {
    let n = 0;
    for (const list of this.backends.values()) n += list.length;
    return n;
  }

  /** Record a machine; resolves once the record is on disk. */
  add(backend: string, system: string, entry: ReuseEntry): Promise<void> {
    const list = this.backends.get(backend) ?? [];
    list.push({ system, ...entry });
    this.backends.set(backend, list);
    return this.write();
  }

  /** Remove one entry of that address (several workers may share one). */
  remove(backend: string, system: string, address: string): Promise<void> {
    const list = this.backends.get(backend);
    const i = list?.findIndex((e) => e.system === system && e.address === address) ?? -1;
    if (i < 0) return this.writing;
    list!.splice(i, 1);
    return this.write();
  }

  /** Finish the writes and release the lock; with `remove`, delete the file too (a run that kept nothing). */
  async close(remove = false): Promise<void> {
    await this.writing.catch(() => undefined);
    if (remove) await rm(this.path, { force: true });
    this.lock?.stdin?.end();
    this.lock?.kill();
  }

  /** Queue a write of the current state (one queued write serves every change made before it starts). */
  private write(): Promise<void> {
    this.queued ??= this.writing.catch(() => undefined).then(() => {
      this.queued = undefined;
      return writeState(this.path, encode(this.backends));
    });
    this.writing = this.queued;
    return this.queued;
  }
}

/** `.new` (via a temporary file), the file itself, then no `.new`: the original's order. */
async function writeState(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeWhole(tmp, text);
  await rename(tmp, `${path}.new`);
  await writeWhole(path, text);
  await rm(`${path}.new`, { force: true });
}

async function writeWhole(path: string, text: string): Promise<void> {
  const file = await open(path, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

function decode(text: string): Map<string, Stored[]> {
  const doc = (parse(text) ?? {}) as { backends?: Record<string, { systems?: Record<string, ReuseEntry>[] } | null> };
  const result = new Map<string, Stored[]>();
  for (const [backend, value] of Object.entries(doc.backends ?? {})) {
    const list: Stored[] = [];
    for (const item of value?.systems ?? []) {
      for (const [system, entry] of Object.entries(item)) list.push({ system, ...entry, password: String(entry.password ?? ''), address: String(entry.address ?? '') });
    }
    if (list.length) result.set(backend, list);
  }
  return result;
}

function encode(backends: ReadonlyMap<string, Stored[]>): string {
  const content: Record<string, { systems: Record<string, ReuseEntry>[] }> = {};
  for (const [backend, list] of backends) {
    if (list.length) content[backend] = { systems: list.map(({ system, ...entry }) => ({ [system]: entry })) };
  }
  return Object.keys(content).length ? stringify({ backends: content }) : '';
}

/**
 * Hold flock(2) on the file through `flock -x FILE sh -c 'echo locked; exec cat'`:
 * the lock lives as long as that process, which ends when our stdin pipe
 * closes, including when spread dies. Without util-linux, run unlocked.
 */
function takeLock(path: string, onSlow: () => void): Promise<ChildProcess | undefined> {
  return new Promise((resolve) => {
    const child = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const slow = setTimeout(onSlow, 3000);
    child.on('error', () => {
      clearTimeout(slow);
      resolve(undefined);
    });
    child.stdout!.once('data', () => {
      clearTimeout(slow);
      child.unref();
      (child.stdout as unknown as { unref(): void }).unref();
      (child.stdin as unknown as { unref(): void }).unref();
      resolve(child);
    });
  });
}
