import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { formatPackedSize, packContent, type PackOptions } from '../../src/run/content.js';
import { gnuTarSkip } from '../helpers/gnu-tar.js';

interface Member {
  name: string;
  type: string;
  linkname: string;
  mode: number;
  size: number;
  mtime: number;
  uid: number;
  gid: number;
  sha: string;
}

// Everything about each member that both tars should agree on, read with tar-stream.
const members = async (archive: Buffer): Promise<Member[]> => {
  const out: Member[] = [];
  const extract = tar.extract();
  Readable.from([archive]).pipe(extract);
  for await (const entry of extract) {
    const h = createHash('sha256');
    for await (const chunk of entry) h.update(chunk as Buffer);
    const { name, type, linkname, mode, size, mtime, uid, gid } = entry.header;
    out.push({ name, type, linkname: linkname ?? '', mode, size, mtime: mtime.getTime() / 1000, uid, gid, sha: h.digest('hex') });
  }
  return out;
};

const warnings: string[] = [];
const pack = async (o: Partial<PackOptions> & { dir: string }): Promise<Buffer> => {
  const c = await packContent({ exclude: [], rename: [], env: [], onWarning: (m) => warnings.push(m), ...o });
  try {
    return gunzipSync(await buffer(c.open()));
  } finally {
    await c.dispose();
  }
};

const LONG = `${'deep/'.repeat(22)}file-with-a-long-name.txt`;

const buildProject = async (dir: string): Promise<void> => {
  const files: [string, string | Buffer][] = [
    ['README', 'readme\n'], ['.hidden', 'dot\n'], ['.spread-reuse.yaml', 'x'], ['.spread-reuse.123.yaml', 'x'],
    ['.git/config', '[core]\n'], ['src/a.c', 'int a;\n'], ['src/a.o', 'obj'], ['src/sub/b.c', 'int b;\n'],
    ['src/sub/b.o', 'obj'], ['src/.spread-reuse.x', 'x'], ['data.bin', randomBytes(300_000)], ['ünï cödé.txt', 'u\n'],
    ['run.sh', '#!/bin/sh\n'], ['private', 'secret\n'], [LONG, 'long\n'],
  ];
  for (const [name, data] of files) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  await mkdir(join(dir, 'empty'));
  await chmod(join(dir, 'run.sh'), 0o755);
  await chmod(join(dir, 'private'), 0o600);
  await symlink('src/a.c', join(dir, 'link'));
  await symlink('nowhere', join(dir, 'dangling'));
  await symlink('/etc/passwd', join(dir, 'abs'));
  await link(join(dir, 'src/a.c'), join(dir, 'hard'));
  const when = new Date('2021-02-03T04:05:06Z');
  for (const p of execFileSync('find', [dir, '-mindepth', '1'], { encoding: 'utf8' }).trim().split('\n')) {
    if (!p.endsWith('link') && !p.endsWith('dangling') && !p.endsWith('abs')) await utimes(p, when, when);
  }
};

describe('packContent against the real GNU tar', { skip: gnuTarSkip() }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'content-gnu-test-'));
    await buildProject(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const gnu = (include: readonly string[], exclude: readonly string[], rename: readonly string[]): Promise<Member[]> => {
    const args = ['c', '--sort=name', '--exclude=.spread-reuse.*', ...exclude.map((p) => `--exclude=${p}`),
      ...rename.map((r) => `--transform=${r}`), '--', ...include];
    const run = spawnSync('tar', args, { cwd: dir, maxBuffer: 1 << 26 });
    assert.equal(run.status, 0, String(run.stderr));
    return members(run.stdout);
  };
  const defaults = async () => (await readdir(dir)).filter((n) => !n.startsWith('.spread-reuse.')).sort();

  const cases: { title: string; include?: (dir: string) => string[]; exclude?: string[]; rename?: string[] }[] = [
    { title: 'defaults: every top-level entry, dotfiles too, but no reuse files' },
    { title: 'excludes', exclude: ['*.o', '.git', 'deep/deep'] },
    { title: 'rename with symlink targets', rename: ['s,^,prefix/,'] },
    { title: 'rename without symlink targets (upstream repack test)', rename: ['s,^,spread-08dbc8b/,S'] },
    { title: 'rename without hardlink targets', rename: ['s,^,p/,H'] },
    { title: 'several renames', rename: ['s,^src/,lib/,', 's/\\.c$/.cc/;s/^\\(.\\)/\\U\\1/'] },
    { title: 'explicit includes', include: () => ['src/', './README', 'link', 'src/sub/b.c', 'deep//deep'], exclude: ['a.o'] },
    { title: 'includes above the project', include: (d) => [`../${basename(d)}/src`, 'README'], exclude: ['b.*'] },
  ];
  for (const c of cases) {
    test(c.title, async () => {
      const include = c.include?.(dir) ?? await defaults();
      const expected = await gnu(include, c.exclude ?? [], c.rename ?? []);
      const actual = await members(await pack({ dir, include: c.include ? include : undefined, exclude: c.exclude ?? [], rename: c.rename ?? [] }));
      assert.deepEqual(actual, expected);
    });
  }
});

