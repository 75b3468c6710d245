import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalLists, listProblem } from '../../src/project/list-algebra.js';

const sorted = (xs: string[]): string[] => [...xs].sort();

test('a plain list replaces, +x adds, -x removes (spec §4.2)', () => {
  assert.deepEqual(sorted(evalLists(['a', 'b'], ['c'])), ['c']);
  assert.deepEqual(sorted(evalLists(['a', 'b'], ['+c'])), ['a', 'b', 'c']);
  assert.deepEqual(sorted(evalLists(['a', 'b'], ['-a'])), ['b']);
  assert.deepEqual(sorted(evalLists(['a', 'b'], ['-z'])), ['a', 'b'], 'removing an absent name is a no-op');
  assert.deepEqual(sorted(evalLists(['a', 'b'], ['-a'], ['+a'])), ['a', 'b'], '+x re-adds an earlier removal');
  assert.deepEqual(sorted(evalLists(['a', 'b'], [], ['+c'])), ['a', 'b', 'c'], 'an empty list changes nothing');
});

test('globs match names seen in this and earlier lists, and never add the pattern itself (spec §12)', () => {
  assert.deepEqual(sorted(evalLists(['a1', 'a2', 'b1'], ['a*'])), ['a1', 'a2']);
  assert.deepEqual(sorted(evalLists(['a1', 'a2', 'b1'], ['-a*'])), ['b1']);
  assert.deepEqual(sorted(evalLists(['a1', 'b1'], ['-a1'], ['+a?'])), ['a1', 'b1']);
  assert.deepEqual(sorted(evalLists(['x-1', 'y-2'], ['+z-*'])), ['x-1', 'y-2'], 'a glob matching nothing adds nothing');
  assert.deepEqual(sorted(evalLists(['ubuntu-16.04', 'ubuntu-18.04', 'debian-9'], ['ubuntu-*', '+debian-[0-9]'])), ['debian-9', 'ubuntu-16.04', 'ubuntu-18.04']);
});

test('a name unknown to earlier lists is added by a plain or + entry (variants such as +buz)', () => {
  assert.deepEqual(sorted(evalLists(['foo', 'bar'], ['+buz'])), ['bar', 'buz', 'foo']);
  assert.deepEqual(sorted(evalLists(['foo', 'bar'], ['foo', 'baz'])), ['baz', 'foo']);
});

test('lists mixing plain and delta entries are rejected at load', () => {
  assert.match(listProblem(['a', '+b']) ?? '', /mixes plain entries with \+\/- entries/);
  assert.equal(listProblem(['+a', '-b']), undefined);
  assert.equal(listProblem(['a', 'b*']), undefined);
});
