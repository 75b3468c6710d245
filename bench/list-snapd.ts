/**
 * `spread -list` on snapd's real project (60,262 jobs): wall time and peak
 * RSS, median of 5 runs (after one warm-up run for the page cache).
 * Usage: npm run build && node dist/bench/list-snapd.js [runs]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED, SPREAD_BIN } from '../test/helpers/fixture.js';

const runs = Number(process.argv[2] ?? 5);
const dir = join(SHARED, 'conformance/snapd');
const hasTime = existsSync('/usr/bin/time');

function once(): { wallMs: number; rssMb: number; lines: number } {
  const start = process.hrtime.bigint();
  const cmd = hasTime ? '/usr/bin/time' : process.execPath;
  const args = hasTime ? ['-f', 'maxrss=%M', process.execPath, SPREAD_BIN, '-list'] : [SPREAD_BIN, '-list'];
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`spread -list failed: ${r.stderr}`);
  const rss = /maxrss=(\d+)/.exec(r.stderr ?? '');
  return { wallMs, rssMb: rss ? Number(rss[1]) / 1024 : NaN, lines: r.stdout.split('\n').length - 1 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

once();
const results = Array.from({ length: runs }, once);
console.log(`spread -list on snapd (${results[0]!.lines} jobs), ${runs} runs`);
console.log(`  wall time  median ${median(results.map((r) => r.wallMs)).toFixed(0)} ms  (runs: ${results.map((r) => r.wallMs.toFixed(0)).join(', ')})`);
console.log(`  peak RSS   median ${median(results.map((r) => r.rssMb)).toFixed(0)} MB${hasTime ? '' : ' (install the time package to measure)'}`);
