/**
 * Memory of a run whose task prints a lot: peak RSS of the spread process
 * (its VmHWM, polled from /proc) and wall time, for a failing task printing
 * 200 MB and 600 MB through a local sshd target, with and without -logs.
 * Output is bounded per script (src/output.ts), so the peak should not grow
 * with the size.
 * Usage: npm run build && node dist/bench/big-output.js [MB ...]
 */
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject } from '../test/helpers/fixture.js';
import { runSpreadWithPeak } from '../test/helpers/peak-rss.js';
import { startSshd } from '../test/helpers/sshd.js';

const PASS = 'bench-password';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);

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
          const started = performance.now();
          const m = await runSpreadWithPeak([`-pass=${PASS}`, ...(logs ? ['-logs=logs'] : [])], dir, pool.env);
          const seconds = (performance.now() - started) / 1000;
          if (m.code !== 1) throw new Error(`the run should fail (its task exits 1), got status ${m.code}: ${m.stderr}`);
          console.log(`  ${String(mb).padStart(4)} MB${logs ? ', -logs' : '       '}: peak RSS ${(m.peakKb / 1024).toFixed(0)} MB, ${seconds.toFixed(1)} s`);
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
