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
 * directory. The file is mode 0600 (it holds passwords).
 *
 * A file that does not parse or does not have that shape (random bytes, a
 * truncated write, another tool's file) is refused in one line naming what
 * is wrong, and left exactly as it is: the machines it lists may still be
 * running, and only a person can tell.
 *
 * Locking: for the whole run, with flock(2) through util-linux `flock`,
 * which is the lock the original takes, so two runs never share machines.
 * Where `flock` is missing or fails, a warning says so and a lock file
 * (`<file>.lock`, created exclusively, holding our pid, taken over when
 * that pid is dead) keeps out other runs of this spread instead.
 *
 * The writes (each synced to disk, as the original syncs them) go through
 * libuv's thread pool, one after another: a synced write takes milliseconds
 * to tens of them, and done synchronously it stalled every other worker's
 * SSH traffic each time a machine came or went. A caller that must know its
 * change is on disk (before dialing a new machine) awaits it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import type { ReuseEntry } from '../backends/backend.js';

interface Stored extends ReuseEntry {
  readonly system: string;
}

/** How the file is locked: a flock holder process, or our own lock file. */
type Lock = { readonly release: () => void };

export class ReuseFile {
  private closed = false;
  /** The writes in flight, in order; each writes the state as it is when it starts. */
  private writing: Promise<void> = Promise.resolve();
  /** A write queued behind the current one; it will include every change made until it starts. */
  private queued: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly lock: Lock,
    private backends: Map<string, Stored[]>,
  ) {}

  /** Open and lock; says so after 3 s of waiting for another run. */
  static async open(path: string, log: (message: string) => void): Promise<ReuseFile> {
    closeSync(openSync(path, 'a', 0o600));
    const lock = await takeLock(path, log);
    const source = existsSync(`${path}.new`) ? `${path}.new` : path;
    let backends: Map<string, Stored[]>;
    try {
      backends = decode(readFileSync(source, 'utf8'));
    } catch (err) {
      lock.release();
      throw new Error(`cannot read reuse tracking file ${source}: ${(err as Error).message.split('\n')[0]}; fix or remove it (it was left as it is)`);
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
    const i = this.find(backend, system, address);
    if (i < 0) return Promise.resolve();
    this.backends.get(backend)!.splice(i, 1);
    return this.write();
  }

  /** A recorded machine answered somewhere else (a restarted container's new port): record where, in place. */
  replace(backend: string, system: string, address: string, entry: ReuseEntry): Promise<void> {
    const i = this.find(backend, system, address);
    if (i < 0) return this.add(backend, system, entry);
    this.backends.get(backend)![i] = { system, ...entry };
    return this.write();
  }

  /** Finish the writes, then release the lock; with `remove`, delete the file too (a run that kept nothing). */
  async close(remove = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writing.catch(() => undefined);
    if (remove) rmSync(this.path, { force: true });
    this.lock.release();
  }

  private find(backend: string, system: string, address: string): number {
    return this.backends.get(backend)?.findIndex((e) => e.system === system && e.address === address) ?? -1;
  }

  /** Queue a write of the current state (one queued write serves every change made before it starts). */
  private write(): Promise<void> {
    // After close (a run cut short at its bound), the lock is going: the file is no longer ours to write.
    if (this.closed) return Promise.resolve();
    this.queued ??= this.writing.catch(() => undefined).then(() => {
      this.queued = undefined;
      return writeState(this.path, encode(this.backends));
    });
    this.writing = this.queued;
    return this.queued;
  }
}

/** `.new` (through a temporary file), the file itself, then no `.new`: the original's order. */
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

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const OPTIONAL_STRINGS = ['username', 'password'] as const;

/**
 * The file's content, checked all the way down. Written by hand rather than
 * with a schema validator: the shape is small, and each message must name the
 * backend, system and field that is wrong.
 */
export function decode(text: string): Map<string, Stored[]> {
  const doc = parse(text, { uniqueKeys: true }) as unknown;
  const result = new Map<string, Stored[]>();
  if (doc === null || doc === undefined) return result;
  if (!isMap(doc)) throw new Error('not a map of backends');
  for (const key of Object.keys(doc)) if (key !== 'backends') throw new Error(`unknown key ${JSON.stringify(key)} (only "backends")`);
  const backends = doc['backends'] ?? {};
  if (!isMap(backends)) throw new Error('"backends" is not a map');
  for (const [backend, value] of Object.entries(backends)) {
    const where = `backend ${JSON.stringify(backend)}`;
    if (value === null) continue;
    if (!isMap(value) || Object.keys(value).some((k) => k !== 'systems')) throw new Error(`${where} is not a map with "systems"`);
    const systems = value['systems'] ?? [];
    if (!Array.isArray(systems)) throw new Error(`${where}: "systems" is not a list`);
    const list: Stored[] = [];
    for (const item of systems) {
      if (!isMap(item) || Object.keys(item).length !== 1) throw new Error(`${where}: each system entry must be one "name: {address, password, ...}"`);
      const [system, entry] = Object.entries(item)[0]!;
      const at = `${where}, system ${JSON.stringify(system)}`;
      if (!isMap(entry)) throw new Error(`${at} is not a map`);
      for (const k of Object.keys(entry)) if (!['username', 'password', 'address', 'data'].includes(k)) throw new Error(`${at}: unknown key ${JSON.stringify(k)}`);
      const address = entry['address'];
      if (typeof address !== 'string' || address.trim() === '') throw new Error(`${at}: no address`);
      for (const k of OPTIONAL_STRINGS) if (entry[k] !== undefined && entry[k] !== null && typeof entry[k] !== 'string' && typeof entry[k] !== 'number') throw new Error(`${at}: ${k} is not text`);
      if (entry['data'] !== undefined && entry['data'] !== null && !isMap(entry['data'])) throw new Error(`${at}: data is not a map`);
      list.push({
        system, address,
        password: String(entry['password'] ?? ''),
        ...(typeof entry['username'] === 'string' && entry['username'] !== '' ? { username: entry['username'] } : {}),
        ...(isMap(entry['data']) ? { data: entry['data'] } : {}),
      });
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

const WAITING = 'Waiting for another process to release reuse lock.';

async function takeLock(path: string, log: (message: string) => void): Promise<Lock> {
  const held = await flockHolder(path, () => log(WAITING));
  if (held.child) {
    const child = held.child;
    return { release: () => { child.stdin?.end(); child.kill(); } };
  }
  log(`WARNING: ${held.why}: locking ${path} with ${path}.lock instead (this keeps out other runs of this spread, not the original's)`);
  return lockFile(`${path}.lock`, () => log(WAITING));
}

/**
 * Hold flock(2) on the file through `flock -x FILE sh -c 'echo locked; exec cat'`:
 * the lock lives as long as that process, which ends when our stdin pipe
 * closes, including when spread dies. Resolves with why not when `flock`
 * cannot be run or exits before saying it holds the lock.
 */
function flockHolder(path: string, onSlow: () => void): Promise<{ child?: ChildProcess; why?: string }> {
  return new Promise((resolve) => {
    const child = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let settled = false;
    const slow = setTimeout(onSlow, 3000);
    const settle = (r: { child?: ChildProcess; why?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(slow);
      resolve(r);
    };
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => settle({ why: err.code === 'ENOENT' ? 'flock (util-linux) is not installed' : `cannot run flock: ${err.message}` }));
    child.on('exit', (code, signal) => settle({ why: `flock ended before taking the lock (${signal ?? `exit status ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''})` }));
    child.stdout!.once('data', () => {
      child.stderr!.removeAllListeners('data');
      child.unref();
      for (const s of [child.stdout, child.stdin, child.stderr] as unknown as { unref(): void }[]) s.unref();
      settle({ child });
    });
  });
}

/** Our own lock: `file` created exclusively with our pid in it; a dead holder's file is taken over. */
async function lockFile(file: string, onSlow: () => void): Promise<Lock> {
  const slowAt = Date.now() + 3000;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return { release: () => rmSync(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create lock file ${file}: ${(err as Error).message}`);
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue; // Released meanwhile.
    }
    // An empty file is one being written right now (or left by a holder killed at that instant).
    if (text === '' ? Date.now() - mtime(file) > 5000 : !isAlive(Number(text))) {
      // A run that was killed left it; whoever removes it first goes next.
      rmSync(file, { force: true });
      continue;
    }
    if (!told && Date.now() > slowAt) {
      told = true;
      onSlow();
    }
    await sleep(100);
  }
}

const mtime = (file: string): number => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
};

const isAlive = (pid: number): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};
