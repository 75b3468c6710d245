/**
 * Packs the project content once for delivery to every machine, as the original's
 * `tar cz --exclude=.spread-reuse.* --exclude=P... --transform=R... <include>` in the project dir does,
 * with tar-stream instead of the host's tar. With a `repack` script the plain tar goes to the script's
 * fd 3 and what it writes to fd 4 is gzipped instead.
 *
 * Kept from GNU tar 1.34 (checked against it in the tests): include names are literal paths, so
 * `src/*` means a file named `src/*` and fails when there is none, as `tar c 'src/*'` does; trailing
 * slashes are dropped; a leading `/` and everything up to a last `..` component leave member names
 * (with a warning); excludes see names before renaming; renames apply to member names, symlink targets
 * and hardlink targets; a file met again (hard link, or named by two includes) becomes a link entry;
 * mode, mtime, uid and gid are kept.
 * Differences: directory entries are sorted by name (tar uses readdir order); sockets, FIFOs and
 * devices are skipped with a warning (tar archives FIFOs and devices and only warns about sockets,
 * but the original fails on any tar warning: issues #176/#180); owner names are left empty, so the
 * remote tar maps owners by uid/gid; a file that vanishes or shrinks while being packed is reported
 * (and padded) instead of failing the run; the repack script's fd 3 and fd 4 are socketpairs (Node's
 * child pipes), so redirections and reads work but opening `/dev/fd/3` does not.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pipeline as pipe, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Env } from '../project/types.js';
import { runLocalScript } from '../remote/local-script.js';
import { escapeBytes, lateOutput } from '../output.js';
import { outputError } from '../remote/markers.js';
import { resolveTimeouts } from '../project/timeouts.js';
import { compileExcludes, type ExcludeMatcher } from './tar-exclude.js';
import { byNameBytes, decodeName, encodeName, hasRawBytes, longLinkFixer, longLinkMarker, standIn } from './tar-raw-names.js';
import { parseTransforms, type Transformer } from './tar-transform.js';

export interface PackOptions {
  /** The project directory (where spread.yaml lives). */
  readonly dir: string;
  /** Names to pack, verbatim. @default every top-level entry, dotfiles included, except `.spread-reuse.*` */
  readonly include?: readonly string[];
  /** GNU tar `--exclude` patterns (`.spread-reuse.*` is always added first). */
  readonly exclude: readonly string[];
  /** GNU tar `--transform` expressions. */
  readonly rename: readonly string[];
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
  /** Skipped entries, stripped name prefixes, a repack script running late. */
  readonly onWarning: (message: string) => void;
  readonly signal?: AbortSignal;
  /** Where the (immediately unlinked) content file is created. @default os.tmpdir() */
  readonly tmpDir?: string;
}

/** The packed content: a gzip stream of `size` bytes, re-readable once per machine. */
export interface PackedContent {
  readonly size: number;
  /** A fresh stream over the whole content; several may be open at once. */
  open(): Readable;
  /** Closes the content file (already unlinked); open streams must be done. Idempotent. */
  dispose(): Promise<void>;
}

const REUSE_EXCLUDE = '.spread-reuse.*';

/** A directory's entries, with names that are not UTF-8 kept (tar-raw-names.ts), sorted by their bytes. */
const entriesOf = (dir: string): string[] =>
  fs.readdirSync(encodeName(dir), { encoding: 'buffer' }).map(decodeName).sort(byNameBytes);

/** The default include list: the project dir's entries, sorted, without spread's own reuse and history files. */
export const defaultIncludes = async (dir: string): Promise<string[]> =>
  entriesOf(dir).filter((n) => !n.startsWith('.spread-reuse.') && !n.startsWith('.spread-history.json'));

/** Formats the size for "Project content is packed for delivery (X)." like the original's `%.2f`. */
export const formatPackedSize = (bytes: number): string => {
  const [unit, scale] = bytes < 1024 * 1024 ? ['KB', 1024] : ['MB', 1024 * 1024];
  // Go rounds the exact binary value half-to-even; toFixed would round 0.125 up.
  const num = bytes * 100;
  let hundredths = Math.floor(num / scale);
  const rest = num - hundredths * scale;
  if (rest * 2 > scale || (rest * 2 === scale && hundredths % 2 === 1)) hundredths++;
  return `${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}${unit}`;
};

