import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlagError, parseFlags } from '../../src/cli/flags.js';
import { SPREAD_FLAGS } from '../../src/cli/spread-flags.js';
import { toRunOptions, UsageError } from '../../src/cli/options.js';
import { makeProject, removeProject, runSpread, SPREAD_YAML } from '../helpers/fixture.js';

const parse = (...argv: string[]) => parseFlags(SPREAD_FLAGS, argv);

test('Go flag syntax: -x, --x, -x=v, -x v; booleans only take =value', () => {
  assert.deepEqual(parse('-v', '--list', '-artifacts=out', '-seed', '42', 'lxd:').values, { v: true, list: true, artifacts: 'out', seed: 42 });
  assert.deepEqual(parse('-reuse=false', '--repeat=3').values, { reuse: false, repeat: 3 });
  const p = parse('-reuse', 'false');
  assert.deepEqual(p.positional, ['false'], 'a bool flag does not consume the next argument');
});

test('parsing stops at the first positional argument or at --', () => {
  assert.deepEqual(parse('-v', 'suite/', '-list').positional, ['suite/', '-list']);
  assert.deepEqual(parse('-v', '--', '-list').positional, ['-list']);
  assert.deepEqual(parse('-').positional, ['-'], 'a lone dash is positional');
});

test('bad flags are usage errors', () => {
  assert.throws(() => parse('-nope'), (e: Error) => e instanceof FlagError && e.message === 'flag provided but not defined: -nope');
  assert.throws(() => parse('-seed'), /flag needs an argument: -seed/);
  assert.throws(() => parse('-seed=x'), /invalid value "x" for flag -seed/);
  assert.throws(() => parse('-list=maybe'), /invalid boolean value/);
  assert.throws(() => parse('---v'), /bad flag syntax/);
});

test('the original mutual-exclusion rule', () => {
  const opts = (...argv: string[]) => toRunOptions(parse(...argv).values);
  for (const pair of [['-debug', '-shell'], ['-shell', '-abend'], ['-shell-before', '-restore'], ['-abend', '-restore'], ['-debug', '-shell-after']]) {
    assert.throws(() => opts(...pair), (e: Error) => e instanceof UsageError && e.message === 'cannot have more than one of -debug, -shell, -shell-before/after, -abend, and -restore');
  }
  assert.deepEqual(opts('-shell-before', '-shell-after').interaction, { kind: 'shell-around', before: true, after: true });
  assert.equal(opts('-discard').reuse, true, '-discard implies -reuse without -reuse-pid');
  assert.equal(opts('-discard', '-reuse-pid=7').reuse, false);
  assert.match(opts().password, /^[0-9a-f]{16}$/, 'a random password by default');
  assert.equal(opts('-pass=secret').password, 'secret');
  assert.equal(opts('-vv').verbosity, 2);
});

test('the command: -h lists every flag, bad flags exit 2, exclusive flags exit 1', async () => {
  const dir = makeProject({ 'spread.yaml': SPREAD_YAML(), 'tests/a/task.yaml': 'summary: a\nexecute: echo\n' });
  try {
    const help = await runSpread(['-h'], dir);
    assert.equal(help.code, 0);
    for (const f of SPREAD_FLAGS) assert.match(help.stdout, new RegExp(`^  -${f.name}\\b.*\\S`, 'm'), f.name);
    const bad = await runSpread(['-frobnicate'], dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^flag provided but not defined: -frobnicate$/m);
    const excl = await runSpread(['-debug', '-abend'], dir);
    assert.equal(excl.code, 1);
    assert.equal(excl.stderr, 'error: cannot have more than one of -debug, -shell, -shell-before/after, -abend, and -restore\n');
    const list = await runSpread(['--list', 'tests/'], dir);
    assert.equal(list.stdout, 'lxd:ubuntu-16.04:tests/a\n');
    const filterErr = await runSpread(['-list', 'a..b'], dir);
    assert.equal(filterErr.code, 1);
    assert.match(filterErr.stderr, /^error: invalid filter string: "\.\." in "a\.\.b"/);
  } finally {
    removeProject(dir);
  }
});

test('outside a project: one line, exit 1', async () => {
  const dir = makeProject({});
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cannot find spread\.yaml or \.spread\.yaml/);
  } finally {
    removeProject(dir);
  }
});
