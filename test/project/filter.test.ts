import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFilter } from '../../src/project/filter.js';

const JOB = { name: 'backend:image:suite/test:variant', sample: 1 };
const passes = (arg: string, job = JOB): boolean => parseFilter([arg]).pass(job);

test('filter arguments that pass (spec §3.2, the original unit test)', () => {
  for (const arg of ['backend', 'backend:', 'image', ':image:', 'suite/test', 'suit...est', 'suite/', '/test', ':variant', '...', 'im...', '...ge',
    'backend:variant', '/te...', 'suite/test#1']) {
    assert.ok(passes(arg), `${arg} should pass`);
  }
});

test('filter arguments that are blocked (spec §3.2)', () => {
  for (const arg of ['nothing', 'noth...', '...hing', ':backend', 'suite', 'test', 'image:backend', 'suite/te', 'variant:']) {
    assert.ok(!passes(arg), `${arg} should be blocked`);
  }
});

test('README examples match lxd:ubuntu-16.04:mysuite/task-one:variant-a', () => {
  const job = { name: 'lxd:ubuntu-16.04:mysuite/task-one:variant-a', sample: 1 };
  for (const arg of ['lxd', 'lxd:mysuite/', 'ubuntu-16.04', 'ubuntu-...', 'mysuite/', '/task-one', '/task...', 'mysu...one', 'lxd:ubuntu-16.04:variant-a']) {
    assert.ok(passes(arg, job), arg);
  }
  assert.ok(!passes('/task-two', job));
});

test('no arguments pass everything; any argument matching is enough', () => {
  assert.ok(parseFilter([]).pass(JOB));
  assert.ok(parseFilter(['nothing', 'image']).pass(JOB));
  assert.ok(!parseFilter(['nothing', 'other']).pass(JOB));
});

test('sample ranges select samples; jobs without samples are sample 1', () => {
  const job = (n: number) => ({ name: `b:s:suite/t#${n}`, sample: n });
  const f = parseFilter(['suite/t#2..3']);
  assert.deepEqual([1, 2, 3, 4].map((n) => f.pass(job(n))), [false, true, true, false]);
  assert.ok(parseFilter(['suite/t#1']).pass({ name: 'b:s:suite/t', sample: 1 }));
  assert.ok(!parseFilter(['suite/t#2']).pass({ name: 'b:s:suite/t', sample: 1 }));
  assert.ok(parseFilter(['...#3']).pass(job(3)));
  assert.ok(!parseFilter(['#3']).pass(job(3)), 'as in the original, an empty name part matches nothing');
});

test('invalid filters are one-line errors', () => {
  for (const [arg, msg] of [['a..b', /invalid filter string: "\.\."/], ['a::b', /invalid filter string: "::"/], ['a....b', /invalid filter string/],
    ['a#0', /invalid sample range/], ['a#3..2', /invalid sample range/], ['a#b', /invalid filter string: "#"/]] as const) {
    assert.throws(() => parseFilter([arg]), (e: Error) => msg.test(e.message) && !e.message.includes('\n'), arg);
  }
});

test('regex metacharacters pass through, as in the original', () => {
  assert.ok(passes('backend|nothing'));
  assert.ok(passes('ima*ge'));
});
