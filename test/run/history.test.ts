/** Scheduling from history: times recorded after a run, long jobs first in the next one. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bucketOf, History, MAX_JOBS, orderByHistory } from '../../src/run/history.js';
import { withFileLock } from '../../src/run/file-lock.js';
import type { Job } from '../../src/project/types.js';
import { makeProject, removeProject, REPO_ROOT, runSpread } from '../helpers/fixture.js';

const job = (name: string): Job => ({ name } as Job);

test('buckets double from 0.1 s', () => {
  assert.deepEqual([0, 150, 199, 200, 399, 400, 1600, 60_000].map(bucketOf), [0, 0, 0, 1, 1, 2, 4, 9]);
});

test('long buckets first, the seeded order within a bucket, unknown jobs at the median', () => {
  const dir = makeProject({ 'h.json': JSON.stringify({ version: 1, jobs: { a: 100, b: 5000, c: 120, d: 4000, e: 900 } }) });
  try {
    const history = History.load(join(dir, 'h.json'));
    const jobs = ['a', 'b', 'c', 'd', 'e', 'new'].map(job);
    // b and d share a bucket; their seeded order (d before b) is kept; "new" counts as the median bucket (e's).
    assert.deepEqual(orderByHistory([0, 2, 3, 5, 1, 4], jobs, history).map((i) => jobs[i]!.name), ['d', 'b', 'new', 'e', 'a', 'c']);
    assert.deepEqual(orderByHistory([2, 1, 0], jobs, History.load(join(dir, 'missing.json'))), [2, 1, 0], 'no history: the seeded order');
  } finally {
    removeProject(dir);
  }
});

const PROJECT = {
  'spread.yaml': 'project: hist\npath: /hist\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: 2\nsuites:\n    tests/:\n        summary: tests\n',
  'tests/long/task.yaml': 'summary: long\nexecute: sleep 1\n',
  ...Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tests/short${i}/task.yaml`, 'summary: short\nexecute: "true"\n'])),
};

test('a run records job times; the next one starts the long job first whatever the seed', async () => {
  const dir = makeProject(PROJECT);
  try {
    assert.equal((await runSpread(['-seed=1'], dir)).code, 0);
    const stored = JSON.parse(readFileSync(join(dir, '.spread-history.json'), 'utf8')) as { jobs: Record<string, { ms: number; recent: string }> };
    assert.ok(stored.jobs['local:this-host:tests/long']!.ms >= 1000);
    assert.ok(stored.jobs['local:this-host:tests/short0']!.ms < 1000);
    assert.equal(stored.jobs['local:this-host:tests/long']!.recent, 'P');
    for (const seed of [2, 3, 4, 5]) {
      const r = await runSpread([`-seed=${seed}`], dir);
      const first = /Executing (\S+) /.exec(r.stdout)?.[1];
      assert.equal(first, 'local:this-host:tests/long', `seed ${seed}`);
    }
  } finally {
    removeProject(dir);
  }
});

test('-history=false keeps the plain random order and records nothing; -list never writes history', async () => {
  const dir = makeProject(PROJECT);
  try {
    await runSpread(['-list'], dir);
    assert.equal(existsSync(join(dir, '.spread-history.json')), false);
    await runSpread(['-history=false'], dir);
    assert.equal(existsSync(join(dir, '.spread-history.json')), false);
    writeFileSync(join(dir, '.spread-history.json'), JSON.stringify({ version: 1, jobs: { 'local:this-host:tests/long': 5000 } }));
    const firsts = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) firsts.add(/Executing (\S+) /.exec((await runSpread([`-seed=${seed}`, '-history=false'], dir)).stdout)![1]!);
    assert.ok(firsts.size > 1, 'different seeds start different jobs');
  } finally {
    removeProject(dir);
  }
});

test('outcomes: one per run (failed if any repeat failed), the last ten kept; durations only from passing runs; version 1 files still read', () => {
  const dir = makeProject({ 'h.json': JSON.stringify({ version: 1, jobs: { a: 700 } }) });
  const file = join(dir, 'h.json');
  try {
    let clock = 1_000_000;
    for (let run = 0; run < 12; run++) {
      const h = History.load(file, () => (clock += 1000));
      h.recordOutcome(job('a'), run % 3 !== 2);
      if (run === 4) h.recordOutcome(job('a'), false);
      if (run % 3 !== 2) h.record(job('a'), 100 + run);
      h.recordOutcome(job('b'), true);
      h.save();
    }
    const h = History.load(file);
    assert.deepEqual(h.past('a'), { ms: 110, recent: 'FPFFPPFPPF', seen: 1012 }, 'runs 2, 4, 5, 8 and 11 failed; the first two fell out');
    assert.equal(h.past('b')?.recent, 'PPPPPPPPPP');
    assert.equal(h.past('b')?.ms, undefined, 'no time recorded, none invented');
  } finally {
    removeProject(dir);
  }
});

test('the file stays bounded: the least recently run jobs go first', () => {
  const jobs = Object.fromEntries(Array.from({ length: MAX_JOBS + 5 }, (_, i) => [`j${i}`, { ms: 1, recent: 'P', seen: i }]));
  const dir = makeProject({ 'h.json': JSON.stringify({ version: 2, jobs }) });
  try {
    const h = History.load(join(dir, 'h.json'), () => (MAX_JOBS + 100) * 1000);
    h.recordOutcome(job('new'), false);
    h.save();
    const after = History.load(join(dir, 'h.json'));
    assert.equal(after.size, MAX_JOBS);
    assert.equal(after.past('new')?.recent, 'F');
    for (let i = 0; i < 6; i++) assert.equal(after.past(`j${i}`), undefined, `j${i} was the oldest`);
    assert.ok(after.past('j6'));
  } finally {
    removeProject(dir);
  }
});

test('concurrent runs never leave a broken or partial file, and keep each other\'s records', async () => {
  const dir = makeProject({});
  const file = join(dir, '.spread-history.json');
  const module = join(REPO_ROOT, 'dist/src/run/history.js');
  // Each writer saves 40 times, recording its own job: a reader must always find whole JSON.
  const writer = (n: number) => `import { History } from ${JSON.stringify(module)};
for (let i = 0; i < 40; i++) { const h = History.load(${JSON.stringify(file)}); h.record({ name: 'w${n}' }, i); h.recordOutcome({ name: 'w${n}' }, i % 2 === 0); h.save(); }`;
  try {
    const writers = [0, 1, 2, 3].map((n) => new Promise<number | null>((resolve) => {
      spawn(process.execPath, ['--input-type=module', '-e', writer(n)], { stdio: 'inherit' }).on('close', resolve);
    }));
    let done = false;
    let reads = 0;
    const all = Promise.all(writers).then((codes) => { done = true; return codes; });
    while (!done) {
      if (existsSync(file)) {
        JSON.parse(readFileSync(file, 'utf8'));
        reads++;
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await all, [0, 0, 0, 0]);
    assert.ok(reads > 0);
    const h = History.load(file);
    for (const n of [0, 1, 2, 3]) assert.equal(h.past(`w${n}`)?.ms, 39, `writer ${n}'s last save is in the file`);
    assert.deepEqual(readdirSync(dir).filter((f) => f !== '.spread-history.json'), [], 'no temporary or lock file left behind');
  } finally {
    removeProject(dir);
  }
});

test('a flaky task shows as both outcomes in the history of real runs', async () => {
  const dir = makeProject({ 'tests/flaky/task.yaml': 'summary: fails every other run\nexecute: |\n    echo x >> "$COUNT"\n    test $(( $(wc -l < "$COUNT") % 2 )) = 1\n' });
  writeFileSync(join(dir, 'spread.yaml'), `project: flaky\npath: /flaky\nenvironment:\n    COUNT: ${join(dir, 'count')}\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n`);
  try {
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await runSpread(['-seed=1'], dir)).code);
    const h = History.load(join(dir, '.spread-history.json'));
    assert.equal(h.past('local:this-host:tests/flaky')?.recent, codes.map((c) => (c === 0 ? 'P' : 'F')).join(''));
    assert.ok(codes.includes(0) && codes.includes(1), `runs passed and failed: ${codes.join(' ')}`);
  } finally {
    removeProject(dir);
  }
});

test('a lock left by a killed run is taken over; a live one is waited for', async () => {
  const dir = makeProject({});
  const file = join(dir, '.spread-history.json');
  try {
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    writeFileSync(`${file}.lock`, String(dead.pid));
    const h = History.load(file);
    h.recordOutcome(job('a'), true);
    h.save();
    assert.equal(History.load(file).past('a')?.recent, 'P');
    assert.equal(existsSync(`${file}.lock`), false);
    writeFileSync(`${file}.lock`, String(process.pid));
    assert.throws(() => withFileLock(file, () => 0, 50), /is held by another process/);
  } finally {
    removeProject(dir);
  }
});

test('a duration recorded before the workers start (a shared run\'s history) orders this run and is saved', () => {
  const dir = makeProject({});
  const file = join(dir, 'h.json');
  try {
    const h = History.load(file);
    h.record(job('slow'), 9000);
    h.record(job('fast'), 100);
    assert.equal(h.expectedMs(job('slow')), 9000);
    assert.deepEqual(orderByHistory([0, 1], [job('fast'), job('slow')], h), [1, 0]);
    assert.equal(h.past('slow'), undefined, 'past() is what the file said before the run');
    h.save();
    assert.equal(History.load(file).expectedMs(job('slow')), 9000);
  } finally {
    removeProject(dir);
  }
});
