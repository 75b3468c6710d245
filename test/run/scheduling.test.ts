/** Job picking (spec §5.2): -seed reproduces the order; samples stay on one worker, in order; priority first. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const project = (workers: number, extra: Record<string, string> = {}) => ({
  'spread.yaml': `project: sched\npath: /sched\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: ${workers}\nsuites:\n    tests/:\n        summary: tests\n`,
  ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`tests/t${i}/task.yaml`, 'summary: t\nexecute: "true"\n'])),
  ...extra,
});

const executed = (out: string): string[] => [...out.matchAll(/Executing (\S+) \((\S+)\)/g)].map((m) => m[1]!);

test('-seed=N reproduces the order; the seed of a run is printed', async () => {
  const dir = makeProject(project(1));
  try {
    const a = await runSpread(['-seed=42', '-history=false'], dir);
    const b = await runSpread(['-seed=42', '-history=false'], dir);
    assert.deepEqual(executed(a.stdout), executed(b.stdout));
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4]) orders.add(executed((await runSpread([`-seed=${seed}`, '-history=false'], dir)).stdout).join(' '));
    assert.ok(orders.size > 1, 'other seeds give other orders');
    const unseeded = await runSpread(['-history=false'], dir);
    const seed = /Sequence of jobs produced with -seed=(\d+)/.exec(unseeded.stdout)?.[1];
    assert.ok(seed, 'the chosen seed is printed');
    assert.deepEqual(executed((await runSpread([`-seed=${seed}`, '-history=false'], dir)).stdout), executed(unseeded.stdout), 'and reproduces that run');
  } finally {
    removeProject(dir);
  }
});

test('samples run in order, each worker taking the next one right after its last; higher priority runs first', async () => {
  const dir = makeProject(project(2, {
    'tests/sampled/task.yaml': 'summary: s\nsamples: 4\nexecute: echo "$SPREAD_SAMPLE" >> "$SPREAD_PATH/../samples"\n',
    'tests/urgent/task.yaml': 'summary: u\npriority: 10\nexecute: "true"\n',
  }));
  try {
    for (const seed of [1, 2, 3]) {
      const r = await runSpread([`-seed=${seed}`, '-history=false'], dir);
      assert.equal(r.code, 0, r.stdout);
      const runs = [...r.stdout.matchAll(/Executing (\S+) \((\S+)\)/g)].map((m) => ({ job: m[1]!, machine: m[2]! }));
      const isSample = (job: string): boolean => job.includes('tests/sampled#');
      const samples = runs.filter((x) => isSample(x.job));
      assert.deepEqual(samples.map((x) => x.job.split('#')[1]), ['1', '2', '3', '4'], `seed ${seed}: in order`);
      // As in the original, another worker may take a sample too; but a worker
      // that ran one goes on with the next, with nothing in between.
      for (const machine of new Set(samples.map((x) => x.machine))) {
        const mine = runs.filter((x) => x.machine === machine).map((x) => isSample(x.job));
        const first = mine.indexOf(true);
        const last = mine.lastIndexOf(true);
        assert.ok(mine.slice(first, last + 1).every(Boolean), `seed ${seed}: ${machine} ran its samples back to back`);
      }
      const firsts = runs.slice(0, 2).map((x) => x.job);
      assert.ok(firsts.includes('local:this-host:tests/urgent'), `seed ${seed}: the priority job starts first`);
    }
  } finally {
    removeProject(dir);
  }
});
