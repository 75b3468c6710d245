/**
 * Does a shared queue spread one matrix evenly over several runners? 40
 * jobs of known, uneven durations (4 × 6 s, 8 × 2.5 s, 28 between 0.5 and
 * 1.25 s: 68.5 s of work) run by 1, 2 and 3 runners of 2 workers each
 * (separate `spread -queue` processes, local backend, a private
 * redis-server), with the durations in the shared history as a previous run
 * would have left them. For each: wall time (first runner started to last
 * one ended), makespan (first job started to last job ended, from the run's
 * records in Redis), the lower bound max(longest job, total / workers), and
 * makespan / bound (target: at most 1.10, start-up aside).
 * Usage: npm run build && node dist/bench/shared-queue.js
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { parseQueueUrl } from '../src/store/queue-url.js';
import { connectRedisRun } from '../src/store/redis.js';
import { makeProject, removeProject, SPREAD_BIN } from '../test/helpers/fixture.js';
import { startRedis } from '../test/helpers/redis.js';

const DURATIONS = [
  ...Array<number>(4).fill(6),
  ...Array<number>(8).fill(2.5),
  ...Array.from({ length: 28 }, (_, i) => [0.5, 0.75, 1, 1.25][i % 4]!),
];
const WORKERS_PER_RUNNER = 2;

const runSpread = (dir: string, args: string[]): Promise<number> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [SPREAD_BIN, ...args], { cwd: dir, stdio: 'ignore' });
    child.once('close', (code) => resolve(code ?? 1));
  });

async function main(): Promise<void> {
  const redis = await startRedis();
  const files: Record<string, string> = {
    'spread.yaml': `project: queue-bench\npath: /bench\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: ${WORKERS_PER_RUNNER}\nsuites:\n    tests/:\n        summary: tests\n`,
  };
  DURATIONS.forEach((s, i) => {
    files[`tests/job${String(i).padStart(2, '0')}/task.yaml`] = `summary: ${s} s\nexecute: sleep ${s}\n`;
  });
  const dir = makeProject(files);
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
  try {
    await client.connect();
    // The shared history a previous run would have left (the durations are known).
    const history = Object.fromEntries(DURATIONS.map((s, i) => [`local:this-host:tests/job${String(i).padStart(2, '0')}`, Math.round(s * 1000)]));
    await client.hset('spread:history:queue-bench', history);
    const total = DURATIONS.reduce((a, b) => a + b, 0);
    console.log(`40 jobs, ${total} s of work (longest ${Math.max(...DURATIONS)} s), ${WORKERS_PER_RUNNER} workers per runner, local backend`);
    console.log('runners x workers   wall    makespan  bound   makespan/bound  start-up+teardown  speed-up');
    let first = 0;
    for (const runners of [1, 2, 3]) {
      const url = `${redis.url}/0/bench-${randomBytes(3).toString('hex')}?lease=5s`;
      const started = performance.now();
      const codes = await Promise.all(Array.from({ length: runners }, () => runSpread(dir, [`-queue=${url}`])));
      const wall = (performance.now() - started) / 1000;
      if (codes.some((c) => c !== 0)) throw new Error(`a runner failed: exit codes ${codes.join(' ')}`);
      const run = await connectRedisRun(parseQueueUrl(url));
      const record = await run.waitForEnd(new AbortController().signal);
      await run.close();
      const starts = record.entries.filter((e) => e.kind === 'start').map((e) => e.at);
      const ends = record.entries.filter((e) => e.kind === 'end').map((e) => e.at);
      if (ends.length !== DURATIONS.length) throw new Error(`expected ${DURATIONS.length} jobs, the run recorded ${ends.length}`);
      const makespan = (Math.max(...ends) - Math.min(...starts)) / 1000;
      const bound = Math.max(Math.max(...DURATIONS), total / (runners * WORKERS_PER_RUNNER));
      first ||= makespan;
      console.log(`${`${runners} x ${WORKERS_PER_RUNNER}`.padEnd(20)}${wall.toFixed(1).padStart(5)} s ${makespan.toFixed(1).padStart(6)} s ${bound.toFixed(1).padStart(6)} s ${(makespan / bound).toFixed(3).padStart(10)} ${(wall - makespan).toFixed(1).padStart(14)} s ${(first / makespan).toFixed(2).padStart(12)}x`);
    }
  } finally {
    client.disconnect();
    removeProject(dir);
    await redis.stop();
  }
}

await main();
