/**
 * Start-up and listing cost of `spread -list`, against bare `node -e 0` on
 * the same machine: a two-task project, one suite of 10,000 tasks, and the
 * snapd corpus (60,262 jobs). Runs alternate between the commands so a busy
 * machine slows them alike; prints the minimum and median wall time, the
 * median CPU time (user + system) and the peak RSS of each.
 * Usage: npm run build && node dist/bench/startup.js [runs] [--no-snapd]
 * (SPREAD_BENCH_BIN=path/to/spread.cjs measures another build, to compare.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeProject, SHARED, SPREAD_BIN as BUILT } from '../test/helpers/fixture.js';

const SPREAD_BIN = process.env['SPREAD_BENCH_BIN'] || BUILT;
const scratch = mkdtempSync(join(tmpdir(), 'spread-bench-time-'));

const RUNS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 11);
const SNAPD = !process.argv.includes('--no-snapd');
const TIME = '/usr/bin/time';
const hasTime = existsSync(TIME);

interface Sample { readonly wallMs: number; readonly cpuMs: number; readonly rssMb: number }

function once(args: readonly string[], cwd: string): Sample {
  const stats = join(scratch, 'time');
  const argv = hasTime ? ['-f', '%U %S %M', '-o', stats, process.execPath, ...args] : [...args];
  const start = process.hrtime.bigint();
  const r = spawnSync(hasTime ? TIME : process.execPath, argv, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  if (!hasTime) return { wallMs, cpuMs: NaN, rssMb: NaN };
  const [user, sys, rss] = readFileSync(stats, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number];
  rmSync(stats);
  return { wallMs, cpuMs: (user + sys) * 1000, rssMb: rss / 1024 };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: readonly number[]): number => Math.min(...xs);

/** Runs each command RUNS times, interleaved, after one warm-up run each. */
function measure(commands: Record<string, { args: string[]; cwd: string }>): Record<string, Sample[]> {
  const out: Record<string, Sample[]> = {};
  for (const [name, c] of Object.entries(commands)) {
    once(c.args, c.cwd);
    out[name] = [];
  }
  for (let i = 0; i < RUNS; i++) for (const [name, c] of Object.entries(commands)) out[name]!.push(once(c.args, c.cwd));
  return out;
}

function report(results: Record<string, Sample[]>, baseline?: string): void {
  const base = baseline ? min(results[baseline]!.map((s) => s.wallMs)) : 0;
  for (const [name, samples] of Object.entries(results)) {
    const wall = samples.map((s) => s.wallMs);
    const extra = baseline && name !== baseline ? `  (+${(min(wall) - base).toFixed(0)} ms over ${baseline})` : '';
    console.log(`  ${name.padEnd(24)} wall min ${min(wall).toFixed(0).padStart(5)} ms, median ${median(wall).toFixed(0).padStart(5)} ms; cpu median ${median(samples.map((s) => s.cpuMs)).toFixed(0).padStart(5)} ms; peak RSS ${median(samples.map((s) => s.rssMb)).toFixed(0).padStart(4)} MB${extra}`);
  }
}

const SPREAD = (n: number, suites = 'tests/'): string => `project: bench\npath: /bench\nbackends:\n    lxd:\n        systems: [ubuntu-22.04]\nsuites:\n    ${suites}:\n        summary: ${n} tasks\n`;

const small = makeProject({ 'spread.yaml': SPREAD(2), 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n', 'tests/b/task.yaml': 'summary: b\nexecute: "true"\n' }, 'spread-bench-');
const bigFiles: Record<string, string> = { 'spread.yaml': SPREAD(10_000) };
for (let i = 0; i < 10_000; i++) bigFiles[`tests/task-${i}/task.yaml`] = `summary: task ${i}\nexecute: echo ${i}\n`;
const big = makeProject(bigFiles, 'spread-bench-');
try {
  console.log(`spread -list start-up, ${RUNS} runs each, interleaved (load average ${loadavg()[0]!.toFixed(1)})`);
  console.log('two-task project:');
  report(measure({ 'node -e 0': { args: ['-e', '0'], cwd: small }, 'spread -list': { args: [SPREAD_BIN, '-list'], cwd: small } }), 'node -e 0');
  console.log('one suite of 10,000 tasks:');
  report(measure({ 'spread -list (10k)': { args: [SPREAD_BIN, '-list'], cwd: big } }));
  const snapd = join(SHARED, 'conformance/snapd');
  if (SNAPD && existsSync(snapd)) {
    console.log('snapd (60,262 jobs):');
    report(measure({ 'spread -list (snapd)': { args: [SPREAD_BIN, '-list'], cwd: snapd } }));
  }
} finally {
  rmSync(small, { recursive: true, force: true });
  rmSync(big, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}