interface Walk {
  readonly dir: string;
  readonly excluded: ExcludeMatcher;
  readonly transform: Transformer;
  readonly pack: tar.Pack;
  readonly warn: (message: string) => void;
  readonly signal: AbortSignal | undefined;
  readonly links: Map<string, string>;
  /** GNU tar remembers every file once it is given several names, so a repeated file becomes a link. */
  trackAll: boolean;
  readonly stripped: Set<string>;
}

// GNU tar's safer_name_suffix: drop a leading `/` and everything up to the last `..` component.
const memberName = (w: Walk, raw: string): string => {
  let cut = 0;
  for (let i = 0; i < raw.length; ) {
    const next = raw.indexOf('/', i);
    const part = raw.slice(i, next < 0 ? undefined : next);
    if (part === '..') cut = i + 2;
    i = next < 0 ? raw.length : next + 1;
  }
  while (raw[cut] === '/') cut++;
  if (cut > 0 && !w.stripped.has(raw.slice(0, cut))) {
    w.stripped.add(raw.slice(0, cut));
    w.warn(`removing leading "${raw.slice(0, cut)}" from member names`);
  }
  return raw.slice(cut) || '.';
};

const errorText = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
};

const KINDS: readonly [keyof fs.Stats, string][] = [
  ['isSocket', 'socket'], ['isFIFO', 'fifo'], ['isCharacterDevice', 'character device'], ['isBlockDevice', 'block device'],
];

// Adds one name (and, for a directory, everything below it) to the archive.
// Metadata is read synchronously: a project is mostly small files, and an
// awaited round trip through libuv's thread pool per lstat, open, read and
// close made a 200-file project take half a second to pack on a busy host.
const addPath = async (w: Walk, raw: string, top: boolean): Promise<void> => {
  w.signal?.throwIfAborted();
  if (w.excluded(raw)) return;
  const path = resolve(w.dir, raw);
  const bytes = encodeName(path);
  let st;
  try {
    st = fs.lstatSync(bytes);
  } catch (err) {
    if (!top && (err as NodeJS.ErrnoException).code === 'ENOENT') return w.warn(`${raw}: file removed before we read it`);
    const hint = top && /[*?[]/.test(raw) ? ' (include names are literal paths, not globs)' : '';
    throw new Error(`cannot stat ${JSON.stringify(raw)}: ${errorText(err)}${hint}`, { cause: err });
  }
  const member = memberName(w, raw);
  const name = w.transform.apply(member, 'regular');
  const header = { mode: st.mode & 0o7777, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000), uid: st.uid, gid: st.gid };
  const add = (h: Partial<tar.Header> & { name: string }) =>
    name === '' ? w.warn(`${raw}: renamed to an empty name, skipped`) : addEntry(w, h, bytes, raw);
  if (st.isDirectory()) {
    await add({ ...header, name: `${name}/`, type: 'directory' });
    let children: string[];
    try {
      children = entriesOf(path);
    } catch (err) {
      throw new Error(`cannot read directory ${JSON.stringify(raw)}: ${errorText(err)}`, { cause: err });
    }
    for (const child of children) await addPath(w, raw.endsWith('/') ? raw + child : `${raw}/${child}`, false);
  } else if (st.isSymbolicLink()) {
    const target = decodeName(fs.readlinkSync(bytes, { encoding: 'buffer' }));
    await add({ ...header, name, type: 'symlink', linkname: w.transform.apply(target, 'symlink') });
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const tracked = st.nlink > 1 || w.trackAll;
    const first = tracked ? w.links.get(key) : undefined;
    if (first !== undefined) return add({ ...header, name, type: 'link', linkname: w.transform.apply(first, 'hardlink') });
    if (tracked) w.links.set(key, member);
    await add({ ...header, name, type: 'file', size: st.size });
  } else {
    const kind = KINDS.find(([is]) => (st[is] as () => boolean).call(st))?.[1] ?? 'special file';
    w.warn(`${raw}: ${kind} ignored`);
  }
};

/**
 * A name or link target with bytes that are not UTF-8 goes first as a GNU
 * long-name member (tar-raw-names.ts), and the entry gets an ASCII stand-in.
 */
