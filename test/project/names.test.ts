import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanPath } from '../../src/project/names.js';

test('cleanPath is Go path.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'], ['/', '/'], ['a//b/./c/', 'a/b/c'], ['/a/../b', '/b'], ['/..', '/'], ['/../a', '/a'],
    ['a/../..', '..'], ['../a', '../a'], ['a/b/../../..', '..'], ['./', '.'], ['/home/test/', '/home/test'],
  ];
  for (const [input, clean] of cases) assert.equal(cleanPath(input), clean, JSON.stringify(input));
});
