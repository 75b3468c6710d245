/**
 * Memory of a run whose task prints a lot: peak RSS of the spread process
 * (GNU time's %M when /usr/bin/time is there, else VmHWM polled from /proc)
 * and wall time, for a failing task printing 200 MB and 600 MB through a
 * local sshd target, with and without -logs. Output is bounded per script
 * (src/output.ts), so the peak should not grow with the size.
 * Usage: npm run build && node dist/bench/big-output.js [MB ...]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN } from '../test/helpers/fixture.js';
import { startSshd } from '../test/helpers/sshd.js';

const PASS = 'bench-password';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Measure { readonly code: number; readonly peakMb: number; readonly seconds: number; readonly via: string }

function measure(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Measure> {
  return new Promise((resolve) => {
    const started = performance.now();
    const argv = GNU_TIME ? [GNU_TIME, '-f', '%M', process.execPath, SPREAD_BIN, ...args] : [process.execPath, SPREAD_BIN, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let polledKb = 0;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const poll = GNU_TIME ? undefined : setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) polledKb = Math.max(polledKb, Number(m[1]));
      } catch { /* gone */ }
    }, 20);
    child.on('close', (code) => {
      clearInterval(poll);
      const kb = GNU_TIME ? Number(stderr.trim().split('\n').pop()) : polledKb;
      resolve({ code: code ?? 1, peakMb: kb / 1024, seconds: (performance.now() - started) / 1000, via: GNU_TIME ? 'GNU time %M' : '/proc VmHWM' });
    });
  });
}

async function main(): Promise<void> {
  const target = await startSshd({ host: '127.0.0.30', rootPassword: PASS });
  try {
    console.log('peak RSS of spread with one failing task printing N MB (one sshd target on loopback)');
    for (const mb of sizes.length ? sizes : [200, 600]) {
      for (const logs of [false, true]) {
        const dir = makeProject({
          'spread.yaml': `project: big\npath: /home/big\nbackends:\n${adhocBackend('adhoc', '- debian-12')}suites:\n    tests/:\n        summary: big output\n`,
          'tests/big/task.yaml': `summary: big\nkill-timeout: 30m\nexecute: |\n    set +x\n    yes 'spread prints this line many times' | head -c ${mb * 1_000_000}\n    exit 1\n`,
        });
        const pool = adhocPool([target]);
        try {
          await target.run('rm -rf /home/big');
          const m = await measure([`-pass=${PASS}`, ...(logs ? ['-logs=logs'] : [])], dir, pool.env);
          if (m.code !== 1) throw new Error(`the run should fail (its task exits 1), got status ${m.code}`);
          console.log(`  ${String(mb).padStart(4)} MB${logs ? ', -logs' : '       '}: peak RSS ${m.peakMb.toFixed(0)} MB, ${m.seconds.toFixed(1)} s (${m.via})`);
        } finally {
          removeProject(dir);
          pool.remove();
        }
      }
    }
  } finally {
    await target.stop();
  }
}

await main();
