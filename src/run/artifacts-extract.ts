/**
 * Unpacks a job's artifacts (a tar stream from the machine) under a local directory, and nowhere else.
 * The original pipes the stream into the host's `tar xJ`; a machine is not to be trusted that far, so
 * every entry is checked before anything touches the disk:
 *
 * - absolute names and names with a `..` component are refused (GNU tar would strip the `/` and
 *   refuse the `..`);
 * - nothing is ever written through a symlink: each parent of an entry must be a real directory
 *   (missing ones are created), so `a -> x` followed by `a/file` is refused even when `x` is inside;
 * - a symlink's target must be relative and stay inside destDir when resolved from the link's
 *   directory, with `..` only as leading components (`a/../b` could climb out through a symlink `a`);
 * - a hard link must point at a regular file extracted under destDir, reached through real directories;
 * - an existing directory is never replaced by anything else, while an existing file or symlink is
 *   unlinked first (never followed); files are created with O_EXCL|O_NOFOLLOW;
 * - devices, FIFOs and unknown entry types are skipped.
 *
 * Refused entries are skipped and reported through `onWarning`; the rest is extracted. Modes keep their
 * permission bits (no setuid/setgid/sticky, umask applies, directories stay owner-writable), and mtimes
 * are restored. Accepts a plain or gzip-compressed tar.
 */
