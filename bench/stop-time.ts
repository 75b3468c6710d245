/**
 * How long spread takes to exit after SIGTERM with 4 workers busy, the
 * figure that must fit a CI system's grace period before SIGKILL:
 *
 * - `twice`: SIGTERM, then a second one at once, while 4 tasks run forever
 *   (running scripts killed, restores skipped, machines discarded, reports
 *   written): the bounded stop.
 * - `once`: a single SIGTERM while 4 tasks of 1 s run (they finish and
 *   restore, the rest is skipped, machines discarded, reports written).
 *
 * Against 4 local sshd targets (adhoc backend), and 4 docker containers when
 * docker and the test image are there. Prints the median of N runs and the
 * spread between the fastest and the slowest.
 * Usage: npm run build && node dist/bench/stop-time.js [runs]
 */
import { execFileSync, spawn } from 'node:child_process';
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN } from '../test/helpers/fixture.js';
import { startSshd } from '../test/helpers/sshd.js';
import type { SshdTarget } from '../test/helpers/sshd.js';

const RUNS = Number(process.argv[2] ?? 5);
const PASS = 'bench-stop-pw';
const IMAGE = 'spread-test/debian:12';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const tasks = (execute: string) => Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`tests/t${i}/task.yaml`, `summary: t\nexecute: ${execute}\nrestore: echo restored\n`]));

/** One run: start, wait until 4 tasks run, SIGTERM (twice or once), time to exit. */
async function stopOnce(files: Record<string, string>, env: NodeJS.ProcessEnv, twice: boolean): Promise<number> {
  const dir = makeProject(files);
  try {
    const child = spawn(process.execPath, [SPREAD_BIN, `-pass=${PASS}`, '-junit=out.xml', '-json=out.json'], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.resume();
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // Four "Executing" lines: each worker has started its first task (tasks last 1 s at least).
    for (const deadline = Date.now() + 300_000; (out.match(/ Executing /g) ?? []).length < 4; await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > deadline) throw new Error(`4 tasks never ran at once:\n${out}`);
    }
    const started = performance.now();
    child.kill('SIGTERM');
    if (twice) {
      // Signals of one kind sent back to back merge into one: send the second once the first is taken.
      while (!out.includes('Received SIGTERM: finishing')) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGTERM');
    }
    await exited;
    return performance.now() - started;
  } finally {
    removeProject(dir);
  }
}

async function measure(label: string, run: (twice: boolean) => Promise<number>): Promise<void> {
  for (const twice of [true, false]) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await run(twice));
    console.log(`${label}, SIGTERM ${twice ? 'twice (tasks run forever)' : 'once (tasks of 1 s)'}: exit after ${Math.round(median(times))} ms median (${Math.round(Math.min(...times))}-${Math.round(Math.max(...times))} ms, ${RUNS} runs)`);
  }
}

async function sshd(): Promise<void> {
  const targets: SshdTarget[] = await Promise.all(['127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34'].map((host) => startSshd({ host, rootPassword: PASS })));
  try {
    await measure('4 sshd machines', async (twice) => {
      const pool = adhocPool(targets);
      try {
        await Promise.all(targets.map((t) => t.run('rm -rf /home/stop')));
        const files = { 'spread.yaml': `project: stop\npath: /home/stop\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 4')}suites:\n    tests/:\n        summary: busy\n`, ...tasks(twice ? 'while :; do sleep 0.1; done' : 'sleep 1') };
        return await stopOnce(files, pool.env, twice);
      } finally {
        pool.remove();
      }
    });
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}

async function docker(): Promise<void> {
  try {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
  } catch {
    console.log(`docker: skipped (no docker or no ${IMAGE}; run .ci/engines.sh --images docker)`);
    return;
  }
  const name = `stop-bench-${process.pid}`;
  try {
    await measure('4 docker containers', (twice) => {
      const files = { 'spread.yaml': `project: ${name}\npath: /home/stop\nbackends:\n    docker:\n        systems:\n            - debian-12:\n                image: ${IMAGE}\n                workers: 4\nsuites:\n    tests/:\n        summary: busy\n`, ...tasks(twice ? 'while :; do sleep 0.1; done' : 'sleep 1') };
      return stopOnce(files, {}, twice);
    });
  } finally {
    const left = execFileSync('docker', ['ps', '-a', '-q', '--filter', `label=spread.project=${name}`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
    if (left.length > 0) {
      console.log(`docker: ${left.length} container(s) left behind: removing them`);
      execFileSync('docker', ['rm', '-f', ...left], { stdio: 'ignore' });
    }
  }
}

await sshd();
await docker();
