import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { extractArtifacts } from '../../src/run/artifacts-extract.js';
import { gnuTarSkip } from '../helpers/gnu-tar.js';

type Entry = [header: tar.Header | (Partial<tar.Header> & { name: string }), data?: string];

// A tar built entry by entry, hostile ones included.
const tarOf = async (entries: readonly Entry[]): Promise<Buffer> => {
  const pack = tar.pack();
  for (const [header, data] of entries) pack.entry({ mode: 0o644, ...header }, data ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

// Every path under dir with its kind, `l:target` for symlinks.
const tree = async (dir: string, prefix = ''): Promise<string[]> => {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const st = await lstat(path);
    const rel = prefix + name;
    if (st.isDirectory()) out.push(`${rel}/`, ...(await tree(path, `${rel}/`)));
    else if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(path)}`);
    else out.push(rel);
  }
  return out;
};

describe('extractArtifacts', () => {
  let sandbox: string;
  let dest: string;
  let warnings: string[];
  const extract = async (entries: readonly Entry[] | Buffer) =>
    extractArtifacts(Readable.from([Buffer.isBuffer(entries) ? entries : await tarOf(entries)]), dest,
      { onWarning: (m) => warnings.push(m) });

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'artifacts-test-'));
    dest = join(sandbox, 'artifacts', 'lxd:ubuntu-16.04:checks/main:a');
    await mkdir(join(sandbox, 'outside'));
    await writeFile(join(sandbox, 'outside', 'target'), 'untouched');
    warnings = [];
  });
  afterEach(() => rm(sandbox, { recursive: true, force: true }));

  // Nothing but dest appeared next to it, and the file outside is intact.
  const assertContained = async () => {
    assert.deepEqual((await readdir(sandbox)).sort(), ['artifacts', 'outside']);
    assert.deepEqual(await readdir(join(sandbox, 'outside')), ['target']);
    assert.equal(await readFile(join(sandbox, 'outside', 'target'), 'utf8'), 'untouched');
  };

  test('files, directories, symlinks and hard links, with modes and times', async () => {
    const mtime = new Date('2020-01-02T03:04:05Z');
    const written = await extract([
      [{ name: 'log.txt', mtime }, 'hello\n'],
      [{ name: 'sub/', type: 'directory', mode: 0o750, mtime }],
      [{ name: 'sub/run.sh', mode: 0o4755 }, '#!/bin/sh\n'],
      [{ name: 'sub/up', type: 'symlink', linkname: '../log.txt' }],
      [{ name: 'implied/dir/file' }, 'x'],
      [{ name: 'again', type: 'link', linkname: 'log.txt' }],
      [{ name: './dot/./x' }, 'y'],
    ]);
    assert.deepEqual(written, ['log.txt', 'sub', 'sub/run.sh', 'sub/up', 'implied/dir/file', 'again', 'dot/x']);
    assert.deepEqual(await tree(dest), ['again', 'dot/', 'dot/x', 'implied/', 'implied/dir/', 'implied/dir/file',
      'log.txt', 'sub/', 'sub/run.sh', 'sub/up -> ../log.txt']);
    assert.equal(await readFile(join(dest, 'sub/up'), 'utf8'), 'hello\n');
    assert.equal((await stat(join(dest, 'again'))).ino, (await stat(join(dest, 'log.txt'))).ino);
    assert.equal((await stat(join(dest, 'sub/run.sh'))).mode & 0o7777, 0o755 & ~process.umask());
    assert.equal((await stat(join(dest, 'log.txt'))).mtime.getTime(), mtime.getTime());
    assert.equal((await stat(join(dest, 'sub'))).mtime.getTime(), mtime.getTime());
    assert.deepEqual(warnings, []);
  });

  test('gzip input, and a later entry replaces an earlier file', async () => {
    const archive = gzipSync(await tarOf([[{ name: 'f' }, 'one'], [{ name: 'f' }, 'two']]));
    assert.deepEqual(await extract(archive), ['f', 'f']);
    assert.equal(await readFile(join(dest, 'f'), 'utf8'), 'two');
  });

  const hostile: [title: string, entries: Entry[], warning: RegExp][] = [
    ['an absolute name', [[{ name: '/etc/evil' }, 'x']], /"\/etc\/evil": name "\/etc\/evil" is an absolute path/],
    ['a ".." name', [[{ name: '../../outside/target' }, 'x']], /contains "\.\."/],
    ['a ".." inside a name', [[{ name: 'a/../../outside/target' }, 'x']], /contains "\.\."/],
    ['an absolute symlink', [[{ name: 'l', type: 'symlink', linkname: '/etc' }]], /symlink target "\/etc" is absolute/],
    ['a symlink climbing out', [[{ name: 'd/l', type: 'symlink', linkname: '../../outside' }]], /points outside the directory/],
    ['a symlink with ".." after a name', [[{ name: 'a', type: 'symlink', linkname: '.' }],
      [{ name: 'l', type: 'symlink', linkname: 'a/../..' }]], /has "\.\." after a name/],
    ['an empty symlink target', [[{ name: 'l', type: 'symlink', linkname: '' }]], /empty target/],
    ['a hard link to an absolute path', [[{ name: 'h', type: 'link', linkname: '/etc/passwd' }]], /absolute path/],
    ['a hard link climbing out', [[{ name: 'h', type: 'link', linkname: '../outside/target' }]], /contains "\.\."/],
    ['a hard link to a symlink', [[{ name: 's', type: 'symlink', linkname: 'x' }],
      [{ name: 'h', type: 'link', linkname: 's' }]], /is not an extracted file/],
    ['a hard link through a symlink', [[{ name: 'd/', type: 'directory' }], [{ name: 'd/f' }, 'x'],
      [{ name: 's', type: 'symlink', linkname: 'd' }], [{ name: 'h', type: 'link', linkname: 's/f' }]], /a symlink on the way: s/],
    ['a device', [[{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]], /character-device entries are not extracted/],
    ['a fifo', [[{ name: 'fifo', type: 'fifo' }]], /fifo entries are not extracted/],
  ];
  for (const [title, entries, warning] of hostile) {
    test(`refuses ${title}`, async () => {
      await extract(entries);
      assert.match(warnings.join('\n'), warning);
      await assertContained();
    });
  }

  test('never writes through a symlink it extracted', async () => {
    const written = await extract([
      [{ name: 'a', type: 'symlink', linkname: '/etc' }],
      [{ name: 'a/passwd' }, 'evil'],
      [{ name: 'in/', type: 'directory' }],
      [{ name: 'b', type: 'symlink', linkname: 'in' }],
      [{ name: 'b/file' }, 'evil'],
      [{ name: 'b/deeper/file' }, 'evil'],
    ]);
    assert.deepEqual(written, ['a/passwd', 'in', 'b']); // the refused `a` left room for a real directory
    assert.deepEqual(await tree(dest), ['a/', 'a/passwd', 'b -> in', 'in/']);
    assert.equal(warnings.length, 3);
    assert.match(warnings[1]!, /"b\/file": a symlink on the way: b/);
    await assertContained();
  });

  test('never follows a symlink already in the destination', async () => {
    await mkdir(dest, { recursive: true });
    await symlink(join(sandbox, 'outside', 'target'), join(dest, 'f'));
    await symlink(join(sandbox, 'outside'), join(dest, 'd'));
    await extract([[{ name: 'f' }, 'replaced'], [{ name: 'd/target' }, 'evil'], [{ name: 'd', type: 'directory' }]]);
    assert.equal(await readFile(join(dest, 'f'), 'utf8'), 'replaced');
    assert.deepEqual(await tree(dest), ['d/', 'f']);
    await assertContained();
  });

  test('a refused entry leaves what was there; a file named twice links to itself', async () => {
    await extract([[{ name: 'f' }, 'kept'], [{ name: 'f', type: 'symlink', linkname: '/etc/passwd' }],
      [{ name: 'f', type: 'link', linkname: 'f' }]]);
    assert.equal(await readFile(join(dest, 'f'), 'utf8'), 'kept');
    assert.equal(warnings.length, 1);
  });

  test('never replaces a directory with something else', async () => {
    await extract([[{ name: 'd/f' }, 'x'], [{ name: 'd', type: 'symlink', linkname: 'x' }], [{ name: 'd' }, 'file']]);
    assert.deepEqual(await tree(dest), ['d/', 'd/f']);
    assert.equal(warnings.filter((w) => w.includes('would replace a directory')).length, 2);
  });

  test('rejects what is not a tar stream', async () => {
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]);
    await assert.rejects(extract(xz), /xz-compressed streams are not supported/);
    await assert.rejects(extract(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3])));
    await assert.rejects(extract(Buffer.from('not a tar at all'.repeat(64))));
  });

  test('a dropped stream or an abort rejects', async () => {
    const dropped = new PassThrough();
    const pending = extractArtifacts(dropped, dest);
    dropped.write((await tarOf([[{ name: 'f' }, 'x'.repeat(5000)]])).subarray(0, 1000));
    setImmediate(() => dropped.destroy(new Error('connection lost')));
    await assert.rejects(pending, /connection lost/);
    const stalled = new PassThrough();
    stalled.write(Buffer.from([0x1f])); // not even enough to tell gzip from tar
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100); // a ref'd timer: AbortSignal.timeout's would let the test end early
    await assert.rejects(extractArtifacts(stalled, dest, { signal: stop.signal }), { name: 'AbortError' });
  });

  test('an empty stream extracts nothing', async () => {
    assert.deepEqual(await extract(Buffer.alloc(0)), []);
    assert.deepEqual(await readdir(dest), []);
  });

  test('a tar made by GNU tar comes back as it was', { skip: gnuTarSkip() }, async () => {
    const src = join(sandbox, 'src');
    await mkdir(join(src, 'dir/sub'), { recursive: true });
    await writeFile(join(src, 'dir/sub/file with spaces.txt'), 'spaces');
    await writeFile(join(src, `${'long-name-'.repeat(12)}.log`), 'long');
    await symlink('sub/file with spaces.txt', join(src, 'dir/link'));
    execFileSync('ln', [join(src, 'dir/sub/file with spaces.txt'), join(src, 'hard')]);
    const archive = spawnSync('tar', ['c', '--sort=name', '-C', src, '.'], { maxBuffer: 1 << 24 }).stdout;
    await extract(archive);
    assert.deepEqual(await tree(dest), await tree(src));
    assert.deepEqual(warnings, []);
    await rm(src, { recursive: true });
  });
});
