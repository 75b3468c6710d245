/**
 * A short exclusive lock between processes for a read-modify-write of a
 * small file (the history): `<file>.lock`, created with O_EXCL and holding
 * the owner's pid, removed when done. Synchronous, because it guards a few
 * milliseconds of work at the end of a run. A lock whose owner is gone (a
 * killed run) is taken over. Written by hand: flock(2) is not reachable from
 * Node without a helper process, and this needs no more than O_EXCL.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Run `fn` holding `<file>.lock`; throws when another live process holds it past `timeoutMs`. */
export function withFileLock<T>(file: string, fn: () => T, timeoutMs = 5000): T {
  const lock = `${file}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (isStale(lock)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lock} is held by another process`);
    Atomics.wait(pause, 0, 0, 10);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** The owner is gone, or the lock is old and says nothing (its owner died between creating and writing it). */
function isStale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - statSync(lock).mtimeMs > 10_000;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
