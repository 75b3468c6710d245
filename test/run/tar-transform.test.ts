import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { parseTransforms, TransformError, translateRegex } from '../../src/run/tar-transform.js';
import { gnuTarSkip } from '../helpers/gnu-tar.js';

const apply = (expr: string | string[], name: string, target: 'regular' | 'symlink' | 'hardlink' = 'regular') =>
  parseTransforms(Array.isArray(expr) ? expr : [expr]).apply(name, target);

describe('parseTransforms', () => {
  test('the README and upstream forms', () => {
    assert.equal(apply('s,^,spread-08dbc8b/,S', 'spread.yaml'), 'spread-08dbc8b/spread.yaml');
    assert.equal(apply('s,^,spread-08dbc8b/,S', 'target', 'symlink'), 'target');
    assert.equal(apply('s,^,p/,', 'target', 'symlink'), 'p/target');
    assert.equal(apply('s,path/one,path/two,', 'a/path/one/x'), 'a/path/two/x');
  });

  test('scope flags and flags=', () => {
    assert.equal(apply('s/a/X/R', 'a'), 'a');
    assert.equal(apply('s/a/X/R', 'a', 'hardlink'), 'X');
    assert.equal(apply('s/a/X/H', 'a', 'hardlink'), 'a');
    assert.equal(apply('s/a/X/Sr', 'a', 'symlink'), 'a');
    assert.equal(apply('flags=S;s/a/X/', 'a'), 'a'); // flags= starts from nothing
    assert.equal(apply(['flags=rh', 's/a/X/'], 'a', 'symlink'), 'a');
    assert.equal(apply(['flags=rh', 's/a/X/s'], 'a', 'symlink'), 'X');
  });

  test('expressions apply in order, within and across arguments', () => {
    assert.equal(apply('s/a/b/;s/b/c/', 'a'), 'c');
    assert.equal(apply(['s/a/b/', 's/b/c/'], 'a'), 'c');
    assert.equal(apply('s/a/b/;', 'a'), 'b');
    assert.equal(parseTransforms([]).isEmpty, true);
  });

  test('GNU tar quirks kept', () => {
    assert.equal(apply('s/^a/b/g', 'aaa'), 'baa'); // `^...` applies once
    assert.equal(apply('s/b$/B/g', 'abab'), 'abaB');
    assert.equal(apply('s/x\\|^a/Y/g', 'aaa'), 'YYY'); // each rest is searched as a new string
    assert.equal(apply('s/b/X/2', 'abab'), 'aabaX'); // skipped text is emitted twice
    assert.equal(apply('s/a/X/0x2', 'abab'), 'abXb'); // strtoul base 0
    assert.equal(apply('s|a\\|b|X|g', 'a|b'), 'X|X'); // the escaped delimiter stays a BRE operator
    assert.equal(apply('s/a/\\x/', 'a'), '\\x');
  });

  test('an empty match under g moves on instead of looping forever (GNU tar hangs)', () => {
    assert.equal(apply('s/x*/-/g', 'abc'), '-a-b-c');
    assert.equal(apply('s/\\(b\\|\\)/-/g', 'abc'), '-a--c');
  });

  test('leftmost-longest overall match', () => {
    assert.equal(apply('s/a\\|ab/X/', 'abc'), 'Xc');
    assert.equal(apply('s/\\(ab\\)\\?\\(abcab\\)\\?/[\\1,\\2]/', 'abcab'), '[,abcab]');
    assert.equal(apply('s/(c|ca|cab)(bc)?/[\\1,\\2]/xg', 'abcabc'), 'ab[ca,bc]');
  });

  const errors = [
    'x/a/b/', 's/a/b', 's/a', 's/a/b/q', 's/a/b/ ;s/b/c/', 's/a/\\1/', 's/\\(a/X/', 's/a\\)/X/', 's/(a/X/x',
    's/a{/X/x', 's/^*/X/x', 's/a**/X/', 's/a\\{2,1\\}/X/', 's/\\(a\\)\\2/X/', 's/[c-a]/X/', 's/[[:foo:]]/X/',
    's/[a/X/', 's/a\\/X/', 'flags=q',
  ];
  for (const expr of errors) {
    test(`rejects ${expr}`, () => assert.throws(() => parseTransforms([expr]), TransformError));
  }

  test('translateRegex counts groups and spots alternation', () => {
    assert.deepEqual(translateRegex('\\(a\\)\\(b\\)', false).groups, 2);
    assert.deepEqual(translateRegex('(a)(b)', true).groups, 2);
    assert.equal(translateRegex('(a)', false).groups, 0);
    assert.equal(translateRegex('^abc', false).longest, false);
    assert.equal(translateRegex('a|b', true).longest, true);
  });
});

