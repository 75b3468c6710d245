/**
 * Several runners, one run (-queue): real `spread` processes on real test
 * sshd machines (each runner its own pair, through the adhoc backend), one
 * real redis-server. Every job runs exactly once and the merged summary is
 * the single runner's; a runner killed mid-job loses it to another runner;
 * a stopped runner hands back what it had not started; runners with
 * another matrix or project are refused before allocating; an unreachable
 * or lost Redis is said in one line, and nothing leaks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { R_SIZE } from '../../src/report/html/model.js';
import { readReportData } from '../../src/report/html/render.js';
import { parseQueueUrl } from '../../src/store/queue-url.js';
import { connectRedisRun } from '../../src/store/redis.js';
import type { RunRecordStored } from '../../src/store/store.js';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { startPoolRunner } from '../helpers/pool-runner.js';
import { freePort, redisSkip, startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip() || redisSkip();
const PASS = 'queue-shared-pw';
let targets: SshdTarget[] = [];
let redis: RedisServer | undefined;

before(async () => {
  if (skip) return;
  [redis, ...targets] = await Promise.all([
    startRedis(),
    ...[5, 6, 7, 8, 9, 10].map((n) => startSshd({ host: `127.0.0.${n}`, rootPassword: PASS })),
  ]);
});
after(async () => {
  await Promise.all([redis?.stop(), ...targets.map((t) => t.stop())]);
});

/**
 * A project shaped like real ones: anchors, merge keys, variants, a failing
 * task and a failing task prepare. Before its first job goes on, each
 * machine waits (at most a minute) until as many machines as GATE/expected
 * says have started one: so every worker of every runner gets a job, and
 * the runners really compete for the queue, however loaded the machine.
 */
const PROJECT = (gate: string, extraTasks: Record<string, string> = {}) => ({
  'spread.yaml': `project: queue-demo
path: /home/run
environment:
    GREETING: hello
    GATE: ${gate}
# Each runner's machines go back to its pool: leave them clean.
restore: rm -rf /home/run
backends:
${adhocBackend('adhoc', `- debian-12:\n    workers: 2\n    password: ${PASS}`)}suites:
    tests/main/: &suite
        summary: main tests
        prepare-each: |
            echo "$SPREAD_JOB" >> /tmp/jobs.log
            set -- $SSH_CONNECTION
            touch "$GATE/m-$3-$4"
            want=$(cat "$GATE/expected" 2>/dev/null || echo 0)
            for i in $(seq 1200); do [ "$(ls "$GATE" | grep -c '^m-')" -ge "$want" ] && break; sleep 0.05; done
    tests/extra/:
        <<: *suite
        summary: extra tests
        environment:
            FLAVOUR/plain: plain
            FLAVOUR/fancy: fancy
`,
  ...Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((t) => [`tests/main/${t}/task.yaml`, `summary: ${t}\nexecute: test "$GREETING" = hello\n`])),
  'tests/main/broken/task.yaml': 'summary: fails\nexecute: |\n    echo "about to fail"\n    false\n',
  'tests/main/unprepared/task.yaml': 'summary: prepare fails\nprepare: exit 3\nexecute: "true"\n',
  ...Object.fromEntries(['x', 'y', 'z'].map((t) => [`tests/extra/${t}/task.yaml`, `summary: ${t}\nexecute: test -n "$FLAVOUR"\n`])),
  ...extraTasks,
});

/** A spread runner on its own pair of test machines. */
const startRunner = startPoolRunner;

