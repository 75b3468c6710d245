/**
 * Stopping a run from outside, as CI systems and terminals do: SIGTERM,
 * SIGHUP, a second signal, a stdout that goes away (EPIPE), against real
 * sshd machines (adhoc backend) and real docker containers. Every test
 * checks what a cancelled CI job needs: machines discarded (or recorded
 * under -reuse), the summary and both reports written, nothing leaked (no
 * reuse file, no container, no process left behind).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN, stripTime } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';
import { answers, skipUnless } from '../backends/fixture.js';
import { TEST_IMAGE } from '../backends/container-suite.js';

const PASS = 'signals-pw';

interface Report { interrupted: boolean; totals: Record<string, number>; jobs: { name: string; status: string; reason: string | null }[] }

/** Spread as a child process, to signal. */
function start(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [SPREAD_BIN, `-pass=${PASS}`, '-junit=reports/junit.xml', '-json=reports/run.json', ...args], { cwd: dir, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, done, output: () => out, errors: () => err };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const report = (dir: string): Report => JSON.parse(readFileSync(join(dir, 'reports/run.json'), 'utf8')) as Report;
const statuses = (r: Report) => r.jobs.map((j) => j.status).sort();
const reuseFiles = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.spread-reuse'));
/** Processes still mentioning the project directory (the reuse lock holder, scripts of the local side). */
const leftovers = (dir: string): string => {
  try {
    return execFileSync('pgrep', ['-af', dir], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

function assertReportsWritten(dir: string): Report {
  const r = report(dir);
  assert.equal(r.interrupted, true);
  const xml = readFileSync(join(dir, 'reports/junit.xml'), 'utf8');
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="spread" /);
  assert.equal((xml.match(/<testcase /g) ?? []).length, r.jobs.length);
  return r;
}

/** Tasks that hold until released by a file on their machine. */
const HOLD = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`tests/t${i}/task.yaml`, `summary: t${i}
execute: |
    touch /tmp/sig-started-$SPREAD_JOB_NAME_SAFE
    while ! test -e /tmp/sig-release; do sleep 0.05; done
restore: echo restored >> /tmp/sig-restored
environment:
    SPREAD_JOB_NAME_SAFE: t${i}
`]));