import { constants } from 'node:fs';
import { link, lstat, lutimes, mkdir, open, copyFile, symlink, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

export interface ExtractOptions {
  /** Entries skipped for safety or because their type is not supported. */
  readonly onWarning?: (message: string) => void;
  readonly signal?: AbortSignal;
}

type Header = tar.Header;

/** A refused entry: reported and skipped, never fatal. */
class Refused extends Error {
  override readonly name = 'Refused';
}

// A member name as path components under destDir, or a reason to refuse it.
const components = (name: string, what: string): string[] => {
  if (name.startsWith('/')) throw new Refused(`${what} is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Refused(`${what} contains ".."`);
  return parts;
};

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

const lstatOrUndefined = async (path: string) => {
  try {
    return await lstat(path);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
};

// Makes sure every parent of `parts` below root is a real directory, creating missing ones.
const ensureParents = async (root: string, parts: readonly string[], create: boolean): Promise<void> => {
  let path = root;
  for (const part of parts.slice(0, -1)) {
    path = join(path, part);
    const st = await lstatOrUndefined(path);
    if (st?.isDirectory()) continue;
    if (st) throw new Refused(`${st.isSymbolicLink() ? 'a symlink' : 'not a directory'} on the way: ${path.slice(root.length + 1)}`);
    if (!create) throw new Refused(`missing directory on the way: ${path.slice(root.length + 1)}`);
    await mkdir(path, { mode: 0o755 });
  }
};

// Clears the way for a new entry at `path`: an old file or symlink goes (unlinked, not followed).
const clearFor = async (path: string, type: Header['type']): Promise<boolean> => {
  const st = await lstatOrUndefined(path);
  if (!st) return false;
  if (st.isDirectory()) {
    if (type === 'directory') return true;
    throw new Refused('would replace a directory');
  }
  await unlink(path);
  return false;
};

// A symlink target must climb (`..`) only at its start, and never above destDir.
const checkSymlinkTarget = (target: string, depth: number): void => {
  if (target === '') throw new Refused('symlink has an empty target');
  if (target.startsWith('/')) throw new Refused(`symlink target ${JSON.stringify(target)} is absolute`);
  let ups = 0;
  let named = false;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') named = true;
    else if (named) throw new Refused(`symlink target ${JSON.stringify(target)} has ".." after a name`);
    else ups++;
  }
  if (ups > depth) throw new Refused(`symlink target ${JSON.stringify(target)} points outside the directory`);
};

type Body = AsyncIterable<Buffer>;

const drain = async (body: Body): Promise<void> => {
  for await (const _ of body) { /* discard */ }
};

interface Pending {
  readonly path: string;
  readonly mtime: Date;
}

// Writes one entry; returns whether something was written (directories count once created or kept).
const writeEntry = async (root: string, header: Header, body: Body, dirs: Pending[]): Promise<boolean> => {
  const parts = components(header.name, `name ${JSON.stringify(header.name)}`);
  if (parts.length === 0) return false; // `./` itself: destDir already exists
  const path = join(root, ...parts);
  const type = header.type === 'contiguous-file' ? 'file' : header.type;
  if (!['file', 'directory', 'symlink', 'link'].includes(type)) throw new Refused(`${type} entries are not extracted`);
  const linkname = header.linkname ?? ''; // tar-stream gives null for an empty one
  await ensureParents(root, parts, true);
  // Every check comes before clearFor, so a refused entry leaves the old one alone.
  if (type === 'symlink') checkSymlinkTarget(linkname, parts.length - 1);
  let from = '';
  if (type === 'link') {
    const target = components(linkname, `hard link target ${JSON.stringify(linkname)}`);
    await ensureParents(root, target, false);
    from = join(root, ...target);
    if (!(await lstatOrUndefined(from))?.isFile()) throw new Refused(`hard link target ${JSON.stringify(linkname)} is not an extracted file`);
    if (from === path) return true; // GNU tar stores a file named twice as a link to itself
  }
  const exists = await clearFor(path, type);
  const mode = header.mode & 0o777;
  if (type === 'directory') {
    if (!exists) await mkdir(path, { mode: mode | 0o700 });
    dirs.push({ path, mtime: header.mtime });
  } else if (type === 'symlink') {
    await symlink(linkname, path);
    await lutimes(path, header.mtime, header.mtime).catch(() => undefined);
  } else if (type === 'link') {
    await link(from, path).catch(() => copyFile(from, path, constants.COPYFILE_EXCL));
  } else {
    const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      for await (const chunk of body) {
        for (let off = 0; off < chunk.length; ) off += (await file.write(chunk, off)).bytesWritten;
      }
    } finally {
      await file.close();
    }
    await utimes(path, header.mtime, header.mtime);
  }
  return true;
};

// Peeks at the first bytes to tell gzip from plain tar.
const decompressed = async (input: Readable): Promise<Readable> => {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  while (head.length < 6) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  const rest = Readable.from((async function* () {
    if (head.length > 0) yield head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield Buffer.from(r.value);
  })(), { objectMode: false });
  if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') {
    rest.destroy();
    throw new Error('cannot extract artifacts: xz-compressed streams are not supported (send plain tar or gzip)');
  }
  if (head[0] !== 0x1f || head[1] !== 0x8b) return rest;
  const gunzip = createGunzip();
  rest.on('error', (err) => gunzip.destroy(err));
  return rest.pipe(gunzip);
};

/**
 * Extracts a tar stream (plain or gzip) under `destDir`, created if missing, never writing outside it.
 * Returns the paths written, relative to destDir, in archive order. Unsafe or unsupported entries are
 * skipped and reported; a broken stream or a failing write rejects.
 */
export const extractArtifacts = async (tarStream: Readable, destDir: string, o: ExtractOptions = {}): Promise<string[]> => {
  // The stream may fail before reading starts: keep its error, as an errored stream never iterates.
  let early: unknown;
  tarStream.on('error', (err) => (early ??= err));
  await mkdir(destDir, { recursive: true });
  if (tarStream.destroyed) throw early ?? new Error('cannot extract artifacts: the stream was closed before it was read');
  const written: string[] = [];
  const dirs: Pending[] = [];
  const extract = tar.extract();
  extract.on('error', () => undefined); // iterating it reports the error, unless we never got that far
  const stop = (err: unknown) => extract.destroy(err as Error);
  const onAbort = () => {
    tarStream.destroy(o.signal!.reason as Error);
    stop(o.signal!.reason);
  };
  o.signal?.throwIfAborted();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const source = await decompressed(tarStream);
    source.on('error', stop).pipe(extract as unknown as Writable);
    for await (const entry of extract) {
      o.signal?.throwIfAborted();
      const body = entry as AsyncIterable<Buffer>; // tar-stream yields Buffers
      try {
        if (await writeEntry(destDir, entry.header, body, dirs)) written.push(components(entry.header.name, '').join('/'));
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        o.onWarning?.(`skipping ${JSON.stringify(entry.header.name)}: ${err.message}`);
      }
      await drain(body);
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    tarStream.destroy();
  }
  // Directory times last, deepest first: extracting into a directory changes its mtime.
  for (const d of dirs.reverse()) await utimes(d.path, d.mtime, d.mtime).catch(() => undefined);
  return written;
};
