/**
 * Time from starting `spread` to its first task running, per backend (the
 * "Executing" log line), median of 5, through the real command against the
 * real engines; and the whole run's time. Backends whose engine or image is
 * missing are listed as skipped. The cloud backends (google, openstack) run
 * against the test fakes (real sshd machines behind fake control planes,
 * polling every 100 ms instead of the original's 5 s: the fakes boot in well
 * under a second), and their time is split by phase: start-up to
 * "Allocating", authentication/lookups/create/provision up to "to boot at",
 * the ready-marker wait up to "Allocated", SSH up to "Connected", and
 * sending the project and preparing up to the first "Executing".
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
import { startFakeGce } from '../test/helpers/fake-gce.js';
import { startFakeOpenstack } from '../test/helpers/fake-openstack.js';
import { testTls } from '../test/helpers/fake-tls.js';

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
  /** Print the time between these log lines too. */
  readonly phases?: boolean;
}

const PHASES: readonly (readonly [string, RegExp])[] = [
  ['start-up', / Allocating /], ['api+provision', / to boot at /], ['boot marker', / Allocated /], ['ssh', / Connected to /], ['send+prepare', / Executing /],
];

function once(dir: string, env: NodeJS.ProcessEnv): Promise<{ first: number; total: number; marks: number[] }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let first = 0;
    let out = '';
    const marks: number[] = [];
    const child = spawn(process.execPath, [SPREAD_BIN, '-pass=bench-pw'], { cwd: dir, env: { ...process.env, ...env } });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!first && out.includes(' Executing ')) first = performance.now() - started;
      while (marks.length < PHASES.length && PHASES[marks.length]![1].test(out)) marks.push(performance.now() - started);
    });
    child.on('close', (code) => (code === 0 ? resolve({ first, total: performance.now() - started, marks }) : reject(new Error(out))));
  });
}

const phaseLine = (runs: { marks: number[] }[]): string =>
  PHASES.map(([name], i) => `${name} ${(median(runs.map((r) => (r.marks[i] ?? NaN) - (i > 0 ? r.marks[i - 1] ?? NaN : 0))) / 1000).toFixed(2)}`).join(', ');

async function main(): Promise<void> {
  const sshd = await startSshd({ host: '127.0.0.15', rootPassword: 'bench-pw' });
  const pool = adhocPool([sshd]);
  const home = mkdtempSync(join(tmpdir(), 'spread-bench-home-'));
  mkdirSync(join(home, '.spread', 'qemu'), { recursive: true });
  if (existsSync(DISK)) symlinkSync(DISK, join(home, '.spread', 'qemu', 'debian-12.img'));
  const gce = await startFakeGce({ projects: { bench: { zones: ['zone-a'] } }, publicImages: { 'debian-cloud': [{ name: 'debian-12-bookworm-v1', family: 'debian-12', description: 'Debian 12 bookworm' }] } });
  const os = await startFakeOpenstack({ user: 'bench', password: 'bench-secret', region: 'R1', projects: { bench: {} }, images: [{ name: 'debian-12-genericcloud' }], networks: [{ name: 'private' }] });
  const cloudEnv = { NODE_EXTRA_CA_CERTS: testTls().caFile, SPREAD_CLOUD_TIMING: 'poll=100ms' };
  const key = gce.serviceAccount().replace(/'/g, "''");
  const cases: Case[] = [
    { name: 'local', ready: () => true, backend: '    local:\n        systems: [debian-12]\n' },
    { name: 'adhoc (sshd)', ready: () => true, backend: adhocBackend('adhoc', '- debian-12'), env: pool.env },
    { name: 'docker', ready: () => answers(['docker', 'image', 'inspect', IMAGE]), backend: `    docker:\n        systems:\n            - debian-12:\n                image: ${IMAGE}\n` },
    { name: 'podman', ready: () => answers(['podman', 'image', 'inspect', IMAGE]), backend: `    podman:\n        run-options: [--runtime, runc, --ulimit, "nofile=1024:1024", --ulimit, "nproc=4096:4096"]\n        systems:\n            - debian-12:\n                image: ${IMAGE}\n` },
    { name: 'lxd', ready: () => answers(['lxc', 'image', 'info', 'spread-debian-12']), backend: '    lxd:\n        systems:\n            - debian-12:\n                image: spread-debian-12\n' },
    { name: 'google (fake)', ready: () => true, phases: true, env: cloudEnv, backend: `    google:\n        key: '${key}'\n        location: bench/zone-a\n        endpoint: ${gce.url}\n        systems: [debian-12]\n` },
    { name: 'openstack (fake)', ready: () => true, phases: true, env: cloudEnv, backend: `    openstack:\n        endpoint: ${os.endpoint}\n        account: bench\n        key: bench-secret\n        location: bench/R1\n        systems: [debian-12]\n` },
    { name: 'qemu (TCG)', ready: () => existsSync(DISK), backend: '    qemu:\n        memory: 1G\n        systems:\n            - debian-12:\n                device-backends: {drive: virtio, network: virtio-net-pci}\n', env: { HOME: home } },
  ];
  console.log(`spread start to first task running, and whole run, median of ${RUNS}`);
  try {
    for (const c of cases) {
      if (only.length && !only.some((o) => c.name.startsWith(o))) continue;
      if (!c.ready()) {
        console.log(`  ${c.name.padEnd(16)} skipped (engine or image missing)`);
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
        console.log(`  ${c.name.padEnd(16)} first task ${(median(results.map((r) => r.first)) / 1000).toFixed(2)} s, whole run ${(median(results.map((r) => r.total)) / 1000).toFixed(2)} s`);
        if (c.phases) console.log(`  ${''.padEnd(16)} (${phaseLine(results)} s)`);
      } finally {
        removeProject(dir);
      }
    }
  } finally {
    pool.remove();
    await gce.stop();
    await os.stop();
    rmSync(home, { recursive: true, force: true });
    await sshd.stop();
  }
}

await main();