describe('packContent', () => {
  let dir: string;
  let scratch: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'content-test-'));
    scratch = await mkdtemp(join(tmpdir(), 'content-scratch-'));
    await buildProject(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  test('the content file is unlinked at once, readable many times at once, then disposed', async () => {
    const c = await packContent({ dir, exclude: [], rename: [], env: [], onWarning: () => {}, tmpDir: scratch });
    assert.deepEqual(await readdir(scratch), []);
    const [a, b, d] = await Promise.all([buffer(c.open()), buffer(c.open()), buffer(c.open())]);
    assert.equal(a.length, c.size);
    assert.ok(a.equals(b) && a.equals(d));
    const early = c.open();
    early.destroy(); // one machine failing must not close the content for the others
    assert.equal((await buffer(c.open())).length, c.size);
    await c.dispose();
    await c.dispose();
    assert.throws(() => c.open(), /disposed/);
  });

  test('sockets and FIFOs are skipped with a warning', async () => {
    const special = await mkdtemp(join(tmpdir(), 'content-special-'));
    let server: Server | undefined;
    try {
      await writeFile(join(special, 'file'), 'x');
      execFileSync('mkfifo', [join(special, 'fifo')]);
      server = createServer();
      await new Promise<void>((ok) => server!.listen(join(special, 'sock'), ok));
      warnings.length = 0;
      const names = (await members(await pack({ dir: special }))).map((m) => m.name);
      assert.deepEqual(names, ['file']);
      assert.deepEqual(warnings, ['fifo: fifo ignored', 'sock: socket ignored']);
    } finally {
      server?.close();
      await rm(special, { recursive: true, force: true });
    }
  });

  test('include names are literal: a glob that names nothing fails like tar', async () => {
    await assert.rejects(pack({ dir, include: ['src/*'] }),
      { message: 'cannot pack project tree: cannot stat "src/*": no such file or directory (include names are literal paths, not globs)' });
    await assert.rejects(pack({ dir, include: ['missing'] }), /cannot stat "missing": no such file or directory$/);
  });

  test('leading "/" and "../" prefixes are stripped with one warning each', async () => {
    warnings.length = 0;
    const names = (await members(await pack({ dir, include: [join(dir, 'README'), `${dir}/src/../README`] }))).map((m) => m.name);
    assert.deepEqual(names, [`${dir.slice(1)}/README`, 'README']);
    assert.deepEqual(warnings, ['removing leading "/" from member names', `removing leading "${dir}/src/../" from member names`]);
  });

  test('a name renamed to nothing is skipped with a warning', async () => {
    warnings.length = 0;
    const names = (await members(await pack({ dir, include: ['src/sub'], rename: ['s,^src/sub/b.o$,,'] }))).map((m) => m.name);
    assert.deepEqual(names, ['src/sub/', 'src/sub/b.c']);
    assert.deepEqual(warnings, ['src/sub/b.o: renamed to an empty name, skipped']);
  });

  test('a bad rename or exclude fails the packing', async () => {
    await assert.rejects(pack({ dir, rename: ['s/a/b/q'] }), /^Error: cannot pack project tree: invalid transform expression/);
  });

  test('an aborted signal stops the packing', async () => {
    await assert.rejects(pack({ dir, signal: AbortSignal.abort() }));
  });
});

