/**
 * Packs the project content once for delivery to every machine, as the original's `tar cz ...` in the
 * project dir does: the plain tar (pack-tree.ts) gzipped into an unlinked temp file, re-read once per
 * machine. With a `repack` script the plain tar goes to the script's fd 3 and what it writes to fd 4 is
 * gzipped instead; fd 3 and fd 4 are socketpairs (Node's child pipes), so redirections and reads work
 * but opening `/dev/fd/3` does not.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Env } from '../project/types.js';
import { runLocalScript } from '../remote/local-script.js';
import { escapeBytes, lateOutput } from '../output.js';
import { outputError } from '../remote/markers.js';
import { resolveTimeouts } from '../project/timeouts.js';
import { packTree, type TreeOptions, unlessClosed } from './pack-tree.js';

export interface PackOptions extends TreeOptions {
  /** The project's repack script; empty or unset means plain `tar cz`. */
  readonly repack?: string;
  /** Exported to the repack script: the project env (variant "" resolved) plus SPREAD_BACKENDS. */
  readonly env: Env;
  /** Environment the repack script starts from. @default this process's environment */
  readonly hostEnv?: NodeJS.ProcessEnv;
  /** Project warn-timeout for the repack script; 0 means the default, Infinity none. @default 5 minutes */
  readonly warnTimeoutMs?: number;
  /** Project kill-timeout for the repack script; 0 means the default, Infinity none. @default 15 minutes */
  readonly killTimeoutMs?: number;
  /** Also a repack script running late. */
  readonly onWarning: (message: string) => void;
  /** Where the (immediately unlinked) content file is created. @default os.tmpdir() */
  readonly tmpDir?: string;
}


export interface PackedContent {
  readonly size: number;
  /** A fresh stream over the whole content; several may be open at once. */
  open(): Readable;
  /** Closes the content file (already unlinked); open streams must be done. Idempotent. */
  dispose(): Promise<void>;
}

export const formatPackedSize = (bytes: number): string => {
  const [unit, scale] = bytes < 1024 * 1024 ? ['KB', 1024] : ['MB', 1024 * 1024];
  // Go rounds the exact binary value half-to-even; toFixed would round 0.125 up.
  const num = bytes * 100;
  let hundredths = Math.floor(num / scale);
  const rest = num - hundredths * scale;
  if (rest * 2 > scale || (rest * 2 === scale && hundredths % 2 === 1)) hundredths++;
  return `${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}${unit}`;
};

// Waits for every task; the first to fail (in time) wins, and `onFail` runs once to unblock the others.
const settleAll = async (tasks: readonly Promise<unknown>[], onFail: () => void): Promise<void> => {
  let first: { err: unknown } | undefined;
  await Promise.all(tasks.map((t) => t.catch((err: unknown) => {
    if (first) return;
    first = { err };
    onFail();
  })));
  if (first) throw first.err;
};

/** Runs the repack script between the plain tar (its fd 3) and the gzip writer (its fd 4); rejects with the first error. */
const repackInto = async (o: PackOptions, script: string, sink: Writable): Promise<void> => {
  const tree = packTree(o);
  const { warnMs, killMs } = resolveTimeouts(o.warnTimeoutMs ?? 0, o.killTimeoutMs ?? 0);
  let fd3!: Writable;
  let fd4!: Readable;
  let fed = false; // the script exited 0: whatever it left unread on fd 3 no longer matters
  const stop = new AbortController();
  const ran = runLocalScript({
    script, cwd: o.dir, env: o.env, warnMs, killMs, extraFds: 2,
    ...(o.hostEnv ? { hostEnv: o.hostEnv } : {}),
    signal: o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal,
    onWarn: (output) => o.onWarning(`local script running late. ${escapeBytes(lateOutput(output))}`),
    onSpawn: ([a, b]) => {
      fd3 = a as Writable;
      fd4 = b as Readable;
      // Sockets may still fail (ECONNRESET) after their pipeline settled; the script's status is what counts.
      for (const stream of [fd3, fd4]) stream.on('error', () => undefined);
    },
  }).then((end) => {
    if (end.kind === 'ok') {
      fed = true;
      tree.stop();
      return;
    }
    throw new Error(end.kind === 'failed' ? outputError(end.output, `exit status ${end.exitCode}`) : end.message);
  });
  const tasks = [
    unlessClosed(tree.done).catch((err: unknown) => {
      if (!fed) throw err;
    }),
    // A broken fd 3 is the script's doing; its own status says what went wrong.
    pipeline(tree.stream, fd3).catch(() => undefined),
    pipeline(fd4, createGzip(), sink),
    ran,
  ];
  await settleAll(tasks, () => {
    stop.abort();
    tree.stop();
    fd3.destroy();
    fd4.destroy();
  });
};

// Positional streams over the shared fd that never close it: fs streams close their fd when destroyed,
// even with autoClose off, FileHandle streams keep the handle from closing until they end, and one
// failed upload must not take the content away from the other machines.
const fileSink = (fd: number): Writable => {
  let pos = 0;
  const write = promisify(fs.write);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      (async () => {
        for (let off = 0; off < chunk.length; ) {
          const { bytesWritten } = await write(fd, chunk, off, chunk.length - off, pos);
          off += bytesWritten;
          pos += bytesWritten;
        }
      })().then(() => done(), done);
    },
  });
};

const fileSource = (fd: number, size: number): Readable => {
  let pos = 0;
  return new Readable({
    read() {
      if (pos >= size) return void this.push(null);
      const buf = Buffer.allocUnsafe(Math.min(256 * 1024, size - pos));
      fs.read(fd, buf, 0, buf.length, pos, (err, bytes) => {
        if (err) return void this.destroy(err);
        if (bytes === 0) return void this.destroy(new Error('project content file is shorter than expected'));
        pos += bytes;
        this.push(buf.subarray(0, bytes));
      });
    },
  });
};

/** Packs the project content into an unlinked temp file (see the module comment for the tar semantics). */
export const packContent = async (o: PackOptions): Promise<PackedContent> => {
  o.signal?.throwIfAborted();
  const path = join(o.tmpDir ?? tmpdir(), `spread-content.${process.pid}.${randomBytes(6).toString('hex')}`);
  const fd = await promisify(fs.open)(path, 'wx+', 0o600);
  const close = promisify(fs.close);
  // Unlinked at once, as the original does: nothing is left behind, even on a crash.
  await unlink(path);
  try {
    const sink = fileSink(fd);
    const script = o.repack?.trim() ?? '';
    if (script !== '') await repackInto(o, script, sink);
    else {
      const tree = packTree(o);
      await settleAll([unlessClosed(tree.done), pipeline(tree.stream, createGzip(), sink, { signal: o.signal })], tree.stop);
    }
  } catch (err) {
    await close(fd);
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot pack project tree: ${detail}`, { cause: err });
  }
  const { size } = await promisify(fs.fstat)(fd);
  let closed = false;
  return {
    size,
    open: () => {
      if (closed) throw new Error('project content was already disposed');
      return fileSource(fd, size);
    },
    dispose: async () => {
      if (!closed) {
        closed = true;
        await close(fd);
      }
    },
  };
};
