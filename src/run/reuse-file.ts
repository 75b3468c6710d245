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
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
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

  add(backend: string, system: string, entry: ReuseEntry): void {
    const list = this.backends.get(backend) ?? [];
    list.push({ system, ...entry });
    this.backends.set(backend, list);
    this.write();
  }

  /** Remove one entry of that address (several workers may share one). */
  remove(backend: string, system: string, address: string): void {
    const list = this.backends.get(backend);
    const i = list?.findIndex((e) => e.system === system && e.address === address) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    this.write();
  }

  /** Release the lock; with `remove`, delete the file too (a run that kept nothing). */
  close(remove = false): void {
    if (remove) rmSync(this.path, { force: true });
    this.lock?.stdin?.end();
    this.lock?.kill();
  }

  private write(): void {
    const text = encode(this.backends);
    const tmp = `${this.path}.tmp`;
    writeWhole(tmp, text);
    renameSync(tmp, `${this.path}.new`);
    writeWhole(this.path, text);
    rmSync(`${this.path}.new`, { force: true });
  }
}

function writeWhole(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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