describe('signals against sshd machines', { skip: sshdSkip() }, () => {
  let targets: SshdTarget[] = [];
  before(async () => {
    targets = await Promise.all(['127.0.0.21', '127.0.0.22'].map((host) => startSshd({ host, rootPassword: PASS })));
  });
  after(async () => {
    await Promise.all(targets.map((t) => t.stop()));
  });

  const yaml = (discard = '') => `project: signals
path: /home/signals
backends:
${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2')}${discard}suites:
    tests/:
        summary: tests
`;
  async function withProject(files: Record<string, string>, use: (dir: string, pool: AdhocPool) => Promise<void>): Promise<void> {
    const dir = makeProject(files);
    const pool = adhocPool(targets);
    await Promise.all(targets.map((t) => t.run('rm -rf /home/signals /tmp/sig-*')));
    try {
      await use(dir, pool);
      assert.equal(leftovers(dir), '', 'no process of the run is left');
    } finally {
      removeProject(dir);
      pool.remove();
    }
  }
  const started = async () => (await Promise.all(targets.map((t) => t.run('ls /tmp | grep -c sig-started || true')))).reduce((n, s) => n + Number(s.trim()), 0);
  const release = () => Promise.all(targets.map((t) => t.run('touch /tmp/sig-release')));

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    test(`${signal} once: running jobs finish and restore, the rest are skipped, machines discarded, summary and reports written`, async () => {
      await withProject({ 'spread.yaml': yaml(), ...HOLD(5) }, async (dir, pool) => {
        const run = start(dir, [], pool.env);
        await until(async () => (await started()) === 2, 'both workers to be running a task');
        run.child.kill(signal);
        await until(() => run.output().includes(`Received ${signal}: finishing running jobs`), 'the message');
        await release();
        const { code } = await run.done;
        const out = stripTime(run.output());
        assert.equal(code, 1, out);
        assert.match(out, /Successful tasks: 2\nAborted tasks: 3\n$/);
        assert.equal(run.errors(), 'error: unsuccessful run\n');
        const r = assertReportsWritten(dir);
        assert.deepEqual(statuses(r), ['passed', 'passed', 'skipped', 'skipped', 'skipped']);
        assert.deepEqual(r.jobs.filter((j) => j.status === 'skipped').map((j) => j.reason), Array(3).fill('not run: the run was interrupted'));
        const restored = (await Promise.all(targets.map((t) => t.run('cat /tmp/sig-restored 2>/dev/null || true')))).join('').trim().split('\n');
        assert.equal(restored.length, 2, 'both running jobs were restored');
        assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort(), 'every machine discarded');
        assert.deepEqual(reuseFiles(dir), [], 'no reuse file left');
      });
    });
  }

  test('SIGTERM under -reuse: machines are kept and recorded, then -discard finds them', async () => {
    await withProject({ 'spread.yaml': yaml(), ...HOLD(3) }, async (dir, pool) => {
      const run = start(dir, ['-reuse'], pool.env);
      await until(async () => (await started()) === 2, 'both workers to be running a task');
      run.child.kill('SIGTERM');
      await until(() => run.output().includes('Received SIGTERM'), 'the message');
      await release();
      assert.equal((await run.done).code, 1);
      assert.match(stripTime(run.output()), /Keeping adhoc:ubuntu-16.04 at 127\.0\.0\.2[12]:\d+\n[^]*Keeping /);
      assertReportsWritten(dir);
      assert.deepEqual(pool.discarded(), []);
      const kept = parse(readFileSync(join(dir, '.spread-reuse.yaml'), 'utf8')) as { backends: { adhoc: { systems: { 'ubuntu-16.04': { address: string } }[] } } };
      assert.deepEqual(kept.backends.adhoc.systems.map((s) => s['ubuntu-16.04'].address).sort(), targets.map((t) => t.address).sort());
      const discard = start(dir, ['-discard'], pool.env);
      assert.equal((await discard.done).code, 0, discard.output());
      assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort());
    });
  });

  test('a second SIGTERM kills running scripts: jobs cut are errors, machines discarded, nothing left running', async () => {
    await withProject({ 'spread.yaml': yaml(), ...HOLD(4) }, async (dir, pool) => {
      const run = start(dir, [], pool.env);
      await until(async () => (await started()) === 2, 'both workers to be running a task');
      run.child.kill('SIGTERM');
      await until(() => run.output().includes('Received SIGTERM: finishing'), 'the first message');
      run.child.kill('SIGTERM');
      const { code } = await run.done;
      const out = stripTime(run.output());
      assert.equal(code, 1, out);
      assert.match(out, /Received SIGTERM again: killing running scripts, discarding machines \(spread ends within 10s\)/);
      assert.match(out, /Successful tasks: 0\nAborted tasks: 4\n$/);
      const r = assertReportsWritten(dir);
      assert.deepEqual(statuses(r), ['error', 'error', 'skipped', 'skipped']);
      for (const j of r.jobs.filter((j) => j.status === 'error')) assert.match(j.reason!, /^interrupted while executing adhoc:ubuntu-16.04:tests\/t\d$/);
      assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort());
      for (const t of targets) {
        assert.equal((await t.run('pgrep -fc "[s]ig-release" || true')).trim(), '0', 'the killed scripts are gone');
        assert.equal((await t.run('cat /tmp/sig-restored 2>/dev/null || true')).trim(), '', 'no restore runs after a second signal');
      }
      assert.deepEqual(reuseFiles(dir), []);
    });
  });

  test('after a second signal spread ends within its bound even if a discard hangs, and the reuse file says what is left', async () => {
    const hanging = `        discard: |\n            echo "$SPREAD_SYSTEM_ADDRESS" >> "$SPREAD_TEST_ALLOC_DIR/discarded"\n            if [ -e "$SPREAD_TEST_ALLOC_DIR/hang" ]; then sleep 600; fi\n`;
    const files = { 'spread.yaml': yaml().replace(/        discard: \|\n(?: {12}.*\n)+/, hanging), ...HOLD(2) };
    assert.notEqual(files['spread.yaml'], yaml(), 'the discard script was replaced');
    await withProject(files, async (dir, pool) => {
      execFileSync('touch', [join(pool.dir, 'hang')]);
      const run = start(dir, [], { ...pool.env, SPREAD_STOP_GRACE: '1s' });
      await until(async () => (await started()) === 2, 'both workers to be running a task');
      const pid = Number(/-reuse-pid=(\d+)/.exec(run.output())![1]);
      run.child.kill('SIGTERM');
      await until(() => run.output().includes('Received SIGTERM: finishing'), 'the first message');
      run.child.kill('SIGTERM');
      const { code } = await run.done;
      const out = stripTime(run.output());
      assert.equal(code, 1, out);
      assert.match(out, new RegExp(`Stopped waiting 1s after the second interrupt; machines not yet discarded are listed in .*\\.spread-reuse\\.${pid}\\.yaml: discard them with: spread -reuse-pid=${pid} -discard\\n`));
      assert.match(out, /Successful tasks: 0\nAborted tasks: 2\n$/);
      assertReportsWritten(dir);
      assert.deepEqual(reuseFiles(dir), [`.spread-reuse.${pid}.yaml`]);
      // The discards are still hanging (their scripts are children of the dead run): end them, then recover as the log says.
      execFileSync('rm', [join(pool.dir, 'hang')]);
      execFileSync('pkill', ['-f', 'sleep 600'], { stdio: 'ignore' });
      const recover = start(dir, [`-reuse-pid=${pid}`, '-discard'], pool.env);
      assert.equal((await recover.done).code, 0, recover.output());
      assert.deepEqual(reuseFiles(dir), []);
    });
  });

  test('a closed stdout (spread | head) ends the run quietly: no crash, cleanup done, exit status 141', async () => {
    const quick = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`tests/q${i}/task.yaml`, 'summary: q\nexecute: sleep 0.1\n']));
    await withProject({ 'spread.yaml': yaml(), ...quick }, async (dir, pool) => {
      const run = start(dir, [], pool.env);
      await until(() => run.output().includes('Executing '), 'a first job');
      run.child.stdout.destroy();
      const { code } = await run.done;
      assert.equal(code, 141);
      assert.equal(run.errors(), 'error: standard output closed (EPIPE): the run was cut short\n');
      const r = assertReportsWritten(dir);
      assert.ok(r.totals['skipped']! > 0, 'the run stopped early');
      assert.equal(r.totals['failed'], 0);
      assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort());
      assert.deepEqual(reuseFiles(dir), []);
    });
  });
});

