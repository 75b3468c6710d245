/**
 * Cost of the sync helpers of multi-machine tasks: one spread run of a task
 * with `instances: 3` on three local sshd targets, whose instances time, in
 * their own scripts, R rounds of `SIGNAL_AND_WAIT` (each instance signals a
 * state and waits until all three reached it: a signal-and-barrier round
 * trip across 3 instances), then R lone `SIGNAL` calls (one request each).
 * Every call is a bash function, a connection over bash's /dev/tcp to the
 * port sshd forwards back to spread over the machine's SSH connection, and
 * the answer. Prints the median per round across the instances, for the
 * embedded sync service and, when redis-server is installed, for a shared
 * run (-queue=redis://...), where the states live in Redis (polled): once
 * with one runner holding the three machines, once with the instances
 * spread over two runners (one machine and two), where the group also
 * gathers and meets between its scripts through Redis.
 * Usage: npm run build && node dist/bench/sync-roundtrip.js [rounds]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, runSpread } from '../test/helpers/fixture.js';
import { poolBackend, startPoolRunner } from '../test/helpers/pool-runner.js';
import { redisSkip, startRedis } from '../test/helpers/redis.js';
import { startSshd } from '../test/helpers/sshd.js';
import type { SshdTarget } from '../test/helpers/sshd.js';

const ROUNDS = Number(process.argv[2] ?? 200);
const PASS = 'bench-password';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const TASK = (rounds: number) => `summary: sync round trips
instances: 3
execute: |
    n=${rounds}
    t0=$(date +%s%N)
    for i in $(seq $n); do SIGNAL_AND_WAIT round-$i 60s > /dev/null; done
    t1=$(date +%s%N)
    for i in $(seq $n); do SIGNAL lone-$i > /dev/null; done
    t2=$(date +%s%N)
    echo "$(( (t1 - t0) / n )) $(( (t2 - t1) / n ))" > /tmp/bench-sync
`;

async function measure(targets: SshdTarget[], rounds: number, args: string[], what: string): Promise<void> {
  const pool = adhocPool(targets);
  const dir = makeProject({
    'spread.yaml': `project: bench\npath: /home/bench\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 3')}suites:\n    tests/:\n        summary: sync\n`,
    'tests/sync/task.yaml': TASK(rounds),
  });
  try {
    await Promise.all(targets.map((t) => t.run('rm -rf /home/bench /tmp/bench-sync')));
    const started = performance.now();
    const r = await runSpread([`-pass=${PASS}`, ...args], dir, pool.env);
    const wall = performance.now() - started;
    if (r.code !== 0) throw new Error(`bench run failed:\n${r.stdout}${r.stderr}`);
    await report(targets, rounds, wall, what);
  } finally {
    removeProject(dir);
    pool.remove();
  }
}

const report = async (targets: SshdTarget[], rounds: number, wallMs: number, what: string): Promise<void> => {
  const figures = await Promise.all(targets.map(async (t) => (await t.run('cat /tmp/bench-sync')).trim().split(' ').map(Number)));
  console.log(`${what}, ${rounds} rounds (median of the 3 instances):`);
  console.log(`  signal-and-barrier round trip (SIGNAL_AND_WAIT, all 3 instances): ${median(figures.map((f) => f[0]! / 1e6)).toFixed(2)} ms per round`);
  console.log(`  lone SIGNAL (one request): ${median(figures.map((f) => f[1]! / 1e6)).toFixed(2)} ms per call`);
  console.log(`  whole spread run: ${(wallMs / 1000).toFixed(1)} s`);
};

/**
 * The instances on two runners: runner A (one machine) holds its machine
 * with a task until runner B (two machines) gathers for the sync task, so
 * the group can only form across them.
 */
async function measureAcrossRunners(targets: SshdTarget[], rounds: number, redisUrl: string): Promise<void> {
  const gate = mkdtempSync('/var/tmp/spread-bench-gate-');
  const dir = makeProject({
    'spread.yaml': `project: bench\npath: /home/bench\nrestore: rm -rf /home/bench\nbackends:\n${poolBackend('adhoc', '- ubuntu-16.04:\n    workers: 3')}suites:\n    tests/:\n        summary: sync\n`,
    'tests/hold/task.yaml': `summary: hold\npriority: 10\nexecute: |\n    for i in $(seq 1200); do [ -e ${gate}/go ] && break; sleep 0.05; done\n`,
    'tests/sync/task.yaml': TASK(rounds),
  });
  const queue = `-queue=${redisUrl}/0/bench-across-${process.pid}`;
  const args = [`-pass=${PASS}`, '-v', queue];
  try {
    await Promise.all(targets.map((t) => t.run('rm -rf /home/bench /tmp/bench-sync')));
    const started = performance.now();
    const a = startPoolRunner(dir, args, targets.slice(0, 1));
    await a.waitFor(/Executing adhoc:ubuntu-16\.04:tests\/hold /);
    const b = startPoolRunner(dir, args, targets.slice(1, 3));
    await b.waitFor(/Gathering 3 machines/);
    writeFileSync(join(gate, 'go'), '');
    const codes = await Promise.all([a.exited, b.exited]);
    const wall = performance.now() - started;
    for (const r of [a, b]) r.pool.remove();
    if (codes.some((c) => c !== 0)) throw new Error(`bench run failed:\n${a.out()}\n${b.out()}`);
    await report(targets, rounds, wall, 'shared run, the instances on 2 runners (1 machine + 2)');
  } finally {
    removeProject(dir);
    rmSync(gate, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const targets = await Promise.all(['127.0.0.41', '127.0.0.42', '127.0.0.43'].map((host) => startSshd({ host, rootPassword: PASS })));
  try {
    await measure(targets, ROUNDS, [], 'embedded sync service (the default), 3 local sshd targets');
    if (!redisSkip()) {
      const redis = await startRedis();
      try {
        await measure(targets, Math.max(1, Math.floor(ROUNDS / 4)), [`-queue=${redis.url}/0/bench-${process.pid}`], 'shared run (-queue=redis://..., states in Redis), one runner');
        await measureAcrossRunners(targets, Math.max(1, Math.floor(ROUNDS / 4)), redis.url);
      } finally {
        await redis.stop();
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}

await main();
