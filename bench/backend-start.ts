/**
 * Machine start-up per backend, against the real engines: the time from
 * allocate() until a first script (`true`) has run on the machine through a
 * fresh Session, median of 5 (one machine at a time; discard not counted).
 * Also shows the allocate() part alone. Engines or images missing here are
 * listed as skipped. Usage: node bench/backend-start.js [--runs N] [docker,podman,lxd,qemu]
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../src/backends/backend.js';
import { dockerBackend } from '../src/backends/docker.js';
import { lxdBackend } from '../src/backends/lxd.js';
import { podmanBackend } from '../src/backends/podman.js';
import { qemuBackend } from '../src/backends/qemu.js';
import { answers, contextFor, loadYaml, projectName } from '../test/backends/fixture.js';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
const only = args.filter((a, i) => !a.startsWith('--') && !(runsAt >= 0 && i === runsAt + 1)).join(',').split(',').filter(Boolean);
const DISK = join(process.env.SPREAD_CI_CACHE ?? '/var/cache/spread-ci', 'qemu', 'debian-12.qcow2');
const PODMAN = '[--runtime, runc, --ulimit, "nofile=1024:1024", --ulimit, "nproc=4096:4096"]';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const home = mkdtempSync(join(tmpdir(), 'spread-bench-home-'));
const project = loadYaml(`project: ${projectName('bench')}
path: /home/test
backends:
    docker:
        systems:
            - debian-12: {image: "spread-test/debian:12"}
    podman:
        run-options: ${PODMAN}
        systems:
            - debian-12: {image: "spread-test/debian:12"}
    lxd:
        run-options: [-c, user.spread-ci=1]
        systems: [debian-12]
    qemu:
        memory: 1024M
        run-options: [-smp, "2"]
        systems:
            - debian-12:
                device-backends: {drive: virtio, network: virtio-net-pci}
suites:
    tests/:
        summary: bench
`);

interface Case {
  readonly name: string;
  readonly ready: () => boolean;
  readonly make: () => Backend;
}

const ctx = contextFor(project);
const config = (name: string) => project.backends.find((b) => b.name === name)!;
const cases: Case[] = [
  { name: 'docker', ready: () => answers(['docker', 'image', 'inspect', 'spread-test/debian:12']), make: () => dockerBackend(config('docker'), ctx) },
  { name: 'podman', ready: () => answers(['podman', 'image', 'exists', 'spread-test/debian:12']), make: () => podmanBackend(config('podman'), ctx) },
  { name: 'lxd', ready: () => answers(['lxc', 'image', 'info', 'spread-debian-12']), make: () => lxdBackend(config('lxd'), ctx, { home }) },
  {
    name: 'qemu',
    ready: () => answers(['qemu-system-x86_64', '--version']) && existsSync(DISK),
    make: () => {
      mkdirSync(join(home, '.spread', 'qemu'), { recursive: true });
      if (!existsSync(join(home, '.spread', 'qemu', 'debian-12.img'))) symlinkSync(DISK, join(home, '.spread', 'qemu', 'debian-12.img'));
      return qemuBackend(config('qemu'), ctx, { home });
    },
  },
];

const rows: string[][] = [];
try {
  for (const c of cases) {
    if (only.length > 0 && !only.includes(c.name)) continue;
    if (!c.ready()) {
      rows.push([c.name, '0', 'skipped: engine or image missing', '', '', '']);
      continue;
    }
    const backend = c.make();
    const system = config(c.name).systems[0]!;
    const total: number[] = [];
    const alloc: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      const machine = await backend.allocate(system);
      alloc.push(performance.now() - started);
      try {
        const session = await machine.connect(AbortSignal.timeout(30_000));
        const r = await session.exec({ script: 'true' });
        total.push(performance.now() - started);
        await session.close();
        if (r.exitCode !== 0) throw new Error(`first script failed on ${machine.label}: ${r.output}`);
      } finally {
        await machine.discard();
      }
      process.stderr.write(`${c.name} run ${i + 1}: ${(total[i]! / 1000).toFixed(2)} s\n`);
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    rows.push([c.name, String(RUNS), s(median(total)), s(Math.min(...total)), s(Math.max(...total)), s(median(alloc))]);
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}

const header = ['backend', 'runs', 'median to first script', 'min', 'max', 'allocate() median'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
