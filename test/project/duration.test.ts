import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGoDuration, parseSize, parseTimeout } from '../../src/project/duration.js';

test('Go durations', () => {
  assert.equal(parseGoDuration('30s'), 30_000);
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('1.5h'), 5_400_000);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('250ms'), 250);
  assert.equal(parseGoDuration('.5s'), 500);
  for (const bad of ['', '10', 'abc', '1x', 's', '1.s.', '1 s']) assert.equal(parseGoDuration(bad), undefined, bad);
});

test('timeouts: -1 and -1ns mean no timeout; other negatives are refused', () => {
  assert.equal(parseTimeout('-1'), Infinity);
  assert.equal(parseTimeout('-1ns'), Infinity);
  assert.equal(parseTimeout(' 10m '), 600_000);
  assert.equal(parseTimeout('-5s'), undefined);
  assert.equal(parseTimeout('15'), undefined);
});

test('sizes', () => {
  assert.deepEqual(parseSize(''), { ok: true, bytes: 0 });
  assert.deepEqual(parseSize('preserve-size'), { ok: true, bytes: -1 });
  assert.deepEqual(parseSize('512M'), { ok: true, bytes: 512 * 1024 * 1024 });
  assert.deepEqual(parseSize('2G'), { ok: true, bytes: 2 * 1024 ** 3 });
  assert.deepEqual(parseSize('10B'), { ok: true, bytes: 10 });
  assert.match((parseSize('100') as { message: string }).message, /unknown size suffix in "100", must be one of: B, K, M, G/);
  assert.match((parseSize('G') as { message: string }).message, /invalid size string/);
  assert.match((parseSize('1.5G') as { message: string }).message, /invalid size string/);
});
