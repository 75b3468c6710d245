/**
 * The development loop against real sshd targets (adhoc backend): -reuse,
 * -resend, -discard and -reuse-pid, stopping with Ctrl-C once and twice and
 * with SIGKILL, -repeat, -abend, -restore, -gc, and the reboot limits.
 * Every test checks that no machine leaked: each one allocated is either
 * discarded (the adhoc discard script logs it) or recorded in a reuse file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, runSpread, SPREAD_BIN, stripTime } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip();
const PASS = 'loop-pw';
let targets: SshdTarget[] = [];
let rebootable: SshdTarget;

before(async () => {
  if (skip) return;
  targets = await Promise.all(['127.0.0.11', '127.0.0.12'].map((host) => startSshd({ host, rootPassword: PASS })));
  rebootable = await startSshd({ host: '127.0.0.13', rootPassword: PASS, rebootable: true });
});
after(async () => {
  await Promise.all([...targets, rebootable].map((t) => t?.stop()));
});

const spreadYaml = (workers = 1, extra = '') => `project: loop\npath: /home/loop\n${extra}backends:\n${adhocBackend('adhoc', `- ubuntu-16.04:\n    workers: ${workers}`)}suites:\n    tests/:\n        summary: tests\n`;

async function withProject(files: Record<string, string>, use: (dir: string, pool: AdhocPool) => Promise<void>, machines = targets): Promise<void> {
  const dir = makeProject(files);
  const pool = adhocPool(machines);
  await Promise.all(machines.map((t) => t.run('rm -rf /home/loop /tmp/loop-*')));
  try {
    await use(dir, pool);
  } finally {
    removeProject(dir);
    pool.remove();
  }
}

/** Spread as a child process, for signals. */
function start(dir: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [SPREAD_BIN, `-pass=${PASS}`, ...args], { cwd: dir, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, done, output: () => out };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reuseEntries = (file: string): { address: string; password: string }[] => {
  const doc = (parse(readFileSync(file, 'utf8')) ?? {}) as { backends?: Record<string, { systems: Record<string, { address: string; password: string }>[] }> };
  return Object.values(doc.backends ?? {}).flatMap((b) => b.systems.flatMap((s) => Object.values(s)));
};

const TASK = 'summary: t\nexecute: echo ran >> /tmp/loop-runs\n';

test('-reuse keeps machines in .spread-reuse.yaml (0600); reruns reuse them and their data; -resend re-uploads; -discard throws them away', { skip }, async () => {
  await withProject({ 'spread.yaml': spreadYaml(), 'tests/a/task.yaml': TASK }, async (dir, pool) => {
    const first = await runSpread([`-pass=${PASS}`, '-reuse'], dir, pool.env);
    assert.equal(first.code, 0, first.stdout);
    const file = join(dir, '.spread-reuse.yaml');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the reuse file holds passwords: 0600');
    assert.deepEqual(reuseEntries(file).map((e) => [e.address, e.password]), [[targets[0]!.address, PASS]]);
    assert.match(stripTime(first.stdout), /^Keeping adhoc:ubuntu-16.04 at 127\.0\.0\.11:\d+$/m);
    assert.deepEqual(pool.discarded(), []);
    assert.doesNotMatch(first.stdout, /If killed/, 'no hint when machines are kept anyway');

    const second = await runSpread([`-pass=${PASS}`, '-reuse'], dir, pool.env);
    assert.equal(second.code, 0, second.stdout);
    assert.match(second.stdout, /Reusing adhoc:ubuntu-16.04\.\.\./);
    assert.match(second.stdout, /Reusing project data on adhoc:ubuntu-16.04/);
    assert.doesNotMatch(second.stdout, /Allocating|Sending project content/);
    assert.deepEqual(pool.allocated(), ['ubuntu-16.04'], 'nothing new was allocated');

    const third = await runSpread([`-pass=${PASS}`, '-reuse', '-resend'], dir, pool.env);
    assert.match(third.stdout, /Removing project data from adhoc:ubuntu-16.04 at \/home\/loop\.\.\./);
    assert.match(third.stdout, /Sending project content to adhoc:ubuntu-16.04/);

    const discard = await runSpread([`-pass=${PASS}`, '-discard'], dir, pool.env);
    assert.equal(discard.code, 0, discard.stdout);
    assert.match(discard.stdout, /Discarding adhoc:ubuntu-16.04/);
    assert.doesNotMatch(discard.stdout, /Successful tasks/, 'no summary for -discard');
    assert.deepEqual(pool.discarded(), [targets[0]!.address]);
    assert.deepEqual(reuseEntries(file), []);
    assert.equal((await targets[0]!.run('cat /tmp/loop-runs')).trim().split('\n').length, 3);
  }, [targets[0]!]);
});

test('Ctrl-C once: running jobs finish and restore, the rest are aborted, machines discarded, summary printed', { skip }, async () => {
  const tasks = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tests/t${i}/task.yaml`, 'summary: t\nexecute: |\n    touch /tmp/loop-started\n    sleep 2\nrestore: echo restored >> /tmp/loop-restored\n']));
  await withProject({ 'spread.yaml': spreadYaml(2), ...tasks }, async (dir, pool) => {
    const run = start(dir, [], pool.env);
    await until(async () => (await Promise.all(targets.map((t) => t.run('test -e /tmp/loop-started && echo y || true')))).some((s) => s.trim() === 'y'), 'a task to start');
    run.child.kill('SIGINT');
    const { code } = await run.done;
    const out = stripTime(run.output());
    assert.equal(code, 1);
    const done = Number(/Successful tasks: (\d+)/.exec(out)?.[1]);
    const aborted = Number(/Aborted tasks: (\d+)/.exec(out)?.[1]);
    assert.ok(done >= 1 && done <= 2, `the running jobs finished (${done})`);
    assert.equal(done + aborted, 6, 'the others count as aborted');
    assert.doesNotMatch(out, /Failed tasks/);
    const restored = (await Promise.all(targets.map((t) => t.run('cat /tmp/loop-restored 2>/dev/null || true')))).join('').trim().split('\n').filter(Boolean);
    assert.equal(restored.length, done, 'every job that ran was restored');
    assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort(), 'no machine leaked');
  });
});

test('Ctrl-C twice: running scripts are killed, machines still discarded', { skip }, async () => {
  await withProject({ 'spread.yaml': spreadYaml(2), 'tests/a/task.yaml': 'summary: t\nexecute: |\n    touch /tmp/loop-started\n    sleep 60\n', 'tests/b/task.yaml': 'summary: t\nexecute: |\n    touch /tmp/loop-started\n    sleep 60\n' }, async (dir, pool) => {
    const started = Date.now();
    const run = start(dir, [], pool.env);
    await until(async () => (await Promise.all(targets.map((t) => t.run('test -e /tmp/loop-started && echo y || true')))).filter((s) => s.trim() === 'y').length === 2, 'both tasks to start');
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGINT');
    const { code } = await run.done;
    const out = stripTime(run.output());
    assert.ok(Date.now() - started < 30_000, 'the 60 s scripts did not hold the run');
    assert.equal(code, 1);
    assert.match(out, /<interrupted>/);
    // Killed by the user, not failed on their own: aborted (errors in the reports), not "Failed tasks".
    assert.match(out, /Successful tasks: 0\nAborted tasks: 2\n(?!Failed)/);
    assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort());
    for (const t of targets) assert.equal((await t.run('pgrep -c -x sleep || true')).trim(), '0');
  });
});

test('SIGKILL leaves .spread-reuse.<pid>.yaml; -reuse-pid=<pid> -discard recovers and discards the machines', { skip }, async () => {
  await withProject({ 'spread.yaml': spreadYaml(2), 'tests/a/task.yaml': 'summary: t\nexecute: |\n    touch /tmp/loop-started\n    sleep 60\n', 'tests/b/task.yaml': 'summary: t\nexecute: sleep 60\n' }, async (dir, pool) => {
    const run = start(dir, [], pool.env);
    await until(() => /If killed, discard servers with: spread -reuse-pid=\d+ -discard/.test(run.output()), 'the hint');
    const pid = Number(/-reuse-pid=(\d+)/.exec(run.output())![1]);
    await until(() => /Connected to .*\n[\s\S]*Connected to /.test(run.output()), 'both machines');
    run.child.kill('SIGKILL');
    await run.done;
    const file = join(dir, `.spread-reuse.${pid}.yaml`);
    const recorded = reuseEntries(file).map((e) => e.address).sort();
    assert.deepEqual(recorded, targets.map((t) => t.address).sort(), run.output());
    assert.deepEqual(pool.discarded(), []);
    const recover = await runSpread([`-pass=${PASS}`, `-reuse-pid=${pid}`, '-discard'], dir, pool.env);
    assert.equal(recover.code, 0, recover.stdout);
    assert.deepEqual(pool.discarded().sort(), recorded, 'every recorded machine was discarded');
    assert.equal(existsSync(file), false, 'the emptied file is removed');
  });
});

test('-repeat N runs each task N more times, counting each success, and stops at the first failure', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/steady/task.yaml': 'summary: t\nexecute: "true"\n',
    'tests/flaky/task.yaml': 'summary: t\nexecute: |\n    echo x >> /tmp/loop-flaky\n    test "$(wc -l < /tmp/loop-flaky)" -lt 2\nrestore: echo restored >> /tmp/loop-flaky-restores\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-repeat=3'], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1);
    assert.match(out, /Successful tasks: 5\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:ubuntu-16.04:tests\/flaky\n/);
    assert.equal((await targets[0]!.run('wc -l < /tmp/loop-flaky')).trim(), '2', 'no repeat after the failure');
    assert.equal((await targets[0]!.run('wc -l < /tmp/loop-flaky-restores')).trim(), '2', 'restored after every run');
  }, [targets[0]!]);
});

test('-abend stops at the first failure without restoring; the machine is still discarded', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(1, 'restore: echo project-restored >> /tmp/loop-restore\n'),
    'tests/a/task.yaml': 'summary: t\npriority: 2\nexecute: "false"\nrestore: echo task-restored >> /tmp/loop-restore\n',
    'tests/b/task.yaml': 'summary: t\npriority: 1\nexecute: "true"\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-abend'], dir, pool.env);
    assert.equal(r.code, 1);
    assert.match(stripTime(r.stdout), /Successful tasks: 0\nAborted tasks: 1\nFailed tasks: 1\n/);
    assert.equal((await targets[0]!.run('cat /tmp/loop-restore 2>/dev/null || true')).trim(), '', 'no restore ran');
    assert.deepEqual(pool.discarded(), [targets[0]!.address]);
  }, [targets[0]!]);
});

test('-restore runs only the restore scripts', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(1, 'prepare: echo project-prepare >> /tmp/loop-log\nrestore: echo project-restore >> /tmp/loop-log\n'),
    'tests/a/task.yaml': 'summary: t\nprepare: echo task-prepare >> /tmp/loop-log\nexecute: echo task-execute >> /tmp/loop-log\nrestore: echo task-restore >> /tmp/loop-log\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-restore'], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    assert.equal((await targets[0]!.run('cat /tmp/loop-log')).trim(), 'task-restore\nproject-restore');
  }, [targets[0]!]);
});

test('-gc says so for backends without garbage collection and runs nothing', { skip }, async () => {
  await withProject({ 'spread.yaml': spreadYaml(), 'tests/a/task.yaml': TASK }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-gc'], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Backend "adhoc" \(type adhoc\) has no garbage collection; nothing to do\./);
    assert.deepEqual(pool.allocated(), []);
  });
});

test('the reboot limit, counted as the original: 11 reboots are performed, the 12th request fails the script', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/forever/task.yaml': 'summary: t\nexecute: |\n    echo "boot $SPREAD_REBOOT" >> /tmp/loop-boots\n    REBOOT\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1);
    assert.match(out, /Error executing adhoc:ubuntu-16.04:tests\/forever \(.*\) : rebooted on .* \(adhoc:ubuntu-16.04:tests\/forever\) more than 10 times/);
    assert.equal((out.match(/Rebooting on .* as requested\.\.\./g) ?? []).length, 11);
  }, [rebootable]);
});

test('a reboot that never comes back warns at each warn-timeout and fails at the kill-timeout', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/stuck/task.yaml': 'summary: t\nwarn-timeout: 1s\nkill-timeout: 3s\nexecute: |\n    if [ "$SPREAD_REBOOT" = 0 ]; then REBOOT; fi\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1);
    assert.match(out, /Reboot on .* \(adhoc:ubuntu-16.04:tests\/stuck\) is taking a while\.\.\./);
    assert.match(out, /: kill-timeout reached after .* \(adhoc:ubuntu-16.04:tests\/stuck\) reboot request/);
  }, [targets[0]!]);
});
