/**
 * `spread -list` against the original's expected output: snapd's real project
 * (60,262 jobs) and the original's own test projects, compared as sorted
 * sets (our order is deterministic by name; spec §12), and identical on
 * every run.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { runSpread, SHARED } from '../helpers/fixture.js';

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
const sorted = (xs: string[]): string[] => [...xs].sort();

test('snapd: -list prints exactly the original\'s 60,262 job names, the same on every run', async () => {
  const dir = join(SHARED, 'conformance/snapd');
  const expected = lines(gunzipSync(readFileSync(join(dir, 'expected-list.sorted.txt.gz'))).toString('utf8'));
  const first = await runSpread(['-list'], dir);
  assert.equal(first.code, 0, first.stderr);
  const got = lines(first.stdout);
  assert.equal(got.length, 60_262);
  assert.deepEqual(sorted(got), sorted(expected));
  const second = await runSpread(['-list'], dir);
  assert.equal(second.stdout, first.stdout, 'the order is deterministic');
});

const upstream = join(SHARED, 'conformance/upstream-tests');
for (const name of readdirSync(upstream).sort()) {
  test(`upstream tests/${name}: -list matches the original`, async () => {
    const dir = join(upstream, name);
    const expected = lines(readFileSync(join(dir, 'expected-list.sorted.txt'), 'utf8'));
    const result = await runSpread(['-list'], dir);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(sorted(lines(result.stdout)), sorted(expected));
    assert.equal((await runSpread(['-list'], dir)).stdout, result.stdout);
  });
}