const newRun = (query = '?lease=1s') => `-queue=${redis!.url}/1/t-${randomBytes(4).toString('hex')}${query}`;
/** The jobs a runner's log shows running (a task prepare that fails shows no Executing line). */
const jobsRun = (log: string): string[] => [...new Set([...log.matchAll(/(?:Preparing|Executing) (adhoc:debian-12:tests\/\S+[^/]) \(/g)].map((m) => m[1]!))];
/** The summary lines at the end of a log, without times. */
const summaryOf = (log: string): string => stripTime(log).slice(stripTime(log).lastIndexOf('Successful tasks:')).replace(/\nerror: unsuccessful run\n?$/, '\n');
const readRun = async (queueFlag: string): Promise<RunRecordStored> => {
  const run = await connectRedisRun(parseQueueUrl(queueFlag.slice('-queue='.length)));
  try {
    return await run.waitForEnd(new AbortController().signal);
  } finally {
    await run.close();
  }
};

/** A fresh copy of the project; `machines` is how many must start a job before any goes on (0: no waiting). */
async function withProject<T>(extraTasks: Record<string, string>, machines: number, use: (dir: string, files: Record<string, string>) => Promise<T>): Promise<T> {
  const gate = mkdtempSync('/var/tmp/spread-gate-');
  writeFileSync(join(gate, 'expected'), String(machines));
  const files = PROJECT(gate, extraTasks);
  const dir = makeProject(files);
  await Promise.all(targets.map((t) => t.run('rm -rf /home/run /tmp/jobs.log')));
  try {
    return await use(dir, files);
  } finally {
    removeProject(dir);
    rmSync(gate, { recursive: true, force: true });
  }
}

let single: { summary: string; json: { jobs: { name: string; status: string }[] } } | undefined;
/** The same project run by one runner without -queue, once for the tests that compare with it. */
async function singleRunner(): Promise<NonNullable<typeof single>> {
  if (single) return single;
  return withProject({}, 2, async (dir) => {
    const pool = adhocPool(targets.slice(0, 2));
    try {
      const r = await runSpread([`-json=${join(dir, 'single.json')}`], dir, pool.env);
      assert.equal(r.code, 1, r.stdout);
      single = { summary: summaryOf(r.stdout), json: JSON.parse(readFileSync(join(dir, 'single.json'), 'utf8')) };
      return single;
    } finally {
      pool.remove();
    }
  });
}

for (const n of [2, 3]) {
  test(`${n} runners × 2 workers: every job once, the merged summary and reports equal one runner's`, { skip }, async () => {
    const baseline = await singleRunner();
    await withProject({}, 2 * n, async (dir) => {
      const queue = newRun();
      const runners = Array.from({ length: n }, (_, i) => startRunner(dir, [queue], targets.slice(2 * i, 2 * i + 2)));
      try {
        // -summary started before the runners end waits for them.
        const summary = runSpread([queue, '-summary', `-junit=${join(dir, 'merged.xml')}`, `-json=${join(dir, 'merged.json')}`], dir);
        await Promise.all(runners.map((r) => r.exited));
        const logs = runners.map((r) => r.out());
        const all = logs.flatMap(jobsRun).sort();
        assert.deepEqual(all, baseline.json.jobs.map((j) => j.name).sort(), `each job ran once in the runners' logs:\n${logs.join('\n=====\n')}`);
        for (const log of logs) assert.ok(jobsRun(log).length >= 2, `every runner ran jobs:\n${log}`);
        for (const log of logs) assert.match(log, /(Started|Joined) the shared run redis:\/\/127\.0\.0\.1:\d+\/1\/t-\w+ as runner \d/);

        const stored = await readRun(queue);
        const ends = stored.entries.filter((e) => e.kind === 'end').map((e) => stored.jobs[e.job]!).sort();
        assert.deepEqual(ends, [...all], 'each job ended once in the store');
        assert.deepEqual(stored.leftover, []);
        assert.equal(stored.runners, n);

        const merged = await summary;
        assert.equal(merged.code, 1, 'the merged run failed, as the single one did');
        assert.match(merged.stdout, new RegExp(`Merged summary of the shared run .*: 13 jobs, ${n} runners, ${2 * n} workers\\.`));
        assert.equal(summaryOf(merged.stdout), baseline.summary);
        const json = JSON.parse(readFileSync(join(dir, 'merged.json'), 'utf8')) as typeof baseline.json;
        const statuses = (j: typeof json) => j.jobs.map((x) => `${x.name} ${x.status}`).sort();
        assert.deepEqual(statuses(json), statuses(baseline.json));
        const junit = readFileSync(join(dir, 'merged.xml'), 'utf8');
        assert.match(junit, /<testsuites name="spread" tests="13" failures="2" errors="0" time="/);
        for (const r of runners) assert.equal(r.pool.discarded().length, r.pool.allocated().length, `runner discarded what it allocated:\n${r.out()}`);
      } finally {
        for (const r of runners) {
          r.child.kill('SIGKILL');
          r.pool.remove();
        }
      }
    });
  });
}

test('SIGKILL of a runner mid-job: its job runs again on another runner, the run completes, the summary names the retry', { skip }, async () => {
  await withProject({ 'tests/main/long/task.yaml': 'summary: long\npriority: 100\nexecute: sleep 2\n' }, 0, async (dir) => {
    const queue = newRun();
    const [a, b] = [startRunner(dir, [queue], targets.slice(0, 2)), startRunner(dir, [queue], targets.slice(2, 4))];
    try {
      const first = await Promise.race([a, b].map((r) => r.waitFor(/Executing adhoc:debian-12:tests\/main\/long \(/).then(() => r)));
      const other = first === a ? b : a;
      first.child.kill('SIGKILL');
      assert.equal(await other.exited, 1, other.out());
      const retried = other.out();
      assert.match(retried, /Running adhoc:debian-12:tests\/main\/long again: its runner \S+ was lost\./);
      assert.match(retried, /Executing adhoc:debian-12:tests\/main\/long \(/);
      assert.doesNotMatch(retried, /Error executing adhoc:debian-12:tests\/main\/long/);

      const merged = await runSpread([queue, '-summary', `-json=${join(dir, 'merged.json')}`, `-html=${join(dir, 'merged.html')}`], dir);
      // As without a lost runner: the failing task, and the abort after the failing prepare.
      assert.match(stripTime(merged.stdout), /Successful tasks: 12\nAborted tasks: 0\nFailed tasks: 1\n.*\nFailed task prepare: 1\n.*\nRetried after a lost runner: [12]\n(?: {4}- .*\n)* {4}- adhoc:debian-12:tests\/main\/long\n/);
      const json = JSON.parse(readFileSync(join(dir, 'merged.json'), 'utf8')) as { jobs: { name: string; status: string; retriedAfterLostRunner?: string }[] };
      const long = json.jobs.find((j) => j.name === 'adhoc:debian-12:tests/main/long')!;
      assert.equal(long.status, 'passed');
      // The HTML report of the merged run: every job, one run each on the timeline (the lost attempt is not kept).
      const html = readReportData(readFileSync(join(dir, 'merged.html'), 'utf8'));
      assert.equal(html.jobs.length, json.jobs.length);
      assert.equal(html.runs.length / R_SIZE, json.jobs.filter((j) => j.status === 'passed' || j.status === 'failed').length);
      assert.match(long.retriedAfterLostRunner ?? '', /-\d+-/);
      const stored = await readRun(queue);
      const longIndex = stored.jobs.indexOf('adhoc:debian-12:tests/main/long');
      assert.equal(stored.entries.filter((e) => e.kind === 'end' && e.job === longIndex).length, 1, 'the lost attempt left no result');
      assert.equal(merged.code, 1);
    } finally {
      for (const r of [a, b]) {
        r.child.kill('SIGKILL');
        r.pool.remove();
      }
    }
  });
});

test('a runner stopped with SIGTERM or SIGINT finishes what runs and hands back what it had not started', { skip }, async () => {
  const slow = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tests/main/slow${i}/task.yaml`, 'summary: slow\nexecute: sleep 0.5\n']));
  await withProject(slow, 0, async (dir) => {
    const queue = newRun();
    // Only the slow tasks: a runner that happened to take tests/main/unprepared first would count its
    // failed prepare as an abort of its own, which is not what this test is about.
    const only = 'tests/main/slow...';
    for (const [signal, machines] of [['SIGTERM', targets.slice(0, 2)], ['SIGINT', targets.slice(2, 4)]] as const) {
      const r = startRunner(dir, [queue, only], machines);
      try {
        await r.waitFor(/Executing /);
        r.child.kill(signal);
        assert.equal(await r.exited, 1, 'a runner that did not do its share is unsuccessful');
        assert.match(r.out(), /\d+ jobs? left in the shared run redis:\/\/\S+ for other runners\./);
        assert.match(r.out(), /Aborted tasks: 0\n/, 'what it handed back is not aborted');
        assert.equal(r.pool.discarded().length, r.pool.allocated().length, 'its machines were discarded');
      } finally {
        r.pool.remove();
      }
    }
    const last = startRunner(dir, [queue, only], targets.slice(4, 6));
    try {
      await last.exited;
      const stored = await readRun(queue);
      assert.deepEqual(stored.leftover, []);
      const ends = stored.entries.filter((e) => e.kind === 'end').map((e) => e.job).sort((x, y) => x - y);
      assert.deepEqual(ends, stored.jobs.map((_, i) => i), 'every job ran once across the three runners');
    } finally {
      last.pool.remove();
    }
  });
});

test('a runner with other filters or another project is refused before it allocates anything', { skip }, async () => {
  await withProject({}, 0, async (dir, files) => {
    const queue = newRun();
    const owner = startRunner(dir, [queue, 'adhoc:debian-12:tests/main/'], targets.slice(0, 2));
    try {
      await owner.waitFor(/Started the shared run/);
      const filtered = startRunner(dir, [queue], targets.slice(2, 4));
      assert.equal(await filtered.exited, 1);
      assert.match(filtered.out(), /error: cannot join the shared run redis:\/\/127\.0\.0\.1:\d+\/1\/t-\w+: the jobs differ \(13 selected here, 7 in the run; adhoc:debian-12:tests\/extra\/x:fancy is selected here but not in the run\): use the same project and filters on every runner\n/);
      assert.deepEqual(filtered.pool.allocated(), [], 'nothing allocated');
      assert.doesNotMatch(filtered.out(), /Successful tasks/);
      filtered.pool.remove();

      const other = makeProject({ ...files, 'tests/main/a/task.yaml': 'summary: a, changed\nexecute: "true"\n' });
      const changed = startRunner(other, [queue, 'adhoc:debian-12:tests/main/'], targets.slice(2, 4));
      assert.equal(await changed.exited, 1);
      assert.match(changed.out(), /error: cannot join the shared run .*: the project content differs \(packed digest \w+ here, \w+ in the run\); every runner must run the same commit\n/);
      assert.deepEqual(changed.pool.allocated(), []);
      changed.pool.remove();
      removeProject(other);
      assert.equal(await owner.exited, 1, owner.out());
    } finally {
      owner.child.kill('SIGKILL');
      owner.pool.remove();
    }
  });
});

test('Redis unreachable at start: one line, nothing allocated', { skip }, async () => {
  await withProject({}, 0, async (dir) => {
    const port = await freePort();
    const r = startRunner(dir, [`-queue=redis://127.0.0.1:${port}/0/nowhere`], targets.slice(0, 2));
    try {
      assert.equal(await r.exited, 1);
      assert.equal(r.out(), `error: cannot reach the queue at redis://127.0.0.1:${port}/0/nowhere: connect ECONNREFUSED 127.0.0.1:${port}\n`);
      assert.deepEqual(r.pool.allocated(), []);
    } finally {
      r.pool.remove();
    }
  });
});

test('Redis lost mid-run: the runner finishes its running jobs, restores, discards its machines and says what happened', { skip }, async () => {
  const own = await startRedis();
  try {
    await withProject({ 'tests/main/long/task.yaml': 'summary: long\npriority: 100\nexecute: sleep 1.5\nrestore: echo restored-long >> /tmp/jobs.log\n' }, 0, async (dir) => {
      const r = startRunner(dir, [`-queue=${own.url}/0/lost?lease=1s`], targets.slice(0, 2));
      try {
        await r.waitFor(/Executing adhoc:debian-12:tests\/main\/long \(/);
        await own.kill();
        assert.equal(await r.exited, 1);
        const out = stripTime(r.out());
        assert.match(out, /Lost the shared run redis:\/\/127\.0\.0\.1:\d+\/0\/lost: cannot \w+ [^\n]*(ECONNREFUSED|closed)[^\n]*\. Finishing running jobs, restoring and discarding machines; their results are only in this log\.\n/);
        assert.doesNotMatch(out, /Error executing adhoc:debian-12:tests\/main\/long/, 'the running job finished');
        assert.match(out, /Restoring adhoc:debian-12:tests\/main\/long \(/);
        assert.ok(r.pool.allocated().length > 0);
        assert.equal(r.pool.discarded().length, r.pool.allocated().length, `every machine discarded:\n${out}`);
        const logs = await Promise.all(targets.slice(0, 2).map((t) => t.run('cat /tmp/jobs.log 2>/dev/null || true')));
        assert.match(logs.join(''), /restored-long/);
      } finally {
        r.child.kill('SIGKILL');
        r.pool.remove();
      }
    });
  } finally {
    await own.stop();
  }
});