describe('packContent with repack', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'content-repack-test-'));
    await buildProject(dir);
    await writeFile(join(dir, 'big.bin'), randomBytes(3_000_000)); // more than any socket buffer
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('cat <&3 >&4 gives the same tar as no repack', async () => {
    const plain = await pack({ dir, exclude: ['*.o'] });
    const repacked = await pack({ dir, exclude: ['*.o'], repack: 'cat <&3 >&4' });
    assert.ok(plain.equals(repacked));
  });

  test('the upstream delta repack script', async () => {
    const repack = [
      'trap "rm -rf spread-* added" EXIT', 'tar x <&3', 'touch $DELTA_PREFIX/added', 'tar c $DELTA_PREFIX >&4',
    ].join('\n');
    const env: [string, string][] = [['GOPATH', '/gopath'], ['PATH', '$GOPATH/bin:$PATH'], ['DELTA_REF', '08dbc8b'],
      ['DELTA_PREFIX', 'spread-$DELTA_REF/'], ['SPREAD_BACKENDS', 'lxd']];
    const names = (await members(await pack({ dir, include: ['README', 'src'], rename: ['s,^,spread-08dbc8b/,S'], repack, env })))
      .map((m) => m.name);
    assert.deepEqual(new Set(names), new Set(['spread-08dbc8b/', 'spread-08dbc8b/README', 'spread-08dbc8b/added',
      'spread-08dbc8b/src/', 'spread-08dbc8b/src/a.c', 'spread-08dbc8b/src/a.o', 'spread-08dbc8b/src/sub/',
      'spread-08dbc8b/src/sub/b.c', 'spread-08dbc8b/src/sub/b.o']));
    assert.ok(!(await readdir(dir)).some((n) => n.startsWith('spread-') || n === 'added'), 'the trap cleaned up');
  });

  test('a script may ignore fd 3', async () => {
    const names = (await members(await pack({ dir, repack: 'cd src && tar c a.c >&4' }))).map((m) => m.name);
    assert.deepEqual(names, ['a.c']);
  });

  test('a failing script reports its output', async () => {
    await assert.rejects(pack({ dir, repack: 'echo one\necho two >&2\nexit 3' }),
      { message: 'cannot pack project tree: \n-----\n+ echo one\none\n+ echo two\ntwo\n+ exit 3\n-----' });
    await assert.rejects(pack({ dir, repack: 'echo $UNSET_VARIABLE >&4' }), /UNSET_VARIABLE: unbound variable/);
  });

  test('ERROR and FATAL give their message', async () => {
    await assert.rejects(pack({ dir, repack: 'ERROR the delta base is gone' }), { message: 'cannot pack project tree: the delta base is gone' });
    await assert.rejects(pack({ dir, repack: 'FATAL no way' }), { message: 'cannot pack project tree: no way' });
  });

  test('a missing include is reported rather than what the script made of the short tar', async () => {
    await assert.rejects(pack({ dir, include: ['nope'], repack: 'cat <&3 >&4' }), /cannot stat "nope"/);
  });

  test('kill-timeout, warn-timeout and abort', async () => {
    warnings.length = 0;
    await assert.rejects(pack({ dir, repack: 'echo started\nsleep 30', warnTimeoutMs: 400, killTimeoutMs: 2000 }),
      /<kill-timeout reached>/);
    const late = /^local script running late\. Current output:\n-----\n\+ echo started\nstarted\n\+ sleep 30\n-----$/;
    assert.ok(warnings.some((w) => late.test(w)), warnings.join('\n'));
    assert.ok(warnings.includes('local script running late. Output unchanged.'), warnings.join('\n'));
    await assert.rejects(pack({ dir, repack: 'sleep 30', signal: AbortSignal.timeout(300) }), /<interrupted>/);
  });
});

describe('formatPackedSize', () => {
  const cases: [number, string][] = [
    [0, '0.00KB'], [128, '0.12KB'], [384, '0.38KB'], [1024, '1.00KB'], [1536, '1.50KB'], [10_240, '10.00KB'],
    [1024 * 1024 - 1, '1024.00KB'], [1024 * 1024, '1.00MB'], [1179648, '1.12MB'], [1441792, '1.38MB'], [1536 * 1024, '1.50MB'],
  ];
  for (const [bytes, text] of cases) test(`${bytes} bytes`, () => assert.equal(formatPackedSize(bytes), text));
});

describe('names that are not UTF-8', { skip: gnuTarSkip() }, () => {
  test('reach GNU tar with their exact bytes: files, directories, symlink targets, hard links, long paths', async () => {
    const raw = (s: string) => Buffer.from(s, 'latin1');
    const dir = await mkdtemp(join(tmpdir(), 'content-raw-'));
    const out = await mkdtemp(join(tmpdir(), 'content-raw-out-'));
    try {
      const at = (...parts: Buffer[]) => Buffer.concat([Buffer.from(`${dir}/`), ...parts.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p]))]);
      const { mkdirSync, writeFileSync, symlinkSync, linkSync } = await import('node:fs');
      writeFileSync(at(raw('caf\xe9.txt')), 'latin-1\n');
      mkdirSync(at(raw('r\xe9pertoire \xff')));
      writeFileSync(at(raw('r\xe9pertoire \xff'), raw('\xfe\xfd inside')), 'deep\n');
      writeFileSync(at(Buffer.from('ünï.txt')), 'utf-8\n');
      symlinkSync(raw('caf\xe9.txt'), at(raw('lien-\xe9')));
      linkSync(at(raw('caf\xe9.txt')), at(raw('dur-\xe9')));
      const long = Buffer.concat([raw(`${'x'.repeat(120)}-\xe9`)]);
      writeFileSync(at(long), 'long\n');
      const tarball = await pack({ dir });
      const x = spawnSync('tar', ['x', '-C', out], { input: tarball });
      assert.equal(x.status, 0, String(x.stderr));
      const list = spawnSync('find', ['.', '-printf', '%y %p -> %l\\n'], { cwd: out }).stdout;
      const want = spawnSync('find', ['.', '-printf', '%y %p -> %l\\n'], { cwd: dir }).stdout;
      const sorted = (b: Buffer) => b.toString('latin1').split('\n').sort().join('\n');
      assert.equal(sorted(list), sorted(want), 'the same names, byte for byte');
      const { readFileSync, statSync } = await import('node:fs');
      assert.equal(readFileSync(Buffer.concat([Buffer.from(`${out}/`), raw('r\xe9pertoire \xff/\xfe\xfd inside')]), 'utf8'), 'deep\n');
      assert.equal(statSync(Buffer.concat([Buffer.from(`${out}/`), raw('dur-\xe9')])).ino, statSync(Buffer.concat([Buffer.from(`${out}/`), raw('caf\xe9.txt')])).ino, 'still a hard link');
      assert.deepEqual(warnings.filter((w) => /removed|shrank/.test(w)), [], 'nothing went missing');
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
  });
});