// Member names of a tar archive, read with tar-stream so no quoting gets in the way.
const memberNames = async (archive: Buffer): Promise<string[]> => {
  const names: string[] = [];
  const extract = tar.extract();
  Readable.from([archive]).pipe(extract);
  for await (const entry of extract) {
    names.push(entry.header.name);
    entry.resume();
  }
  return names;
};

describe('transforms against the real GNU tar', { skip: gnuTarSkip() }, () => {
  let dir: string;
  const names = ['a|b', 'a*b', 'ab\\c', 'n', 'a{b', 'x^y', 'x$y', 'a.b', 'a(b)c', 'b]', 'abcabc', 'abab', 'AbC.TXT', 'x y'];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tar-transform-test-'));
    for (const n of names) await writeFile(join(dir, n), n);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const expressions = [
    's|a\\|b|X|g', 's/a|b/X/', 's/a\\n/X/', 's/\\n/X/', 's/^*/X/', 's/a\\(*\\)b/[\\1]/', 's/*b/X/', 's/x^y/Z/', 's/x$y/Z/',
    's/x^y/Z/x', 's/x\\^y/Z/x', 's/x\\$y/Z/x', 's/[\\]/X/', 's/[]]/X/', 's/[^]ab]/X/g', 's/[a.]b/X/', 's/(b)\\1/X/x',
    's/a\\{1,\\}/X/', 's/\\w\\+/W/', 's/\\<a/W/g', 's/c\\>/W/g', 's/\\`a/W/g', "s/c\\'/W/g", 's/\\(abc\\)\\{2\\}/<\\1>/',
    's/(abc){2}/<\\1>/x', 's/\\(a\\|ab\\)\\(c\\|bcd\\)/[\\1,\\2]/', 's/a\\|ab/X/', 's/a\\|ab/X/g', 's/a\\{,2\\}/X/', 's/\\./D/',
    's/a.b/D/', 's/\\(a\\)\\|b/[\\1]/g', 's/b\\(x\\)*/[\\1]/', 's/[[:alpha:]]*/W/', 's/[[=a=]]/E/g', 's/a\\?\\?/Q/',
    's/b/X/2', 's/b/X/2g', 's/b/X/3', 's/a/X/010', 's/a/X/0x2', 's,,X,', 's/\\(a\\)\\(b\\)/\\u\\1\\U\\2x\\E\\2/',
    's/ab/\\Ux\\lYz/', 's/ab/\\u\\Lxy/', 's/a\\(b\\)/\\u\\Lx\\1y/', 's/\\(A\\)/\\l\\1Z/i', 's/B/x/gi', 's/a/\\x/',
    's,a,\\,,', 's|a|\\||', 's/a+/X/x', 's/a\\+/X/', 's/[a-c]/-/g', 's/a)/X/x', 's/^\\(.\\)\\(.*\\)$/\\2\\1/',
    's/\\(.\\)\\1/<&>/g', 's/[^[:alnum:]]/_/g', 's/b$/B/g', 's/^a/A/g', 's/x\\|^a/Y/g', 's/a**/Z/x', 's/a*\\?/Z/',
    's/a{1}*/Z/x', 's/\\(ab\\)*c/Z/', 's/a/&&/g', 's/a/\\&/g', 's/\\\\/S/', 's/.*/\\U&/', 's/b.*/\\u&/', 's/a/X/;s/X/Y/',
    's/\\(b\\)\\?\\(bc\\)\\?/[\\1,\\2]/', 's/(c|ca|cab)(bc)?/[\\1,\\2]/xg', 's/\\.txt$/.md/i', 's/ /_/g', 's/[[:upper:]]/\\l&/g',
    's/\\([^.]*\\)\\.\\(.*\\)/\\2.\\1/', 's/a/X/3g', 's/\\B/-/2', 's/\\b/|/', 's/[[:space:]]/S/', 's/[[:punct:]]/P/g',
  ];
  for (const expr of expressions) {
    test(expr, async () => {
      const run = spawnSync('tar', ['c', '--sort=name', `--transform=${expr}`, ...names], { cwd: dir, maxBuffer: 1 << 24 });
      assert.equal(run.status, 0, `GNU tar rejected it: ${run.stderr}`);
      const expected = await memberNames(run.stdout);
      const t = parseTransforms([expr]);
      assert.deepEqual(names.map((n) => t.apply(n, 'regular')), expected);
    });
  }

  const rejected = ['s/a{/X/x', 's/^*/X/x', 's/a**/Z/', 's/a\\{1\\}*/Z/', 's/\\(a/X/', 's/a/\\1/', 's/[c-a]/-/g', 's/a/X/q'];
  for (const expr of rejected) {
    test(`both reject ${expr}`, () => {
      const run = spawnSync('tar', ['c', `--transform=${expr}`, 'n'], { cwd: dir });
      assert.notEqual(run.status, 0);
      assert.throws(() => parseTransforms([expr]), TransformError);
    });
  }
});
