/**
 * Multi-machine tasks (`instances:`) on real sshd targets through the adhoc
 * backend: three machines gathered for one job, the sync helpers over the
 * machines' own SSH connections (leader and followers, topics), a barrier
 * that times out, an instance failing while the others wait, too few
 * machines at run time, -reuse, and Ctrl-C once and twice with a group
 * running. Every test checks that no machine leaked: each one is discarded
 * or recorded for -reuse.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, runSpread, SPREAD_BIN, stripTime } from '../helpers/fixture.js';
import { Redis } from 'ioredis';
import { redisSkip, startRedis } from '../helpers/redis.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip();
const PASS = 'group-pw';
let targets: SshdTarget[] = [];

before(async () => {
  if (skip) return;
  targets = await Promise.all(['127.0.0.31', '127.0.0.32', '127.0.0.33'].map((host) => startSshd({ host, rootPassword: PASS })));
});
after(async () => {
  await Promise.all(targets.map((t) => t.stop()));
});

const note = (what: string) => `echo "${what}" >> /tmp/grp-log`;

const spreadYaml = (workers = 3) => `project: groups
path: /home/grp
prepare: ${note('project prepare')}
restore: ${note('project restore')}
backends:
${adhocBackend('adhoc', `- ubuntu-16.04:\n    workers: ${workers}`)}suites:
    tests/:
        summary: tests
        prepare: ${note('suite prepare')}
        restore: ${note('suite restore')}
`;

async function withProject(files: Record<string, string>, use: (dir: string, pool: AdhocPool) => Promise<void>, machines = targets): Promise<void> {
  const dir = makeProject(files);
  const pool = adhocPool(machines);
  await Promise.all(targets.map((t) => t.run('rm -rf /home/grp /tmp/grp-*')));
  try {
    await use(dir, pool);
  } finally {
    removeProject(dir);
    pool.remove();
  }
}

const logOf = async (t: SshdTarget): Promise<string[]> => (await t.run('cat /tmp/grp-log 2>/dev/null || true')).trim().split('\n').filter(Boolean);
const allLogs = async (): Promise<string[][]> => Promise.all(targets.map(logOf));
const sorted = (xs: readonly string[]): string[] => [...xs].sort();

test('leader and followers: 3 instances, the leader (sequence 1) waits for the followers\' ready, then releases them', { skip }, async () => {
  const leaderFollower = `summary: leader and followers
instances: 3
environment:
    NAME: node-$SPREAD_INSTANCE
prepare: ${note('task prepare $SPREAD_INSTANCE')}
execute: |
    ${note('instance $SPREAD_INSTANCE of $SPREAD_INSTANCES as $NAME role=[$SPREAD_ROLE] peers $SPREAD_INSTANCE_ADDRESSES')}
    seq=$(SIGNAL enrolled)
    if [ "$seq" = 1 ]; then
        BARRIER ready $((SPREAD_INSTANCES - 1)) 60s
        ${note('leader saw ready at $(date +%s%N)')}
        READ joined 2 60s | sort > /tmp/grp-joined
        PUBLISH orders go
        ${note('leader releases at $(date +%s%N)')}
        SIGNAL released
    else
        PUBLISH joined "$NAME"
        ${note('follower ready at $(date +%s%N)')}
        SIGNAL ready
        BARRIER released 1 60s
        ${note('follower released at $(date +%s%N) with $(READ orders 1)')}
    fi
restore: ${note('task restore $SPREAD_INSTANCE')}
`;
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/cluster/task.yaml': leaderFollower,
    'tests/plain/task.yaml': `summary: an ordinary task beside it\nexecute: ${note('plain')}\n`,
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-v'], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 0, out);
    assert.match(out, /Successful tasks: 2\nAborted tasks: 0\n/);
    for (const k of [1, 2, 3]) assert.match(out, new RegExp(`Executing adhoc:ubuntu-16.04:tests/cluster instance ${k}/3 \\(127\\.0\\.0\\.3\\d:\\d+\\)`));

    const logs = await allLogs();
    const all = logs.flat();
    // Each machine did its own nesting once, and its own part of the task.
    for (const log of logs) {
      assert.equal(log.filter((l) => l === 'project prepare').length, 1, log.join('\n'));
      assert.equal(log.at(-1), 'project restore');
      assert.equal(log.filter((l) => l.startsWith('instance ')).length, 1, 'one instance per machine');
    }
    const hosts = sorted(targets.map((t) => t.host)).join(' ');
    const instances = all.filter((l) => l.startsWith('instance '));
    assert.deepEqual(sorted(instances.map((l) => / as (\S+)/.exec(l)![1]!)), ['node-1', 'node-2', 'node-3']);
    for (const l of instances) {
      assert.match(l, /of 3 as node-\d role=\[\] peers /);
      assert.equal(sorted(l.split(' peers ')[1]!.split(' ')).join(' '), hosts, 'every instance knows every address');
    }
    assert.deepEqual(sorted(all.filter((l) => l.startsWith('task restore'))), ['task restore 1', 'task restore 2', 'task restore 3']);

    const at = (re: RegExp) => all.filter((l) => re.test(l)).map((l) => BigInt(/at (\d+)/.exec(l)![1]!));
    const [sawReady] = at(/^leader saw ready/);
    const [release] = at(/^leader releases/);
    const ready = at(/^follower ready/);
    const released = at(/^follower released/);
    assert.equal(ready.length, 2);
    assert.equal(released.length, 2);
    for (const t of ready) assert.ok(t <= sawReady!, 'the leader went on only after both followers were ready');
    for (const t of released) assert.ok(t >= release!, 'the followers went on only after the leader released them');
    assert.equal(all.filter((l) => / with go$/.test(l)).length, 2, 'both followers read the leader\'s message');
    const joined = (await Promise.all(targets.map((t) => t.run('cat /tmp/grp-joined 2>/dev/null || true')))).join('').trim();
    assert.equal(joined.split('\n').length, 2, 'the leader read both followers\' messages');
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)), 'every machine was discarded');
  });
});

test('-repeat runs the group again with fresh states: sequence numbers start from 1 each round', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/again/task.yaml': `summary: twice\ninstances: 3\nexecute: |\n    echo "seq $(SIGNAL arrived)" >> /tmp/grp-log\n    SIGNAL_AND_WAIT left 60s > /dev/null\n`,
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`, '-repeat=1'], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Successful tasks: 2\n/, 'one success per round');
    const seqs = (await allLogs()).flat().filter((l) => l.startsWith('seq '));
    assert.deepEqual(sorted(seqs), ['seq 1', 'seq 1', 'seq 2', 'seq 2', 'seq 3', 'seq 3']);
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('a barrier that times out ($SPREAD_SYNC_TIMEOUT) fails the job with a clear message; the others\' waits end at once', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/late/task.yaml': `summary: a barrier nobody reaches
instances: 3
kill-timeout: 10m
environment:
    SPREAD_SYNC_TIMEOUT: 1s
execute: |
    if [ "$SPREAD_INSTANCE" = 1 ]; then
        BARRIER never 3
    else
        BARRIER forever 3 10m
    fi
restore: ${note('task restore $SPREAD_INSTANCE')}
`,
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1, out);
    assert.match(out, /Error executing adhoc:ubuntu-16\.04:tests\/late instance 1\/3 \(127\.0\.0\.3\d:\d+\) : BARRIER never 3: timed out after 1s waiting for 3 instances in state never \(0 so far\)\n/);
    for (const k of [2, 3]) {
      assert.match(out, new RegExp(`Error executing adhoc:ubuntu-16\\.04:tests/late instance ${k}/3 \\(.*\\) : BARRIER forever 3 10m: instance 1 \\(127\\.0\\.0\\.3\\d:\\d+\\) failed executing\\n`));
    }
    assert.match(out, /Successful tasks: 0\nAborted tasks: 0\nFailed tasks: 1\n {4}- adhoc:ubuntu-16\.04:tests\/late\n/);
    assert.deepEqual(sorted((await allLogs()).flat().filter((l) => l.startsWith('task restore'))), ['task restore 1', 'task restore 2', 'task restore 3'], 'every instance restored');
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('an instance that fails while the others wait: their waits end at once; the passing instance\'s output is shown', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/crash/task.yaml': `summary: the second instance dies
instances: 3
kill-timeout: 10m
execute: |
    case $SPREAD_INSTANCE in
    1) BARRIER all-done 3 10m ;;
    2) SIGNAL started; echo "instance 2 gives up"; exit 7 ;;
    3) echo "instance 3 did its part" ;;
    esac
restore: ${note('task restore $SPREAD_INSTANCE')}
`,
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1, out);
    assert.match(out, /Error executing adhoc:ubuntu-16\.04:tests\/crash instance 2\/3 \(.*\) : \n-----\n[\s\S]*instance 2 gives up\n\+ exit 7\n-----/);
    assert.match(out, /Error executing adhoc:ubuntu-16\.04:tests\/crash instance 1\/3 \(.*\) : BARRIER all-done 3 10m: instance 2 \(127\.0\.0\.3\d:\d+\) failed executing\n/);
    assert.match(out, /Output of adhoc:ubuntu-16\.04:tests\/crash instance 3\/3 \(.*\), which passed:\n-----\n[\s\S]*instance 3 did its part\n-----/);
    assert.match(out, /Failed tasks: 1\n {4}- adhoc:ubuntu-16\.04:tests\/crash\n/);
    assert.doesNotMatch(out, /Failed tasks: [^1]/);
    assert.deepEqual(sorted((await allLogs()).flat().filter((l) => l.startsWith('task restore'))), ['task restore 1', 'task restore 2', 'task restore 3']);
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('fewer machines than instances at run time: the job is aborted, never waited for', { skip }, async () => {
  // Three workers, two machines: the third worker cannot get one of its own.
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/trio/task.yaml': 'summary: needs three\ninstances: 3\nexecute: "true"\n',
  }, async (dir, pool) => {
    const r = await runSpread([`-pass=${PASS}`], dir, { ...pool.env, SPREAD_DIAL_TIMEOUT: '3s' });
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1, out);
    assert.match(out, /Not starting adhoc:ubuntu-16\.04:tests\/trio on 3 machines: only [012] workers? of adhoc:ubuntu-16\.04 (left )?to run it\./);
    assert.match(out, /Successful tasks: 0\nAborted tasks: 1\n/);
    assert.doesNotMatch(out, /Executing/);
    const discarded = pool.discarded();
    assert.ok(discarded.length >= 2 && discarded.every((a) => a === targets[0]!.address || a === targets[1]!.address), discarded.join(' '));
  }, targets.slice(0, 2));
});

const reuseEntries = (file: string): string[] => {
  const doc = (parse(readFileSync(file, 'utf8')) ?? {}) as { backends?: Record<string, { systems: Record<string, { address: string }>[] }> };
  return Object.values(doc.backends ?? {}).flatMap((b) => b.systems.flatMap((s) => Object.values(s).map((e) => e.address)));
};

test('-reuse: the group\'s machines are restored and kept, reused by the next run, then discarded', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/trio/task.yaml': `summary: three at once\ninstances: 3\nexecute: SIGNAL_AND_WAIT up 60s\nrestore: ${note('task restore $SPREAD_INSTANCE')}\n`,
  }, async (dir, pool) => {
    const first = await runSpread([`-pass=${PASS}`, '-reuse'], dir, pool.env);
    assert.equal(first.code, 0, first.stdout);
    assert.equal(stripTime(first.stdout).match(/^Keeping adhoc:ubuntu-16\.04 /gm)?.length, 3);
    assert.deepEqual(sorted(reuseEntries(join(dir, '.spread-reuse.yaml'))), sorted(targets.map((t) => t.address)));
    assert.deepEqual(pool.discarded(), []);
    for (const log of await allLogs()) assert.deepEqual(log.slice(-3), [log.find((l) => l.startsWith('task restore'))!, 'suite restore', 'project restore'], 'restored before being kept');

    const second = await runSpread([`-pass=${PASS}`, '-reuse'], dir, pool.env);
    assert.equal(second.code, 0, second.stdout);
    assert.equal(second.stdout.match(/Reusing adhoc:ubuntu-16\.04\.\.\./g)?.length, 3);
    assert.doesNotMatch(second.stdout, /Allocating/);
    assert.match(second.stdout, /Successful tasks: 1\n/);

    const discard = await runSpread([`-pass=${PASS}`, '-discard'], dir, pool.env);
    assert.equal(discard.code, 0, discard.stdout);
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
    assert.deepEqual(reuseEntries(join(dir, '.spread-reuse.yaml')), []);
  });
});

/** Spread as a child process, for signals. */
function start(dir: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const child = spawn(process.execPath, [SPREAD_BIN, `-pass=${PASS}`, ...args], { cwd: dir, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, done, output: () => out };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const allStarted = async (): Promise<boolean> =>
  (await Promise.all(targets.map((t) => t.run('test -e /tmp/grp-started && echo y || true')))).every((s) => s.trim() === 'y');

test('Ctrl-C once with a group running: it finishes and restores, the next group is not started, every machine discarded', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/first/task.yaml': `summary: runs\ninstances: 3\npriority: 10\nexecute: |\n    touch /tmp/grp-started\n    until [ -e /tmp/grp-go ]; do sleep 0.05; done\n    SIGNAL_AND_WAIT finished 60s\nrestore: ${note('first restore')}\n`,
    'tests/second/task.yaml': `summary: never starts\ninstances: 3\nexecute: ${note('second ran')}\n`,
  }, async (dir, pool) => {
    const run = start(dir, pool.env);
    await until(allStarted, 'the three instances to start');
    run.child.kill('SIGINT');
    await until(() => /Interrupted: finishing running jobs/.test(run.output()), 'the interrupt to be seen');
    await Promise.all(targets.map((t) => t.run('touch /tmp/grp-go')));
    const code = await run.done;
    const out = stripTime(run.output());
    assert.equal(code, 1, out);
    assert.match(out, /Successful tasks: 1\nAborted tasks: 1\n/);
    const all = (await allLogs()).flat();
    assert.equal(all.filter((l) => l === 'first restore').length, 3);
    assert.equal(all.filter((l) => l === 'project restore').length, 3);
    assert.ok(!all.includes('second ran'));
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('Ctrl-C twice with a group waiting on a barrier: its scripts are killed at once, every machine discarded', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/stuck/task.yaml': `summary: waits\ninstances: 3\nkill-timeout: 10m\nexecute: |\n    touch /tmp/grp-started\n    BARRIER nobody 4 10m\nrestore: ${note('stuck restore')}\n`,
  }, async (dir, pool) => {
    const run = start(dir, pool.env);
    await until(allStarted, 'the three instances to start');
    run.child.kill('SIGINT');
    await until(() => /Interrupted: finishing running jobs/.test(run.output()), 'the first interrupt to be seen');
    run.child.kill('SIGINT');
    const code = await run.done;
    const out = stripTime(run.output());
    assert.equal(code, 1, out);
    assert.match(out, /<interrupted>/);
    assert.match(out, /Failed tasks: 1\n {4}- adhoc:ubuntu-16\.04:tests\/stuck\n/);
    for (const k of [1, 2, 3]) assert.match(out, new RegExp(`Error executing adhoc:ubuntu-16\\.04:tests/stuck instance ${k}/3 \\(`));
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('Ctrl-C while a group gathers machines: it is called off and counted as aborted; the busy machine finishes its job', { skip }, async () => {
  await withProject({
    'spread.yaml': spreadYaml(),
    'tests/busy/task.yaml': `summary: holds one machine\npriority: 10\nexecute: |\n    touch /tmp/grp-busy\n    until [ -e /tmp/grp-go ]; do sleep 0.05; done\nrestore: ${note('busy restore')}\n`,
    'tests/trio/task.yaml': `summary: needs all three\ninstances: 3\nexecute: ${note('trio ran')}\n`,
  }, async (dir, pool) => {
    const run = start(dir, pool.env, ['-v']);
    await until(() => /Gathering 3 machines of adhoc:ubuntu-16\.04 for adhoc:ubuntu-16\.04:tests\/trio\.\.\./.test(run.output()), 'the group to gather');
    await until(async () => (await Promise.all(targets.map((t) => t.run('test -e /tmp/grp-busy && echo y || true')))).some((s) => s.trim() === 'y'), 'the busy task to start');
    run.child.kill('SIGINT');
    await until(() => /Not starting/.test(run.output()), 'the group to be called off');
    await Promise.all(targets.map((t) => t.run('touch /tmp/grp-go')));
    const code = await run.done;
    const out = stripTime(run.output());
    assert.equal(code, 1, out);
    assert.match(out, /Not starting adhoc:ubuntu-16\.04:tests\/trio on 3 machines: the run was interrupted\.\n/);
    assert.match(out, /Successful tasks: 1\nAborted tasks: 1\n/);
    const all = (await allLogs()).flat();
    assert.ok(!all.includes('trio ran'));
    assert.equal(all.filter((l) => l === 'busy restore').length, 1);
    assert.equal(all.filter((l) => l === 'project prepare').length, 1, 'the gathering machines prepared nothing');
    assert.equal(all.filter((l) => l === 'project restore').length, 1, 'the busy machine restored what it prepared');
    assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
  });
});

test('a machine whose sshd refuses forwarding: a clear error, and the other instance does not hang', { skip }, async () => {
  const closed = await startSshd({ host: '127.0.0.34', rootPassword: PASS, noForwarding: true });
  try {
    await withProject({
      'spread.yaml': spreadYaml(2),
      'tests/pair/task.yaml': 'summary: two\ninstances: 2\nkill-timeout: 10m\nexecute: SIGNAL_AND_WAIT both 10m\n',
    }, async (dir, pool) => {
      const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
      const out = stripTime(r.stdout);
      assert.equal(r.code, 1, out);
      assert.match(out, /Error executing adhoc:ubuntu-16\.04:tests\/pair instance \d\/2 \(127\.0\.0\.34:\d+\) : cannot forward a port on 127\.0\.0\.34:\d+ back to spread: .* \(sshd must allow it: AllowTcpForwarding yes\)\n/);
      assert.match(out, /Error executing adhoc:ubuntu-16\.04:tests\/pair instance \d\/2 \(127\.0\.0\.31:\d+\) : SIGNAL_AND_WAIT both 10m: instance \d \(127\.0\.0\.34:\d+\) failed executing\n/);
      assert.match(out, /Failed tasks: 1\n/);
      assert.deepEqual(sorted(pool.discarded()), sorted([closed.address, targets[0]!.address]));
    }, [closed, targets[0]!]);
  } finally {
    await closed.stop();
  }
});

test('REBOOT in one instance: its helpers reach spread again over the new connection, the group\'s states survive', { skip }, async () => {
  const rebootable = await startSshd({ host: '127.0.0.35', rootPassword: PASS, rebootable: true });
  try {
    await withProject({
      'spread.yaml': spreadYaml(2),
      'tests/pair/task.yaml': `summary: one instance reboots
instances: 2
execute: |
    # Which instance lands on the rebootable machine depends on allocation order: it is the one that reboots.
    if [ -e /root/can-reboot ]; then
        if [ "$SPREAD_REBOOT" = 0 ]; then
            SIGNAL before-reboot > /dev/null
            REBOOT
        fi
        # The connection (and so the forward) before the reboot is gone: this works only over the new one.
        SIGNAL_AND_WAIT after-reboot 60s
    else
        BARRIER before-reboot 1 60s
        SIGNAL_AND_WAIT after-reboot 60s
    fi
`,
    }, async (dir, pool) => {
      await rebootable.run('rm -rf /home/grp; touch /root/can-reboot');
      const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
      const out = stripTime(r.stdout);
      assert.equal(r.code, 0, out);
      assert.match(out, /Rebooting on 127\.0\.0\.35:\d+ \(adhoc:ubuntu-16\.04:tests\/pair instance [12]\/2\) as requested/);
      assert.match(out, /Successful tasks: 1\n/);
      assert.deepEqual(sorted(pool.discarded()), sorted([rebootable.address, targets[0]!.address]));
    }, [rebootable, targets[0]!]);
  } finally {
    await rebootable.stop();
  }
});

test('in a shared run (-queue=redis://...) the groups\' states and topics live in Redis; a failing instance still ends the others\' waits', { skip: skip || redisSkip() }, async () => {
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await withProject({
      'spread.yaml': spreadYaml(),
      'tests/ok/task.yaml': `summary: in step through Redis
instances: 3
priority: 10
execute: |
    seq=$(SIGNAL enrolled)
    if [ "$seq" = 1 ]; then PUBLISH orders go; fi
    SIGNAL_AND_WAIT ready 60s > /dev/null
    READ orders 1 60s | MATCH '^go$'
`,
      'tests/crash/task.yaml': `summary: one fails\ninstances: 3\nkill-timeout: 10m\nexecute: |\n    if [ "$SPREAD_INSTANCE" = 3 ]; then exit 3; fi\n    BARRIER never 3 10m\n`,
    }, async (dir, pool) => {
      const run = `groups-${process.pid}`;
      const r = await runSpread([`-pass=${PASS}`, `-queue=${redis.url}/2/${run}`], dir, pool.env);
      const out = stripTime(r.stdout);
      assert.equal(r.code, 1, out + r.stderr);
      assert.match(out, /Successful tasks: 1\nAborted tasks: 0\nFailed tasks: 1\n {4}- adhoc:ubuntu-16\.04:tests\/crash\n/);
      for (const k of [1, 2]) {
        assert.match(out, new RegExp(`Error executing adhoc:ubuntu-16\\.04:tests/crash instance ${k}/3 \\(.*\\) : BARRIER never 3 10m: instance 3 \\(127\\.0\\.0\\.3\\d:\\d+\\) failed executing\\n`));
      }
      await client.connect();
      await client.select(2);
      const keys = (await client.keys(`spread:{${run}}:*`)).sort();
      assert.ok(keys.some((k) => /:state:adhoc:ubuntu-16\.04:tests\/ok\/\w+\/1\/s\/enrolled$/.test(k)), keys.join('\n'));
      assert.ok(keys.some((k) => /topic:.*tests\/ok\/\w+\/1\/t\/orders$/.test(k)), keys.join('\n'));
      assert.ok(keys.some((k) => /topic:.*tests\/crash\/\w+\/1\/x\/failed$/.test(k)), 'the failure is kept in Redis too');
      assert.deepEqual(sorted(pool.discarded()), sorted(targets.map((t) => t.address)));
    });
  } finally {
    client.disconnect();
    await redis.stop();
  }
});
