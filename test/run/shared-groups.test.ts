/**
 * Multi-machine jobs whose instances span the runners of a shared run
 * (-queue): real `spread` processes as runners, each with its own pool of
 * test sshd machines (runner A has one machine of the system, runner B two,
 * so a group of three can only form across them), one real redis-server.
 * The instances see every address and get their sequence numbers across
 * runners; the job is recorded once; a failing instance on one runner ends
 * the other runner's waits at once; a runner killed mid-group loses its part
 * and the job runs again once; a gathering is called off when the runners
 * that could fill it leave.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseQueueUrl } from '../../src/store/queue-url.js';
import { connectRedisRun } from '../../src/store/redis.js';
import type { RunRecordStored } from '../../src/store/store.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { poolBackend, startPoolRunner } from '../helpers/pool-runner.js';
import type { PoolRunner } from '../helpers/pool-runner.js';
import { redisSkip, startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip() || redisSkip();
const PASS = 'shared-groups-pw';
let redis: RedisServer | undefined;
/** [A's machine, B's two, C's]. */
let targets: SshdTarget[] = [];

before(async () => {
  if (skip) return;
  [redis, ...targets] = await Promise.all([startRedis(), ...[51, 52, 53, 54].map((n) => startSshd({ host: `127.0.0.${n}`, rootPassword: PASS }))]);
});
after(async () => {
  await Promise.all([redis?.stop(), ...targets.map((t) => t.stop())]);
});

const note = (what: string) => `echo "${what}" >> /tmp/sg-log`;

/**
 * The project: `hold` tasks (priority 10) that wait until the test lets
 * their machine go ($GATE/go-<its address>), so that the first runner is in
 * the run before the second one gathers; then the multi-machine tasks.
 */
const project = (gate: string, tasks: Record<string, string>, holds = 1) => ({
  'spread.yaml': `project: shared-groups
path: /home/sg
environment:
    GATE: ${gate}
prepare: ${note('project prepare')}
restore: |
    ${note('project restore')}
    rm -rf /home/sg
backends:
${poolBackend('adhoc', '- ubuntu-16.04:\n    workers: 3')}suites:
    tests/:
        summary: tests
`,
  ...Object.fromEntries(Array.from({ length: holds }, (_, i) => [`tests/hold${i + 1}/task.yaml`, `summary: holds its machine until the test lets it go
priority: 10
execute: |
    set -- $SSH_CONNECTION
    for i in $(seq 1200); do [ -e "$GATE/go-$3" ] && break; sleep 0.05; done
    test -e "$GATE/go-$3"
`])),
  ...tasks,
});

const startRunner = (dir: string, args: readonly string[], machines: readonly SshdTarget[]): PoolRunner =>
  startPoolRunner(dir, [`-pass=${PASS}`, '-v', ...args], machines);

const newRun = () => `-queue=${redis!.url}/4/sg-${randomBytes(4).toString('hex')}?lease=1s`;
const readRun = async (queue: string): Promise<RunRecordStored> => {
  const run = await connectRedisRun(parseQueueUrl(queue.slice('-queue='.length)));
  try {
    return await run.waitForEnd(new AbortController().signal);
  } finally {
    await run.close();
  }
};

