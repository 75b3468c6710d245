/**
 * The plain tar of the project content, as the original's
 * `tar c --exclude=.spread-reuse.* --exclude=P... --transform=R... <include>` in the project dir makes it,
 * with tar-stream instead of the host's tar (content.ts gzips it, or hands it to the repack script).
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
 * (and padded) instead of failing the run.
 */
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { pipeline as pipe, Readable } from 'node:stream';
import tar from 'tar-stream';
import { compileExcludes, type ExcludeMatcher } from './tar-exclude.js';
import { byNameBytes, decodeName, encodeName, hasRawBytes, longLinkFixer, longLinkMarker, standIn } from './tar-raw-names.js';
import { parseTransforms, type Transformer } from './tar-transform.js';

/** What to pack: a subset of content.ts's PackOptions. */
export interface TreeOptions {
  /** The project directory (where spread.yaml lives). */
  readonly dir: string;
  /** Names to pack, verbatim. @default every top-level entry, dotfiles included, except `.spread-reuse.*` */
  readonly include?: readonly string[];
  /** GNU tar `--exclude` patterns (`.spread-reuse.*` is always added first). */
  readonly exclude: readonly string[];
  /** GNU tar `--transform` expressions. */
  readonly rename: readonly string[];
  /** Skipped entries, stripped name prefixes. */
  readonly onWarning: (message: string) => void;
  readonly signal?: AbortSignal;
}

const REUSE_EXCLUDE = '.spread-reuse.*';

/** A directory's entries, with names that are not UTF-8 kept (tar-raw-names.ts), sorted by their bytes. */
const entriesOf = (dir: string): string[] =>
  fs.readdirSync(encodeName(dir), { encoding: 'buffer' }).map(decodeName).sort(byNameBytes);

/** The default include list: the project dir's entries, sorted, without spread's own reuse and history files. */
export const defaultIncludes = async (dir: string): Promise<string[]> =>
  entriesOf(dir).filter((n) => !n.startsWith('.spread-reuse.') && !n.startsWith('.spread-history.json'));


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

/** The walk's outcome, where a stream closed under it is another failure's consequence, not one of its own. */
export const unlessClosed = (t: Promise<unknown>) => t.catch((err: unknown) => {
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
export const packTree = (o: TreeOptions) => {
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

