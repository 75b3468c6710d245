/**
 * Time from starting `spread` to its first task running, per backend (the
 * "Executing" log line), median of 5, through the real command against the
 * real engines; and the whole run's time. Backends whose engine or image is
 * missing are listed as skipped.
 * Usage: npm run build && node dist/bench/first-task.js [runs] [backend,...]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers } from '../test/backends/fixture.js';
import { adhocBackend, adhocPool } from '../test/helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN } from '../test/helpers/fixture.js';
import { startSshd } from '../test/helpers/sshd.js';

const RUNS = Number(process.argv[2] ?? 5);
const only = (process.argv[3] ?? '').split(',').filter(Boolean);
const IMAGE = 'spread-test/debian:12';
const DISK = join(process.env['SPREAD_CI_CACHE'] ?? '/var/cache/spread-ci', 'qemu', 'debian-12.qcow2');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Case {
  readonly name: string;
  readonly ready: () => boolean;
  readonly backend: string;
  readonly env?: NodeJS.ProcessEnv;
}

function once(dir: string, env: NodeJS.ProcessEnv): Promise<{ first: number; total: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let first = 0;
    let out = '';
    const child = spawn(process.execPath, [SPREAD_BIN, '-pass=bench-pw'], { cwd: dir, env: { ...process.env, ...env } });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!first && out.includes(' Executing ')) first = performance.now() - started;
    });
    child.on('close', (code) => (code === 0 ? resolve({ first, total: performance.now() - started }) : reject(new Error(out))));
  });
}

async function main(): Promise<void> {
  const sshd = await startSshd({ host: '127.0.0.15', rootPassword: 'bench-pw' });
  const pool = adhocPool([sshd]);
  const home = mkdtempSync(join(tmpdir(), 'spread-bench-home-'));
  mkdirSync(join(home, '.spread', 'qemu'), { recursive: true });
  if (existsSync(DISK)) symlinkSync(DISK, join(home, '.spread', 'qemu', 'debian-12.img'));
  const cases: Case[] = [
    { name: 'local', ready: () => true, backend: '    local:\n        systems: [debian-12]\n' },
    { name: 'adhoc (sshd)', ready: () => true, backend: adhocBackend('adhoc', '- debian-12'), env: pool.env },
    { name: 'docker', ready: () => answers(['docker', 'image', 'inspect', IMAGE]), backend: `    docker:\n        systems:\n            - debian-12:\n                image: ${IMAGE}\n` },
    { name: 'podman', ready: () => answers(['podman', 'image', 'inspect', IMAGE]), backend: `    podman:\n        run-options: [--runtime, runc, --ulimit, "nofile=1024:1024", --ulimit, "nproc=4096:4096"]\n        systems:\n            - debian-12:\n                image: ${IMAGE}\n` },
    { name: 'lxd', ready: () => answers(['lxc', 'image', 'info', 'spread-debian-12']), backend: '    lxd:\n        systems:\n            - debian-12:\n                image: spread-debian-12\n' },
    { name: 'qemu (TCG)', ready: () => existsSync(DISK), backend: '    qemu:\n        memory: 1G\n        systems:\n            - debian-12:\n                device-backends: {drive: virtio, network: virtio-net-pci}\n', env: { HOME: home } },
  ];
  console.log(`spread start to first task running, and whole run, median of ${RUNS}`);
  try {
    for (const c of cases) {
      if (only.length && !only.some((o) => c.name.startsWith(o))) continue;
      if (!c.ready()) {
        console.log(`  ${c.name.padEnd(14)} skipped (engine or image missing)`);
        continue;
      }
      const dir = makeProject({
        'spread.yaml': `project: first-task\npath: /home/first\nbackends:\n${c.backend}suites:\n    tests/:\n        summary: one task\n`,
        'tests/one/task.yaml': 'summary: trivial\nexecute: "true"\n',
      });
      try {
        const results = [];
        for (let i = 0; i < RUNS; i++) {
          await sshd.run('rm -rf /home/first');
          results.push(await once(dir, c.env ?? {}));
        }
        console.log(`  ${c.name.padEnd(14)} first task ${(median(results.map((r) => r.first)) / 1000).toFixed(2)} s, whole run ${(median(results.map((r) => r.total)) / 1000).toFixed(2)} s`);
      } finally {
        removeProject(dir);
      }
    }
  } finally {
    pool.remove();
    rmSync(home, { recursive: true, force: true });
    await sshd.stop();
  }
}

await main();
