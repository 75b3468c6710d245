/**
 * Shared by the backend tests: a project loaded from real spread.yaml text,
 * a BackendContext that records its log, skip rules for missing engines,
 * and the "two machines at once" exercise every backend must pass.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Backend, BackendContext, Machine } from '../../src/backends/backend.js';
import { loadProject } from '../../src/project/load.js';
import type { Project, System } from '../../src/project/types.js';
import { packTarGz, readTar } from '../helpers/tar-fixtures.js';
import { text } from '../helpers/output.js';

export const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

/** A unique project name, so gc and cleanup only ever see this run's machines. */
export const projectName = (kind: string): string => `bt-${kind}-${randomBytes(3).toString('hex')}`;

export function loadYaml(yaml: string): Project {
  const dir = mkdtempSync(join(tmpdir(), 'spread-backend-test-'));
  try {
    writeFileSync(join(dir, 'spread.yaml'), yaml);
    mkdirSync(join(dir, 'tests', 'a'), { recursive: true });
    writeFileSync(join(dir, 'tests', 'a', 'task.yaml'), 'summary: a task\nexecute: echo ok\n');
    return loadProject(join(dir, 'spread.yaml'), { strict: true }).project;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestContext extends BackendContext {
  readonly logs: string[];
}

export const contextFor = (project: Project, o: { keep?: boolean } = {}): TestContext => {
  const logs: string[] = [];
  return {
    project, password: PASSWORD, keep: o.keep ?? false, logs,
    credentials: (system) => ({ username: system.username, password: system.password }),
    key: () => '',
    log: (message) => { logs.push(message); },
    signal: new AbortController().signal,
  };
};

export const systemOf = (project: Project, backend: string, system: string): System => {
  const found = project.backends.find((b) => b.name === backend)?.systems.find((s) => s.name === system);
  assert.ok(found, `no system ${backend}:${system}`);
  return found;
};

/** Whether a command answers (exit 0) within the time limit. */
export const answers = (argv: readonly string[], timeoutMs = 30_000): boolean => {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
};

/** A reason to skip off CI; never skip on CI (there a missing engine must fail the tests). */
export const skipUnless = (ready: boolean, reason: string): string | false =>
  !ready && process.env.CI !== 'true' ? reason : false;

/** Run one script through a fresh session; output and status. */
export async function runOn(machine: Machine, script: string): Promise<string> {
  const session = await machine.connect(AbortSignal.timeout(30_000));
  try {
    const r = await session.exec({ script });
    assert.equal(r.exitCode, 0, `script failed on ${machine.label}: ${text(r.output)}`);
    return text(r.output);
  } finally {
    await session.close();
  }
}

/** Debian 12 inside, a file round trip through upload, and the hostname. */
export async function checkMachine(machine: Machine): Promise<string> {
  const session = await machine.connect(AbortSignal.timeout(30_000));
  try {
    const r = await session.exec({ script: 'hostname; cat /etc/os-release; id -u' });
    assert.equal(r.exitCode, 0, text(r.output));
    assert.match(text(r.output), /^VERSION_ID="12"$/m);
    assert.match(text(r.output), /^ID=debian$/m);
    assert.match(text(r.output), /^0$/m);
    const payload = `hello from ${machine.label}\n`;
    await session.upload(packTarGz(new Map([['sub/hello.txt', Buffer.from(payload)]])), '/tmp/spread-upload');
    const back = await session.exec({ script: 'cat /tmp/spread-upload/sub/hello.txt' });
    assert.equal(text(back.output), payload);
    const tarred = await readTar(await session.download('/tmp/spread-upload', ['sub']));
    assert.equal(tarred.get('sub/hello.txt')?.toString(), payload);
    return text(r.output).split('\n')[0]!;
  } finally {
    await session.close();
  }
}

/**
 * Allocate two machines of one system at once, check both, discard both,
 * and ask `exists` whether anything is left. Machines are handed to `track`
 * as soon as they exist, so an after() hook can remove them on failure.
 */
export async function exerciseTwo(backend: Backend, system: System, track: (m: Machine) => void, exists: (m: Machine) => Promise<boolean>): Promise<Machine[]> {
  const machines = await Promise.all([0, 1].map(async () => {
    const m = await backend.allocate(system);
    track(m);
    return m;
  }));
  assert.notEqual(machines[0]!.label, machines[1]!.label);
  for (const m of machines) assert.match(m.address, /^(127\.0\.0\.1:\d+|\d+\.\d+\.\d+\.\d+)$/);
  const hostnames = await Promise.all(machines.map(checkMachine));
  assert.notEqual(hostnames[0], hostnames[1], 'distinct hostnames');
  await Promise.all(machines.map((m) => m.discard()));
  await Promise.all(machines.map((m) => m.discard())); // idempotent
  for (const m of machines) assert.equal(await exists(m), false, `${m.label} is gone after discard`);
  return machines;
}