async function until(cond: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh project and gate directory; every runner started is killed and its pool removed at the end. */
async function withRun(tasks: Record<string, string>, holds: number, use: (o: { dir: string; gate: string; queue: string; runners: PoolRunner[] }) => Promise<void>): Promise<void> {
  const gate = mkdtempSync('/var/tmp/spread-sg-gate-');
  const dir = makeProject(project(gate, tasks, holds));
  const runners: PoolRunner[] = [];
  await Promise.all(targets.map((t) => t.run('rm -rf /home/sg /tmp/sg-*')));
  try {
    await use({ dir, gate, queue: newRun(), runners });
  } finally {
    for (const r of runners) {
      r.child.kill('SIGKILL');
      await r.exited;
      r.pool.remove();
    }
    removeProject(dir);
    rmSync(gate, { recursive: true, force: true });
  }
}

const logOf = async (t: SshdTarget): Promise<string[]> => (await t.run('cat /tmp/sg-log 2>/dev/null || true')).trim().split('\n').filter(Boolean);
const sorted = (xs: readonly string[]): string[] => [...xs].sort();
const go = (gate: string, t: SshdTarget) => writeFileSync(join(gate, `go-${t.host}`), '');
const JOB = 'adhoc:ubuntu-16.04:tests';

/**
 * Runner A (one machine) and runner B (two): the other one starts first and
 * holds its machines with hold tasks (one per machine: the project needs as
 * many), so the owner, started next, claims the multi-machine job and
 * gathers; the first one's machines join once the test lets their holds end.
 */
async function spanTwoRunners(o: { dir: string; gate: string; queue: string; runners: PoolRunner[] }, owner: 'A' | 'B' = 'B'): Promise<[PoolRunner, PoolRunner]> {
  const machines = { A: targets.slice(0, 1), B: targets.slice(1, 3) };
  const holder = owner === 'B' ? 'A' : 'B';
  const first = startRunner(o.dir, [o.queue], machines[holder]);
  o.runners.push(first);
  await first.waitFor(new RegExp(`(Executing ${JOB}/hold\\d \\([^]*){${machines[holder].length}}`));
  const second = startRunner(o.dir, [o.queue], machines[owner]);
  o.runners.push(second);
  await second.waitFor(/Gathering 3 machines of adhoc:ubuntu-16\.04 for \S+ in the shared run\.\.\./);
  for (const t of machines[holder]) go(o.gate, t);
  return owner === 'B' ? [first, second] : [second, first];
}

const LEADER = `summary: leader and followers across runners
instances: {first: 1, other: 2}
execute: |
    ${note('instance $SPREAD_INSTANCE of $SPREAD_INSTANCES role $SPREAD_ROLE peers $SPREAD_INSTANCE_ADDRESSES')}
    seq=$(SIGNAL enrolled)
    ${note('seq $seq')}
    if [ "$seq" = 1 ]; then
        BARRIER ready $((SPREAD_INSTANCES - 1)) 60s
        ${note('leader saw ready at $(date +%s%N)')}
        READ joined 2 60s | sort > /tmp/sg-joined
        PUBLISH orders go
        ${note('leader releases at $(date +%s%N)')}
        SIGNAL released
    else
        PUBLISH joined "follower-$SPREAD_INSTANCE"
        ${note('follower ready at $(date +%s%N)')}
        SIGNAL ready
        BARRIER released 1 60s
        ${note('follower released at $(date +%s%N) with $(READ orders 1 60s)')}
    fi
restore: ${note('leader restore $SPREAD_INSTANCE')}
`;

const CRASH = `summary: the instance on runner A's machine fails while the others wait
instances: 3
kill-timeout: 10m
execute: |
    set -- $SSH_CONNECTION
    if [ "$3" = 127.0.0.51 ]; then
        SIGNAL started
        echo "runner A's instance gives up"
        exit 3
    fi
    BARRIER never 3 10m
restore: ${note('crash restore $SPREAD_INSTANCE')}
`;

test('a group of 3 across 2 runners: every instance sees every address, sequence numbers across runners, one result in the merged summary; a failure on one runner ends the other\'s waits at once', { skip }, async () => {
  await withRun({ 'tests/leader/task.yaml': LEADER, 'tests/crash/task.yaml': CRASH }, 1, async (o) => {
    const [a, b] = await spanTwoRunners(o);
    await Promise.all([a.exited, b.exited]);
    const [outA, outB] = [stripTime(a.out()), stripTime(b.out())];
    const both = `${outA}\n=====\n${outB}`;

    // Each runner's log shows its own instances' parts, and only those.
    const parts = (out: string, task: string) => [...out.matchAll(new RegExp(`Executing ${JOB}/${task} instance (\\d)/3 \\((127\\.0\\.0\\.5\\d):`, 'g'))].map((m) => [m[1]!, m[2]!]);
    for (const task of ['leader', 'crash']) {
      assert.deepEqual(parts(outA, task).map(([, host]) => host), ['127.0.0.51'], both);
      assert.deepEqual(sorted(parts(outB, task).map(([, host]) => host)), ['127.0.0.52', '127.0.0.53'], both);
      assert.deepEqual(sorted([...parts(outA, task), ...parts(outB, task)].map(([k]) => k)), ['1', '2', '3'], both);
    }

    const logs = await Promise.all(targets.slice(0, 3).map(logOf));
    const all = logs.flat();
    const hosts = targets.slice(0, 3).map((t) => t.host).join(' ');
    const seen = all.filter((l) => l.startsWith('instance '));
    assert.equal(seen.length, 3, `${all.join('\n')}\n${both}`);
    for (const l of seen) assert.equal(sorted(l.split(' peers ')[1]!.split(' ')).join(' '), hosts, `every instance knows every address: ${l}`);
    assert.deepEqual(sorted(seen.map((l) => / (\d) of 3 role (\w+) /.exec(l)!.slice(1).join(' '))), ['1 first', '2 other', '3 other'], 'roles by instance number');
    assert.deepEqual(sorted(all.filter((l) => l.startsWith('seq '))), ['seq 1', 'seq 2', 'seq 3'], 'one sequence across the runners');
    const at = (re: RegExp) => all.filter((l) => re.test(l)).map((l) => BigInt(/at (\d+)/.exec(l)![1]!));
    const [sawReady] = at(/^leader saw ready/);
    const [release] = at(/^leader releases/);
    for (const t of at(/^follower ready/)) assert.ok(t <= sawReady!, 'the leader went on only after both followers were ready');
    for (const t of at(/^follower released/)) assert.ok(t >= release!, 'the followers went on only after the leader released them');
    assert.equal(all.filter((l) => / with go$/.test(l)).length, 2, 'both followers read the leader\'s message');
    for (const log of logs) {
      assert.equal(log.filter((l) => l === 'project prepare').length, 1, `each machine prepared once, as for any job:\n${both}`);
      assert.ok(log.some((l) => l.startsWith('leader restore')) && log.some((l) => l.startsWith('crash restore')), `every instance restored:\n${both}`);
    }

    // The failing instance on runner A ended the waits of runner B's instances at once (their barrier waits 10 minutes).
    assert.match(outA, new RegExp(`Error executing ${JOB}/crash instance \\d/3 \\(127\\.0\\.0\\.51:\\d+\\) : \\n-----\\n[\\s\\S]*runner A's instance gives up\\n\\+ exit 3\\n-----`));
    const waits = [...outB.matchAll(new RegExp(`Error executing ${JOB}/crash instance \\d/3 \\(127\\.0\\.0\\.5[23]:\\d+\\) : BARRIER never 3 10m: instance \\d \\(127\\.0\\.0\\.51:\\d+\\) failed executing\\n`, 'g'))];
    assert.equal(waits.length, 2, outB);

    // Recorded once, by the runner that took each job; the merged summary shows each job once, with every instance's failure.
    const stored = await readRun(o.queue);
    for (const name of [`${JOB}/leader`, `${JOB}/crash`]) {
      const i = stored.jobs.indexOf(name);
      assert.equal(stored.entries.filter((e) => e.kind === 'end' && e.job === i).length, 1, name);
      assert.equal(stored.entries.filter((e) => e.kind === 'start' && e.job === i).length, 1, name);
    }
    const merged = await runSpread([o.queue, '-summary'], o.dir);
    const summary = stripTime(merged.stdout);
    assert.equal(merged.code, 1, summary);
    assert.match(summary, /Merged summary of the shared run .*: 3 jobs, 2 runners, 6 workers\./);
    assert.match(summary, new RegExp(`Successful tasks: 2\\nAborted tasks: 0\\nFailed tasks: 1\\n {4}- ${JOB}/crash\\n`));
    assert.match(summary, new RegExp(`Error executing ${JOB}/crash instance \\d/3 \\(127\\.0\\.0\\.51:\\d+\\) :`), 'runner A\'s part is in the run\'s record');
    assert.equal(summary.match(new RegExp(`Error executing ${JOB}/crash instance \\d/3 \\(127\\.0\\.0\\.5[23]:\\d+\\) : BARRIER never 3 10m`, 'g'))?.length, 2, summary);
    assert.deepEqual(a.pool.discarded(), [targets[0]!.address], `A discarded its machine, once:\n${both}`);
    assert.deepEqual(sorted(b.pool.discarded().filter((x, i, all) => all.indexOf(x) === i)), sorted([targets[1]!.address, targets[2]!.address]));
  });
});

const RETRIED = `summary: waits on the first attempt, passes on the second
instances: 3
kill-timeout: 10m
execute: |
    if [ -e "$GATE/killed" ]; then
        SIGNAL_AND_WAIT second 60s
        ${note('second attempt $SPREAD_INSTANCE')}
        exit 0
    fi
    set -- $SSH_CONNECTION
    touch "$GATE/started-$3"
    BARRIER never 4 10m
restore: ${note('cluster restore')}
`;

for (const victim of ['follower', 'owner'] as const) {
  test(`SIGKILL of the ${victim === 'owner' ? 'runner that took the job' : 'runner of one instance'} mid-group: the other runner's waits end with a clear error, and the job runs again once`, { skip }, async () => {
    // Runner A (one machine) is killed: it is the owner, or the runner of the third instance.
    await withRun({ 'tests/cluster/task.yaml': RETRIED }, victim === 'owner' ? 2 : 1, async (o) => {
      const [a, b] = await spanTwoRunners(o, victim === 'owner' ? 'A' : 'B');
      // Runner C (one machine) joins the run and waits for work: the job's retry will need it.
      const c = startRunner(o.dir, [o.queue], targets.slice(3, 4));
      o.runners.push(c);
      await c.waitFor(/Joined the shared run/);
      await until(async () => ['51', '52', '53'].every((n) => existsSync(join(o.gate, `started-127.0.0.${n}`))), 'the three instances to start');
      a.child.kill('SIGKILL');
      writeFileSync(join(o.gate, 'killed'), '');
      assert.deepEqual(await Promise.all([b.exited, c.exited]), [0, 0], 'the retry passed; the lost attempt is not a failure of theirs');
      const outB = stripTime(b.out());
      const all = `${outB}\n=====\n${stripTime(c.out())}`;
      assert.equal((outB.match(new RegExp(`Error executing ${JOB}/cluster instance \\d/3 \\(127\\.0\\.0\\.5[23]:\\d+\\) : BARRIER never 4 10m: instance \\d \\(127\\.0\\.0\\.51:\\d+\\) was lost with its runner \\S+\\n`, 'g')) ?? []).length, 2, all);
      assert.match(all, new RegExp(`Running ${JOB}/cluster again: its runner \\S+ was lost\\.`));
      const second = (await Promise.all(targets.slice(1, 4).map(logOf))).flat().filter((l) => l.startsWith('second attempt'));
      assert.deepEqual(sorted(second), ['second attempt 1', 'second attempt 2', 'second attempt 3'], 'the retry ran on B\'s and C\'s machines');

      const merged = await runSpread([o.queue, '-summary'], o.dir);
      const summary = stripTime(merged.stdout);
      assert.equal(merged.code, 0, summary);
      assert.match(summary, new RegExp(`Successful tasks: ${victim === 'owner' ? 3 : 2}\\nAborted tasks: 0\\n`));
      assert.match(summary, new RegExp(`Retried after a lost runner: 1\\n {4}- ${JOB}/cluster\\n`));
      const stored = await readRun(o.queue);
      const i = stored.jobs.indexOf(`${JOB}/cluster`);
      assert.equal(stored.entries.filter((e) => e.kind === 'end' && e.job === i).length, 1, 'the lost attempt left no result');
      assert.equal(stored.entries.filter((e) => e.kind === 'retry' && e.job === i).length, 1);
      await targets[0]!.run('rm -rf /home/sg');
    });
  });
}

test('a gathering is called off when the runners that could fill it leave; a stopped runner gives up its seat', { skip }, async () => {
  await withRun({ 'tests/trio/task.yaml': `summary: needs three\ninstances: 3\nexecute: ${note('trio ran')}\n` }, 2, async (o) => {
    // A holds its one machine; B holds one of its two and gathers with the other; A's machine then takes a seat.
    const a = startRunner(o.dir, [o.queue], targets.slice(0, 1));
    o.runners.push(a);
    await a.waitFor(new RegExp(`Executing ${JOB}/hold\\d \\(`));
    const b = startRunner(o.dir, [o.queue], targets.slice(1, 3));
    o.runners.push(b);
    await b.waitFor(/Gathering 3 machines of adhoc:ubuntu-16\.04 for \S+\/trio in the shared run\.\.\./);
    go(o.gate, targets[0]!);
    await a.waitFor(/Joining with 127\.0\.0\.51:\d+ the machines runner \S+ gathers for \S+\/trio\.\.\./);
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 1, a.out());
    assert.match(stripTime(a.out()), /Leaving the machines gathered for \S+\/trio: this runner stopped\./);
    assert.deepEqual(a.pool.discarded(), [targets[0]!.address], 'A let its machine go');
    // B alone has two machines for a group of three: the gathering is called off, the job aborted once.
    await b.waitFor(/Not starting adhoc:ubuntu-16\.04:tests\/trio on 3 machines: only 2 workers of adhoc:ubuntu-16\.04 left in the shared run to run it\./);
    go(o.gate, targets[1]!);
    go(o.gate, targets[2]!);
    await b.exited;
    const all = (await Promise.all(targets.slice(0, 3).map(logOf))).flat();
    assert.ok(!all.includes('trio ran'));
    const merged = await runSpread([o.queue, '-summary'], o.dir);
    const summary = stripTime(merged.stdout);
    assert.match(summary, /Successful tasks: 2\nAborted tasks: 1\n/, summary);
    const stored = await readRun(o.queue);
    const trio = stored.jobs.indexOf(`${JOB}/trio`);
    assert.deepEqual(stored.entries.filter((e) => e.job === trio).map((e) => e.kind === 'result' ? `${e.outcome} ${e.why?.message}` : e.kind),
      ['task-abort not run: only 2 workers of adhoc:ubuntu-16.04 left in the shared run to run it'], 'aborted once, with the reason');
  });
});
