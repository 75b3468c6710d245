/**
 * Whole-process cost of a run: 200 trivial tasks (`execute: echo ok`) on 1
 * worker (one target) and on 4 workers (four targets, one each), against
 * local sshd targets, clean ones and slow-login ones (root's .bashrc sleeps
 * 0.1 s, like images with heavy profiles). Prints the wall time of the whole
 * `spread` process (median of 5) and its own CPU time and the whole machine's (which a busy machine
 * inflates far less than the wall time), per-task overhead ((T200 - T1) / 199), the
 * floor (one bare SSH exec round trip on a reused connection), and the Go
 * original's figures on the clean targets for comparison (issue 12).
 * Usage: npm run build && node dist/bench/run-overhead.js [runs] [--clean-only]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN } from '../test/helpers/fixture.js';
import { startSshd } from '../test/helpers/sshd.js';
import { machineBusyMs } from './machine-cpu.js';
import type { SshdTarget } from '../test/helpers/sshd.js';

const RUNS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 5);
const CLEAN_ONLY = process.argv.includes('--clean-only');
const HAS_TIME = existsSync('/usr/bin/time');
/** The Go original on the clean targets, measured for issue 12: 200 tasks on 1 and on 4 workers. */
const ORIGINAL_MS: Readonly<Record<number, number>> = { 1: 870, 4: 600 };
const PASS = 'bench-password';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function project(tasks: number, workers: number): Record<string, string> {
  const files: Record<string, string> = {
    'spread.yaml': `project: bench\npath: /home/bench-$SPREAD_WORKER\nbackends:\n${adhocBackend('adhoc', `- ubuntu-16.04:\n    workers: ${workers}`)}suites:\n    tests/:\n        summary: trivial tasks\n`,
  };
  for (let i = 0; i < tasks; i++) files[`tests/t${i}/task.yaml`] = 'summary: trivial\nexecute: echo ok\n';
  return files;
}

/** Wall time of the whole spread process, its CPU time (user + system, through /usr/bin/time when there), and the machine's. */
async function timeRun(targets: SshdTarget[], tasks: number, workers: number): Promise<{ wallMs: number; cpuMs: number; machineMs: number }> {
  const pool = adhocPool(targets);
  const dir = makeProject(project(tasks, workers));
  const stats = join(pool.dir, 'time');
  try {
    await Promise.all(targets.map((t) => t.run('rm -rf /home/bench-*')));
    const args = [`-pass=${PASS}`, '-seed=1'];
    const started = performance.now();
    const busy = machineBusyMs();
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const command = HAS_TIME ? ['/usr/bin/time', '-f', '%U %S', '-o', stats, process.execPath, SPREAD_BIN, ...args] : [process.execPath, SPREAD_BIN, ...args];
      const child = spawn(command[0]!, command.slice(1), { cwd: dir, env: { ...process.env, ...pool.env } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    const wallMs = performance.now() - started;
    const machineMs = machineBusyMs() - busy;
    if (r.code !== 0) throw new Error(`bench run failed:\n${r.out}`);
    const [user, sys] = HAS_TIME ? readFileSync(stats, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) : [NaN, NaN];
    return { wallMs, cpuMs: (user! + sys!) * 1000, machineMs };
  } finally {
    removeProject(dir);
    pool.remove();
  }
}

async function floor(target: SshdTarget): Promise<number> {
  const client = new Client();
  // TCP no-delay, as spread's own sessions use: without it Nagle adds ~40 ms per round trip.
  const sock = net.connect({ host: target.host, port: target.port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    client.on('ready', () => resolve()).on('error', reject);
    client.connect({ sock, username: 'root', password: PASS, hostVerifier: () => true });
  });
  const once = () => new Promise<number>((resolve, reject) => {
    const started = performance.now();
    client.exec('true', (err, ch) => {
      if (err) return reject(err);
      ch.on('close', () => resolve(performance.now() - started)).resume();
    });
  });
  for (let i = 0; i < 5; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < 50; i++) times.push(await once());
  client.end();
  return median(times);
}

async function main(): Promise<void> {
  const clean = await Promise.all(['127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'].map((host) => startSshd({ host, rootPassword: PASS })));
  const slow = CLEAN_ONLY ? [] : await Promise.all(['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13'].map((host) => startSshd({ host, rootPassword: PASS, slowLogin: true })));
  try {
    console.log(`spread run overhead, ${RUNS} runs each (median)`);
    for (const [name, all] of [['clean', clean], ['slow login (.bashrc sleeps 0.1 s)', slow]] as const) {
      if (all.length === 0) continue;
      const bare = await floor(all[0]!);
      console.log(`\n${name} target: bare SSH exec round trip on a reused connection: ${bare.toFixed(2)} ms`);
      for (const workers of [1, 4]) {
        // One target per worker, as spread's users run it (and as the original was measured).
        const targets = all.slice(0, workers);
        const t200: number[] = [];
        const t1: number[] = [];
        const cpu200: number[] = [];
        const machine200: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          t1.push((await timeRun(targets, 1, workers)).wallMs);
          const run = await timeRun(targets, 200, workers);
          t200.push(run.wallMs);
          cpu200.push(run.cpuMs);
          machine200.push(run.machineMs);
        }
        const perTask = (median(t200) - median(t1)) / 199;
        const original = name === 'clean' ? `; the Go original: ${ORIGINAL_MS[workers]} ms` : '';
        console.log(`  ${workers} worker${workers > 1 ? 's' : ' '}: 200 tasks ${median(t200).toFixed(0)} ms (CPU: spread ${median(cpu200).toFixed(0)} ms, whole machine ${median(machine200).toFixed(0)} ms), 1 task ${median(t1).toFixed(0)} ms, per task ${perTask.toFixed(2)} ms (${(perTask / bare).toFixed(2)}x the floor)${original}`);
      }
    }
  } finally {
    await Promise.all([...clean, ...slow].map((t) => t.stop()));
  }
}

await main();
