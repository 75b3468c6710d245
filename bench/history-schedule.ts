/**
 * Does scheduling from history cut total run time? A project of 2 long tasks
 * (1.5 s) and 12 short ones (0.2 s) on 3 workers (local backend), run with
 * 8 seeds in the plain random order (-history=false) and with history
 * recorded by a first run. Prints the mean and worst wall time of each.
 * Usage: npm run build && node dist/bench/history-schedule.js [seeds]
 */
import { makeProject, removeProject, runSpread } from '../test/helpers/fixture.js';

const SEEDS = Number(process.argv[2] ?? 8);

async function timed(dir: string, args: string[]): Promise<number> {
  const started = performance.now();
  const r = await runSpread(args, dir);
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const files: Record<string, string> = {
    'spread.yaml': 'project: sched\npath: /sched\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: 3\nsuites:\n    tests/:\n        summary: tests\n',
    'tests/long1/task.yaml': 'summary: long\nexecute: sleep 1.5\n',
    'tests/long2/task.yaml': 'summary: long\nexecute: sleep 1.5\n',
  };
  for (let i = 0; i < 12; i++) files[`tests/short${i}/task.yaml`] = 'summary: short\nexecute: sleep 0.2\n';
  const dir = makeProject(files);
  try {
    const plain: number[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) plain.push(await timed(dir, [`-seed=${seed}`, '-history=false']));
    await timed(dir, ['-seed=1000']); // records the history
    const history: number[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) history.push(await timed(dir, [`-seed=${seed}`]));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`14 tasks (2 x 1.5 s, 12 x 0.2 s) on 3 workers, ${SEEDS} seeds (1.8 s of work per worker, plus start-up)`);
    console.log(`  random order (-history=false): mean ${(mean(plain) / 1000).toFixed(2)} s, worst ${(Math.max(...plain) / 1000).toFixed(2)} s`);
    console.log(`  from history (default)       : mean ${(mean(history) / 1000).toFixed(2)} s, worst ${(Math.max(...history) / 1000).toFixed(2)} s`);
  } finally {
    removeProject(dir);
  }
}

await main();
