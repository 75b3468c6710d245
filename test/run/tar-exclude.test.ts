import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileExclude, compileExcludes } from '../../src/run/tar-exclude.js';
import { gnuTarSkip } from '../helpers/gnu-tar.js';

// Real GNU tar is the reference; off CI a machine without it skips, on CI it must be there.
describe('compileExclude (GNU tar --exclude semantics)', () => {
  // [pattern, name, excluded] as observed with GNU tar 1.34.
  const cases: [string, string, boolean][] = [
    ['.git', '.git', true],
    ['.git', 'a/b/.git', true],
    ['.git', 'a/.git/config', true], // leading dir
    ['.git', 'a/.gitignore', false],
    ['*.o', 'top.o', true],
    ['*.o', 'src/sub/b.o', true],
    ['src/*.o', 'src/a.o', true],
    ['src/*.o', 'src/sub/b.o', true], // `*` matches `/`
    ['src/*.o', 'x/src/c.o', true], // unanchored
    ['src/*.o', 'src.o', false],
    ['src', 'src/a.c', true],
    ['src', 'srcx', false],
    ['src/', 'src', false], // names carry no trailing slash
    ['src/sub', 'src/sub/b.c', true],
    ['a/src', 'src', false],
    ['*/src', 'a/src', true],
    ['*/src', 'src', false],
    ['b*', 'src/sub/b.c', true],
    ['sr?', 'src', true],
    ['src?sub', 'src/sub', true], // `?` matches `/`
    ['[st]*', 'top.o', true],
    ['[!a]*.c', 'src/a.c', true], // via the suffix "src/a.c": `[!a]` takes the "s"
    ['[!a]*.c', 'a.c', false],
    ['[^a]*.c', 'a.c', false],
    ['[[:alpha:]].o', 'src/a.o', true],
    ['[[:digit:]].o', 'src/a.o', false],
    ['\\*.o', 'x.o', false],
    ['\\*.o', '*.o', true],
    ['[x', '[x', true], // an unterminated bracket is literal
    ['S*', 'src', false], // case-sensitive
    ['*', '.git', true], // no special leading dot
    ['/src', 'src', false],
    ['./src', 'src', false],
    ['./src', './src', true],
    ['src', './src', true],
    ['.spread-reuse.*', 'sub/.spread-reuse.x', true],
    ['sub/b.o', 'src//sub/b.o', true],
  ];
  for (const [pattern, name, excluded] of cases) {
    test(`${pattern} ${excluded ? 'excludes' : 'keeps'} ${name}`, () => {
      assert.equal(compileExclude(pattern).test(name), excluded);
    });
  }

  test('several patterns: any one excludes; none excludes nothing', () => {
    const excluded = compileExcludes(['*.o', '.git']);
    assert.deepEqual(['a.c', 'a.o', 'x/.git/c'].map(excluded), [false, true, true]);
    assert.equal(compileExcludes([])('anything'), false);
  });
});

describe('exclude matching against the real GNU tar', { skip: gnuTarSkip() }, () => {
  let dir: string;
  const files = [
    'README', 'top.o', '.git/config', '.git/objects/x', '.spread-reuse.yaml', 'a/.git', 'a/src/c.o', 'b/x.o',
    'src/a.c', 'src/a.o', 'src/sub/b.c', 'src/sub/b.o', 'src/.spread-reuse.x', '[x', 'we ird/*star', 'we ird/q?',
  ];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tar-exclude-test-'));
    for (const f of files) {
      await mkdir(dirname(join(dir, f)), { recursive: true });
      await writeFile(join(dir, f), f);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // Member names without the trailing slash GNU tar gives directories.
  const members = (args: readonly string[]): string[] =>
    execFileSync('sh', ['-c', 'tar c --sort=name "$@" | tar t', 'sh', ...args], { cwd: dir, encoding: 'utf8' })
      .split('\n').filter((l) => l !== '').map((l) => l.replace(/\/$/, ''));

  const includes = [['.'], ['src', 'a', 'b', 'top.o', '.git', '[x', 'we ird'], ['./src'], ['src/', 'src/a.c', 'src//sub']];
  const patterns = [
    '.git', '*.o', 'src/*.o', 'src', 'sub', 'src/sub', 'a/src', '*/src', 'b*', '.spread-reuse.*', 'x.o', '/src', './src',
    'src/', 'sr?', '[st]*', 'src/*', '*', '*/*.o', 'sub/b.o', 'src/sub/', '\\*.o', 'S*', '[!a]*.c', '[^a]*.c',
    '[[:alpha:]].o', '[x', 'src?sub', '*star', '\\*star', 'q\\?', '[]]', '[a-c]*', '.', './', 'src/sub/b.c',
  ];
  for (const include of includes) {
    for (const pattern of patterns) {
      test(`--exclude=${pattern} on ${include.join(' ')}`, () => {
        // Filtering every name on its own equals tar's pruning: a match on a directory also matches
        // (leading-dir) every name below it.
        const all = members(include);
        const excluded = compileExcludes([pattern]);
        assert.deepEqual(all.filter((m) => !excluded(m)), members([`--exclude=${pattern}`, ...include]));
      });
    }
  }
});
