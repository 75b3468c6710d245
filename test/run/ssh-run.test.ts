/**
 * The run engine against real OpenSSH servers on loopback (adhoc backend):
 * the prepare/restore nesting, several workers (root and a sudo user), the
 * warn and kill timeouts, and what happens when a connection or a whole
 * machine goes away under a running task.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { sshdSkip, startSshd, sudoSkip } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip();
const PASS = 'root-shared-pw';
const USER_PASS = 'user-shared-pw';
let targets: SshdTarget[] = [];

before(async () => {
  if (skip) return;
  // The machines of one system share their credentials, as real images do.
  targets = await Promise.all(['127.0.0.3', '127.0.0.4'].map((host) => startSshd({ host, rootPassword: PASS, userPassword: USER_PASS })));
});
after(async () => {
  await Promise.all(targets.map((t) => t.stop()));
});


async function withProject<T>(files: Record<string, string>, use: (dir: string, pool: AdhocPool) => Promise<T>, pool = adhocPool(targets)): Promise<T> {
  const dir = makeProject(files);
  await Promise.all(targets.map((t) => t.run('rm -rf /home/run /tmp/order.log')));
  try {
    return await use(dir, pool);
  } finally {
    removeProject(dir);
    pool.remove();
  }
}

const note = (what: string) => `echo '${what}' >> /tmp/order.log`;

test('scripts nest as the original: per machine, per suite, around each task (README order)', { skip }, async () => {
  const files = {
    'spread.yaml': `project: nesting
path: /home/run
prepare: ${note('project prepare')}
restore: ${note('project restore')}
prepare-each: ${note('project prepare-each')}
restore-each: ${note('project restore-each')}
backends:
${adhocBackend('adhoc', '- ubuntu-16.04', `        prepare: ${note('backend prepare')}\n        restore: ${note('backend restore')}\n        prepare-each: ${note('backend prepare-each')}\n        restore-each: ${note('backend restore-each')}\n`)}suites:
    one/:
        summary: first
        prepare: ${note('suite1 prepare')}
        restore: ${note('suite1 restore')}
        prepare-each: ${note('suite1 prepare-each')}
        restore-each: ${note('suite1 restore-each')}
    two/:
        summary: second
        prepare: ${note('suite2 prepare')}
        restore: ${note('suite2 restore')}
`,
    'one/task1/task.yaml': `summary: t1\npriority: 3\nprepare: ${note('task1 prepare')}\nexecute: ${note('task1 execute')}\nrestore: ${note('task1 restore')}\n`,
    'one/task2/task.yaml': `summary: t2\npriority: 2\nprepare: ${note('task2 prepare')}\nexecute: ${note('task2 execute')}\nrestore: ${note('task2 restore')}\n`,
    'two/task3/task.yaml': `summary: t3\npriority: 1\nexecute: ${note('task3 execute')}\n`,
  };
  await withProject(files, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    const each = (task: string, suite: 'suite1' | 'suite2', own: string[]) => [
      'project prepare-each', 'backend prepare-each', ...(suite === 'suite1' ? ['suite1 prepare-each'] : []), ...own.filter((l) => l.endsWith('prepare')),
      `${task} execute`,
      ...own.filter((l) => l.endsWith('restore')), ...(suite === 'suite1' ? ['suite1 restore-each'] : []), 'backend restore-each', 'project restore-each',
    ];
    const expected = [
      'project prepare', 'backend prepare',
      'suite1 prepare', ...each('task1', 'suite1', ['task1 prepare', 'task1 restore']), ...each('task2', 'suite1', ['task2 prepare', 'task2 restore']), 'suite1 restore',
      'suite2 prepare', ...each('task3', 'suite2', []), 'suite2 restore',
      'backend restore', 'project restore',
    ];
    assert.deepEqual((await targets[0]!.run('cat /tmp/order.log')).trim().split('\n'), expected);
    assert.deepEqual(pool.discarded(), [targets[0]!.address], 'the machine was discarded');
  });
});

test('two workers share the jobs; a sudo user runs scripts as root with SUDO_* unset', { skip: skip || sudoSkip() }, async () => {
  const tasks = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tests/t${i}/task.yaml`, 'summary: t\nexecute: |\n    test "$(id -u)" = 0\n    test -z "${SUDO_USER:-}"\n    touch /tmp/ran-here\n']));
  await withProject({
    'spread.yaml': `project: workers
path: /home/run
backends:
${adhocBackend('adhoc', `- ubuntu-16.04:\n    workers: 2\n    username: spread\n    password: ${USER_PASS}`)}suites:
    tests/:
        summary: tests
`,
    ...tasks,
  }, async (dir, pool) => {
    const r = await runSpread(['-v'], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Successful tasks: 6/);
    // Adhoc machines are named by their system in the log, as in the original.
    assert.equal([...r.stdout.matchAll(/Executing adhoc:ubuntu-16.04:tests\/t\d \(adhoc:ubuntu-16.04\)/g)].length, 6);
    for (const t of targets) assert.equal(await t.run('ls /tmp/ran-here'), '/tmp/ran-here\n', `${t.address} ran jobs`);
    assert.deepEqual(pool.discarded().sort(), targets.map((t) => t.address).sort());
  });
});

test('warn-timeout prints the output so far; kill-timeout kills the script and says so', { skip }, async () => {
  await withProject({
    'spread.yaml': `project: timeouts\npath: /home/run\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04')}suites:\n    tests/:\n        summary: tests\n`,
    'tests/slow/task.yaml': 'summary: slow\nwarn-timeout: 1s\nkill-timeout: 3s\nexecute: |\n    echo first line\n    sleep 1.5\n    echo second line\n    sleep 30 &\n    sleep 60\n',
    'tests/forever/task.yaml': 'summary: no timeout\nwarn-timeout: -1\nkill-timeout: -1\nexecute: sleep 2\n',
  }, async (dir, pool) => {
    const started = Date.now();
    const r = await runSpread([`-pass=${PASS}`, '-seed=1'], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.ok(Date.now() - started < 20_000, 'the killed script did not keep the run waiting');
    assert.equal(r.code, 1);
    assert.match(out, /WARNING: adhoc:ubuntu-16.04 \(adhoc:ubuntu-16.04:tests\/slow\) running late\. Current output:\n-----\n\+ echo first line\nfirst line\n\+ sleep 1\.5\n-----/);
    assert.match(out, /WARNING: .*tests\/slow\) running late\. Current output:\n-----\n\(\.\.\.\)\n\+ echo second line\nsecond line\n/, 'the second warning shows only what is new');
    assert.match(out, /Error executing adhoc:ubuntu-16.04:tests\/slow \(.*\) : \n-----\n[\s\S]*second line[\s\S]*<kill-timeout reached>\n-----/);
    assert.doesNotMatch(out, /tests\/forever\) running late/);
    assert.match(out, /Successful tasks: 1\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:ubuntu-16.04:tests\/slow\n/);
    assert.equal((await targets[0]!.run('pgrep -c -x sleep || true')).trim(), '0', 'the killed script\'s children are gone');
  });
});

const LOST_PROJECT = (marker: string) => ({
  'spread.yaml': `project: lost\npath: /home/run\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2')}suites:\n    tests/:\n        summary: tests\n`,
  'tests/victim/task.yaml': `summary: runs while its connection dies\npriority: 10\nexecute: |\n    touch /tmp/${marker}\n    sleep 20\n`,
  ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`tests/ok${i}/task.yaml`, 'summary: innocent\nexecute: sleep 0.2\n'])),
});

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hasMarker = async (t: SshdTarget, marker: string) => (await t.run(`test -e /tmp/${marker} && echo yes || true`)).trim() === 'yes';

test('a connection killed under a task fails only that task; the worker reconnects and goes on', { skip }, async () => {
  await Promise.all(targets.map((t) => t.run('rm -f /tmp/victim-1')));
  await withProject(LOST_PROJECT('victim-1'), async (dir, pool) => {
    const run = runSpread([`-pass=${PASS}`], dir, pool.env);
    let victim: SshdTarget | undefined;
    await waitFor(async () => {
      for (const t of targets) if (await hasMarker(t, 'victim-1')) victim = t;
      return victim !== undefined;
    }, 'the victim task to start');
    await victim!.killConnections();
    const r = await run;
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1);
    assert.match(out, /Error executing adhoc:ubuntu-16.04:tests\/victim \(adhoc:ubuntu-16.04\) : connection to adhoc:ubuntu-16.04 lost/);
    assert.match(out, /Reconnected to adhoc:ubuntu-16.04/);
    assert.match(out, /Successful tasks: 5\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:ubuntu-16.04:tests\/victim\n/);
  });
});

test('a machine gone for good is discarded; the other worker runs the rest', { skip }, async () => {
  const gone = await startSshd({ host: '127.0.0.5', rootPassword: PASS });
  const pool = adhocPool([gone, targets[1]!]);
  try {
    await targets[1]!.run('rm -rf /home/run /tmp/running');
    const tasks = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`tests/t${i}/task.yaml`, 'summary: t\nexecute: |\n    touch /tmp/running\n    sleep 0.5\n    rm -f /tmp/running\n']));
    await withProject({
      'spread.yaml': `project: gone\npath: /home/run\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2')}suites:\n    tests/:\n        summary: tests\n`,
      ...tasks,
    }, async (dir) => {
      const run = runSpread([`-pass=${PASS}`], dir, { ...pool.env, SPREAD_DIAL_TIMEOUT: '3s' });
      await waitFor(() => hasMarker(gone, 'running'), 'a task to run on the doomed machine');
      pool.markDead(gone.address);
      await gone.stop();
      const r = await run;
      const out = stripTime(r.stdout);
      assert.equal(r.code, 1);
      assert.match(out, /connection to adhoc:ubuntu-16.04 lost/);
      assert.match(out, /Successful tasks: 7\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:ubuntu-16.04:tests\/t\d\n/, out);
      assert.ok(pool.discarded().includes(gone.address), 'the lost machine was discarded');
      assert.ok(pool.discarded().includes(targets[1]!.address), 'the other one too, at the end');
    }, pool);
  } finally {
    await gone.stop();
  }
});

test('secrets never show below -vv; -vv shows the environment sent with each script', { skip }, async () => {
  const files = {
    'spread.yaml': `project: secrets\npath: /home/run\nenvironment:\n    TOKEN: $(HOST:echo tok-3141592)\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04')}suites:\n    tests/:\n        summary: tests\n`,
    'tests/ok/task.yaml': 'summary: passes\nexecute: test -n "$TOKEN"\n',
    'tests/bad/task.yaml': 'summary: fails\nexecute: |\n    echo failing\n    false\n',
  };
  for (const verbose of [[], ['-v']]) {
    await withProject(files, async (dir, pool) => {
      const r = await runSpread([`-pass=${PASS}`, ...verbose], dir, pool.env);
      assert.equal(r.code, 1);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(`${PASS}|tok-3141592`), `nothing secret at ${verbose.join('') || 'the default level'}`);
    });
  }
  await withProject(files, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-vv'], dir, pool.env);
    assert.match(r.stdout, /Sending script for .* \(adhoc:ubuntu-16.04:tests\/ok\):\n-----\n[\s\S]*^export TOKEN="tok-3141592"$[\s\S]*^test -n "\$TOKEN"$/m);
  });
});

test('several workers given the same address never crash the run; $SPREAD_WORKER in path gives each its own', { skip }, async () => {
  const tasks = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`tests/t${i}/task.yaml`, 'summary: t\nexecute: |\n    echo "$SPREAD_PATH" >> /tmp/paths\n    sleep 0.3\n']));
  const one = adhocPool([targets[0]!, targets[0]!]);
  await withProject({
    'spread.yaml': `project: shared\npath: /home/run-$SPREAD_WORKER\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2')}suites:\n    tests/:\n        summary: tests\n`,
    ...tasks,
  }, async (dir) => {
    await targets[0]!.run('rm -rf /home/run-* /tmp/paths');
    const r = await runSpread([`-pass=${PASS}`], dir, one.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Successful tasks: 4/);
    assert.deepEqual([...new Set((await targets[0]!.run('cat /tmp/paths')).trim().split('\n'))].sort(), ['/home/run-1', '/home/run-2']);
    assert.deepEqual(one.discarded(), [targets[0]!.address, targets[0]!.address]);
  }, one);
  const same = adhocPool([targets[0]!, targets[0]!]);
  await withProject({
    'spread.yaml': `project: shared\npath: /home/run\nbackends:\n${adhocBackend('adhoc', '- ubuntu-16.04:\n    workers: 2')}suites:\n    tests/:\n        summary: tests\n`,
    ...tasks,
  }, async (dir) => {
    const r = await runSpread([`-pass=${PASS}`], dir, same.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Discarding adhoc:ubuntu-16.04, cannot send project content: remote directory \/home\/run on .* is not empty/);
    assert.match(r.stdout, /Successful tasks: 4/, 'the first worker ran everything');
  }, same);
});