describe('signals against docker containers', { skip: skipUnless(answers(['docker', 'image', 'inspect', TEST_IMAGE]), `docker or its image ${TEST_IMAGE} is not available`) }, () => {
  const name = `sig-${process.pid}-${Date.now().toString(36)}`;
  const containers = () => execFileSync('docker', ['ps', '-a', '-q', '--filter', `label=spread.project=${name}`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
  after(() => {
    const left = containers();
    if (left.length > 0) execFileSync('docker', ['rm', '-f', ...left], { stdio: 'ignore' });
  });
  const files = {
    'spread.yaml': `project: ${name}
path: /home/signals
backends:
    docker:
        systems:
            - debian-12:
                image: ${TEST_IMAGE}
                workers: 2
suites:
    tests/:
        summary: tests
`,
    ...HOLD(3),
  };
  const inContainers = (cmd: string) => Promise.all(containers().map((id) => execFileSync('docker', ['exec', id, 'sh', '-c', cmd], { encoding: 'utf8' })));
  const started = async () => (await inContainers('ls /tmp | grep -c sig-started || true')).reduce((n, s) => n + Number(s.trim()), 0);

  for (const twice of [false, true]) {
    test(`SIGTERM ${twice ? 'twice' : 'once'}: every container removed, reports written, nothing left`, async () => {
      const dir = makeProject(files);
      try {
        const run = start(dir, []);
        await until(async () => containers().length === 2 && (await started()) === 2, 'both containers to be running a task', 180_000);
        run.child.kill('SIGTERM');
        await until(() => run.output().includes('Received SIGTERM: finishing'), 'the message');
        if (twice) run.child.kill('SIGTERM');
        else await inContainers('touch /tmp/sig-release');
        const { code } = await run.done;
        const out = stripTime(run.output());
        assert.equal(code, 1, out);
        assert.match(out, twice ? /Successful tasks: 0\nAborted tasks: 3\n$/ : /Successful tasks: 2\nAborted tasks: 1\n$/);
        const r = assertReportsWritten(dir);
        assert.deepEqual(statuses(r), twice ? ['error', 'error', 'skipped'] : ['passed', 'passed', 'skipped']);
        assert.deepEqual(containers(), [], 'no container left');
        assert.deepEqual(reuseFiles(dir), []);
        assert.equal(leftovers(dir), '');
        assert.equal(existsSync(join(dir, 'reports/run.json')), true);
      } finally {
        removeProject(dir);
      }
    });
  }
});