const withRawNames = async (w: Walk, header: Partial<tar.Header> & { name: string }): Promise<Partial<tar.Header> & { name: string }> => {
  const longName = async (kind: 'L' | 'K', name: string): Promise<void> => {
    const body = Buffer.concat([encodeName(name), Buffer.alloc(1)]);
    await new Promise<void>((ok, fail) => w.pack.entry({ name: standIn(name), type: 'file', size: body.length, mode: 0o644, mtime: new Date(0), uname: longLinkMarker(kind) }, body, (err) => (err ? fail(new TarClosedError('tar stream closed', { cause: err })) : ok())));
  };
  let out = header;
  if (hasRawBytes(header.name)) {
    await longName('L', header.name);
    out = { ...out, name: standIn(header.name) };
  }
  if (header.linkname && hasRawBytes(header.linkname)) {
    await longName('K', header.linkname);
    out = { ...out, linkname: standIn(header.linkname) };
  }
  return out;
};

/** The tar stream was closed under the walk: a consequence of another failure (or of an early stop). */
class TarClosedError extends Error {
  override readonly name = 'TarClosedError';
}

const unlessClosed = (t: Promise<unknown>) => t.catch((err: unknown) => {
  if (!(err instanceof TarClosedError)) throw err;
});

/** Files up to this size are read whole; larger ones are streamed. */
const SMALL_FILE = 256 * 1024;

// Writes one entry, streaming a regular file's bytes with backpressure from the tar consumer.
const addEntry = async (w: Walk, header: Partial<tar.Header> & { name: string }, path: Buffer, raw: string): Promise<void> => {
  if (w.pack.destroying) throw new TarClosedError('tar stream closed');
  header = await withRawNames(w, header);
  let settle!: (err?: Error | null) => void;
  const done = new Promise<void>((ok, fail) => {
    settle = (err) => (err ? fail(new TarClosedError('tar stream closed', { cause: err })) : ok());
  });
  done.catch(() => undefined); // awaited below; an early rejection must not count as unhandled
  const sink = w.pack.entry(header, (err) => settle(err));
  sink.on('error', () => undefined); // reported through the entry callback
  const write = async (chunk: Buffer) => {
    if (sink.write(chunk)) return;
    // A closed sink also says false, and its 'close' may be long gone.
    if (sink.destroying || sink.destroyed) throw new TarClosedError('tar stream closed');
    await new Promise<void>((ok, fail) => {
      const onClose = () => fail(new TarClosedError('tar stream closed'));
      sink.once('close', onClose);
      sink.once('drain', () => (sink.off('close', onClose), ok()));
    });
  };
  const size = header.type === 'file' ? header.size ?? 0 : 0;
  let written = 0;
  try {
    if (size > 0 && size <= SMALL_FILE) {
      // Small files in one read (a short read is padded below, as for a stream).
      const bytes = fs.readFileSync(path);
      const chunk = bytes.length > size ? bytes.subarray(0, size) : bytes;
      written += chunk.length;
      if (chunk.length > 0) await write(chunk);
    } else if (size > 0) {
      for await (const chunk of fs.createReadStream(path, { start: 0, end: size - 1 })) {
        written += (chunk as Buffer).length;
        await write(chunk as Buffer);
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // gone since lstat: padded below
  }
  if (written < size) {
    w.warn(`${raw}: file shrank by ${size - written} bytes; padding with zeros`);
    for (let left = size - written; left > 0; left -= 65536) await write(Buffer.alloc(Math.min(left, 65536)));
  }
  sink.end(undefined);
  await done;
};

/**
 * The plain tar of the content, as a stream plus the walk's own outcome. The walk fails on the first
 * unreadable include or directory; the stream then errors with the same error.
 */
export const packTree = (o: Pick<PackOptions, 'dir' | 'include' | 'exclude' | 'rename' | 'onWarning' | 'signal'>) => {
  const pack = tar.pack();
  pack.on('error', () => undefined); // reported through `done` and `stream`
  const excluded = compileExcludes([REUSE_EXCLUDE, ...o.exclude]);
  const transform = parseTransforms(o.rename);
  const w: Walk = { dir: o.dir, excluded, transform, pack, warn: o.onWarning, signal: o.signal, links: new Map(), trackAll: false, stripped: new Set() };
  const done = (async () => {
    const names = o.include?.length ? o.include : await defaultIncludes(o.dir);
    w.trackAll = names.length > 1;
    for (const name of names) await addPath(w, name.replace(/(?<=.)\/+$/, ''), true);
    pack.finalize();
  })();
  done.catch((err: unknown) => pack.destroy(err as Error));
  /** Ends the walk early (its `done` then rejects). */
  const stop = () => pack.destroy();
  // pipeline, not pipe: a destroyed pack must fail the fixed stream too.
  const stream = pipe(Readable.from(pack, { objectMode: false }), longLinkFixer(), () => undefined);
  return { stream, done, stop };
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
