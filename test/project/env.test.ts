import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composeEnv, envVariants, resolveVariant, setVar } from '../../src/project/env.js';
import type { Env } from '../../src/project/types.js';

test('composition: a later definition replaces the value and moves last (spec §4.3)', () => {
  const env = composeEnv([[['A', '1'], ['B', '2']], [['A', '3'], ['C', '4']]]);
  assert.deepEqual(env, [['B', '2'], ['A', '3'], ['C', '4']]);
  assert.deepEqual(setVar([['A', '1'], ['B', '2']], 'A', '9'), [['B', '2'], ['A', '9']]);
});

test('FOO and FOO/a are different keys during composition', () => {
  assert.deepEqual(composeEnv([[['FOO', 'x']], [['FOO/a', 'y']]]), [['FOO', 'x'], ['FOO/a', 'y']]);
});

test('variant resolution: the suffixed key wins in its own position, regardless of level', () => {
  const env: Env = [['FOO/a', 'project-a'], ['X', '1'], ['FOO', 'task-bare'], ['BAR/b', 'b-only']];
  assert.deepEqual(resolveVariant(env, 'a'), [['FOO', 'project-a'], ['X', '1']]);
  assert.deepEqual(resolveVariant(env, 'b'), [['X', '1'], ['FOO', 'task-bare'], ['BAR', 'b-only']]);
  assert.deepEqual(resolveVariant(env, ''), [['X', '1'], ['FOO', 'task-bare']]);
});

test('X/a,b covers both variants; of two matching spellings the later wins (spec §12)', () => {
  const env: Env = [['X/a,b', 'ab'], ['X/a', 'a-only']];
  assert.deepEqual(resolveVariant(env, 'a'), [['X', 'a-only']]);
  assert.deepEqual(resolveVariant(env, 'b'), [['X', 'ab']]);
  assert.deepEqual(resolveVariant([['X/a', 'a-only'], ['X/a,b', 'ab']], 'a'), [['X', 'ab']]);
});

test('envVariants lists suffixes sorted and unique', () => {
  assert.deepEqual(envVariants([['A/b,a', ''], ['B/c', ''], ['C', ''], ['D/a', '']]), ['a', 'b', 'c']);
});
