/**
 * The iteration loop: after one `spread -reuse` run, how long does rerunning
 * a single task on the kept machine take? Wall time of `spread -reuse /task`
 * for a task that does nothing (`true`), median of 5, against a local sshd
 * (clean and slow-login), so the figure is spread's own overhead.
 * Usage: npm run build && node dist/bench/reuse-rerun.js [runs]
 */
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, runSpread } from '../test/helpers/fixture.js';
import { startSshd } from '../test/helpers/sshd.js';

const RUNS = Number(process.argv[2] ?? 5);
const PASS = 'bench-password';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  console.log(`spread -reuse rerun of one task, ${RUNS} runs (median)`);
  for (const slowLogin of [false, true]) {
    const target = await startSshd({ host: '127.0.0.14', rootPassword: PASS, slowLogin });
    const pool = adhocPool([target]);
    const dir = makeProject({
      'spread.yaml': `project: rerun\npath: /home/rerun\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04')}suites:\n    tests/:\n        summary: tests\n`,
      'tests/one/task.yaml': 'summary: does nothing\nexecute: "true"\n',
      'tests/other/task.yaml': 'summary: not selected\nexecute: "true"\n',
    });
    try {
      const first = await runSpread([`-pass=${PASS}`, '-reuse'], dir, pool.env);
      if (first.code !== 0) throw new Error(first.stdout);
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const r = await runSpread([`-pass=${PASS}`, '-reuse', '/one'], dir, pool.env);
        times.push(performance.now() - started);
        if (r.code !== 0 || !r.stdout.includes('Reusing project data')) throw new Error(r.stdout);
      }
      console.log(`  ${slowLogin ? 'slow login' : 'clean     '} target: ${median(times).toFixed(0)} ms  (runs: ${times.map((t) => t.toFixed(0)).join(', ')})`);
      await runSpread([`-pass=${PASS}`, '-discard'], dir, pool.env);
    } finally {
      removeProject(dir);
      pool.remove();
      await target.stop();
    }
  }
}

await main();
