/**
 * Hostile runs on real sshd machines (issue: "a remote agent as robust as a
 * fresh shell"): whatever a task does on its machine, the run reports that
 * task truthfully and every other task runs as if it had not happened. Each
 * case checks the summary, the JSON report, the exact bytes of the output,
 * and that no agent process or file is left on the machine afterwards.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import { assertNothingLeft } from '../helpers/agent.js';
import { makeProject, removeProject, runSpreadBytes, stripTime } from '../helpers/fixture.js';
import { runSpreadWithPeak } from '../helpers/peak-rss.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip();
const PASS = 'hostile-pw';
let main: SshdTarget;
let scratch: SshdTarget;
const dirs: string[] = [];

before(async () => {
  if (skip) return;
  [main, scratch] = await Promise.all([startSshd({ host: '127.0.0.21', rootPassword: PASS }), startSshd({ host: '127.0.0.22', rootPassword: PASS })]);
});
after(async () => {
  await Promise.all([main, scratch].filter(Boolean).map((t) => t.stop()));
  for (const dir of dirs) removeProject(dir);
});

const spreadYaml = (extra = '') => `project: hostile
path: /home/hostile
backends:
${adhocBackend('adhoc', '- debian-12')}suites:
    tests/:
        summary: hostile tasks
${extra}`;

interface Report {
  totals: Record<string, number>;
  jobs: { name: string; status: string; failure: { error: string; output: string } | null }[];
}

/** Runs spread on a project against one machine; the machine must be left clean. */
async function run(target: SshdTarget, files: Record<string, string>, args: string[] = [], setup?: (dir: string) => void) {
  const dir = makeProject({ 'spread.yaml': spreadYaml(), ...files });
  dirs.push(dir);
  const pool = adhocPool([target]);
  await target.run('rm -rf /home/hostile /home/marks && mkdir -p /home/marks');
  try {
    setup?.(dir);
    const r = await runSpreadBytes([`-pass=${PASS}`, '-seed=7', '-json=report.json', '-logs=logs', ...args], dir, pool.env);
    const out = stripTime(r.stdout.toString('latin1'));
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
    const log = (job: string) => readFileSync(join(dir, 'logs', `${job.replaceAll(':', '__')}.log`));
    await assertNothingLeft(target);
    assert.deepEqual(pool.discarded(), [target.address], 'the machine was discarded');
    return { r, out, report, log, dir };
  } finally {
    pool.remove();
  }
}

const statuses = (report: Report) => Object.fromEntries(report.jobs.map((j) => [j.name.replace('adhoc:debian-12:', ''), j.status]));

test('output bytes >= 0x80 reach the console and -logs as printed; errors name /bin/bash and the machine by system', { skip }, async () => {
  const { r, out, report, log } = await run(main, {
    'tests/bytes/task.yaml': "summary: bytes\nexecute: |\n    printf 'caf\\351 \\377\\376 ok \\342\\234\\223\\n'\n    exit 1\n",
    'tests/nocmd/task.yaml': 'summary: no command\nexecute: |\n    true\n    no-such-command-here\n',
  });
  assert.equal(r.code, 1);
  const bytes = Buffer.from('caf\xe9 \xff\xfe ok \xe2\x9c\x93\n', 'latin1');
  assert.ok(r.stdout.includes(bytes), 'the console has the exact bytes');
  assert.ok(log('adhoc:debian-12:tests/bytes').includes(bytes), 'the log has the exact bytes');
  assert.match(out, /^Executing adhoc:debian-12:tests\/bytes \(adhoc:debian-12\) \(\d\/2\)\.\.\.$/m, 'named by system, as the original');
  assert.match(out, /^Error executing adhoc:debian-12:tests\/nocmd \(adhoc:debian-12\) : \n-----\n\+ true\n\+ no-such-command-here\n\/bin\/bash: line \d+: no-such-command-here: command not found\n-----$/m);
  assert.match(out, /Successful tasks: 0\nAborted tasks: 0\nFailed tasks: 2\n    - adhoc:debian-12:tests\/bytes\n    - adhoc:debian-12:tests\/nocmd\n/);
  assert.deepEqual(report.totals, { jobs: 2, passed: 0, failed: 2, error: 0, skipped: 0 });
  const failure = report.jobs.find((j) => j.name.endsWith('bytes'))!.failure!;
  assert.match(failure.output, /\ncaf\\xe9 \\xff\\xfe ok ✓\n/, 'JSON: bytes that are not UTF-8 as \\xNN');
});

test('600 MB of output from a failing task: reported, bounded in memory, every byte in -logs', { skip }, async () => {
  const mb = Number(process.env['SPREAD_TEST_HUGE_MB'] ?? 600);
  const size = mb * 1_000_000;
  const dir = makeProject({
    'spread.yaml': spreadYaml(),
    'tests/huge/task.yaml': `summary: huge\nkill-timeout: 10m\nexecute: |\n    set +x\n    yes 'spread prints this line many times' | head -c ${size}\n    echo\n    echo "the end"\n    exit 1\n`,
    'tests/after/task.yaml': 'summary: after\npriority: -1\nexecute: echo after\n',
  });
  const pool = adhocPool([main]);
  try {
    await main.run('rm -rf /home/hostile');
    const r = await runSpreadWithPeak([`-pass=${PASS}`, '-seed=1', '-json=report.json', '-logs=logs'], dir, pool.env);
    const out = r.stdout.toString('latin1');
    assert.equal(r.code, 1, r.stderr);
    assert.match(stripTime(out), /Successful tasks: 1\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:debian-12:tests\/huge\n/);
    // "+ set +x\n", the lines, "\n", "the end\n": the marker counts the bytes between the kept 1 MiB.
    const total = 9 + size + 1 + 8;
    const marker = `\n(... ${total - 1024 * 1024} bytes elided, full output in logs/adhoc__debian-12__tests/huge.log ...)\n`;
    assert.ok(out.includes(`Error executing adhoc:debian-12:tests/huge (adhoc:debian-12) : \n-----\n+ set +x\nspread prints this line`), 'the head');
    assert.ok(out.includes(marker), `the marker: ${marker}`);
    assert.match(out.slice(-200_000), /spread prints this line many times\n(spread prints this line many times\n)+[a-z ]*\nthe end\n-----\n/, 'the tail');
    assert.ok(r.stdout.length < 1.2 * 1024 * 1024, `the console got ${r.stdout.length} bytes`);
    const report = readFileSync(join(dir, 'report.json'), 'utf8');
    assert.ok(report.length < 3 * 1024 * 1024, `the JSON report has ${report.length} bytes`);
    assert.equal((JSON.parse(report) as Report).totals.failed, 1);

    const logFile = join(dir, 'logs/adhoc__debian-12__tests/huge.log');
    const fd = openSync(logFile, 'r');
    const head = Buffer.alloc(200);
    readSync(fd, head, 0, 200, 0);
    const tail = Buffer.alloc(200);
    const logSize = statSync(logFile).size;
    readSync(fd, tail, 0, 200, logSize - 200);
    closeSync(fd);
    const header = head.toString().split('\n')[0]!;
    assert.match(header, /^== .* Executing adhoc:debian-12:tests\/huge \(adhoc:debian-12\) \(1\/2\)\.\.\.$/);
    const trailer = tail.toString().slice(tail.toString().lastIndexOf('\n==') + 1);
    assert.match(trailer, /^== .* Error executing adhoc:debian-12:tests\/huge after \d+\.\d{3}s: exit status 1\n$/);
    assert.equal(logSize, header.length + 1 + (9 + size + 1 + 8) + 1 + trailer.length, 'every byte is in the log');
    assert.match(tail.toString(), /\n[a-z ]*\nthe end\n\n== /);
    assert.ok(r.peakKb > 0 && r.peakKb < 400 * 1024, `peak RSS ${Math.round(r.peakKb / 1024)} MB`);
    await assertNothingLeft(main);
  } finally {
    removeProject(dir);
    pool.remove();
  }
});

test('a REBOOT that never completes fails its task; the next task on that machine passes', { skip }, async () => {
  const { out, report, log } = await run(main, {
    'tests/reboot/task.yaml': `summary: reboot
priority: 2
warn-timeout: 1s
kill-timeout: 3s
execute: |
    if [ "$SPREAD_REBOOT" = 0 ]; then REBOOT; fi
restore: echo restored >> /home/marks/reboot
`,
    'tests/next/task.yaml': 'summary: next\npriority: 1\nexecute: echo "next ran on $(cat /proc/sys/kernel/random/boot_id)"\n',
  });
  assert.match(out, /Rebooting on adhoc:debian-12 \(adhoc:debian-12:tests\/reboot\) as requested\.\.\./);
  assert.match(out, /Error executing adhoc:debian-12:tests\/reboot \(adhoc:debian-12\) : kill-timeout reached after adhoc:debian-12 \(adhoc:debian-12:tests\/reboot\) reboot request\n/);
  assert.match(out, /Successful tasks: 1\nAborted tasks: 0\nFailed tasks: 1\n    - adhoc:debian-12:tests\/reboot\n/);
  assert.deepEqual(statuses(report), { 'tests/next': 'passed', 'tests/reboot': 'failed' });
  assert.match(log('adhoc:debian-12:tests/next').toString(), /\nnext ran on [0-9a-f-]{36}\n/);
  assert.equal(await main.run('cat /home/marks/reboot'), 'restored\n', 'the failed task was restored');
});

test('a full, then a read-only /tmp: every script runs, every restore runs and is reported', { skip }, async () => {
  const mark = (what: string) => `echo ${what} >> /home/marks/order`;
  const files = {
    'spread.yaml': spreadYaml().replace('path: /home/hostile', `path: /home/hostile\nprepare: ${mark('project-prepare')}\nrestore: ${mark('project-restore')}`)
      .replace('summary: hostile tasks', `summary: hostile tasks\n        prepare: ${mark('suite-prepare')}\n        restore: ${mark('suite-restore')}`),
    'tests/one/task.yaml': `summary: one\nprepare: ${mark('one-prepare')}\nexecute: df /tmp > /dev/null; ${mark('one-execute')}\nrestore: ${mark('one-restore')}\n`,
    'tests/two/task.yaml': `summary: two\nexecute: ${mark('two-execute')}\nrestore: ${mark('two-restore')}\n`,
  };
  const check = async ({ r, out, report }: Awaited<ReturnType<typeof run>>) => {
    assert.equal(r.code, 0, out);
    assert.match(out, /Successful tasks: 2\nAborted tasks: 0\n$/);
    assert.deepEqual(report.totals, { jobs: 2, passed: 2, failed: 0, error: 0, skipped: 0 });
    const order = (await scratch.run('cat /home/marks/order')).trim().split('\n');
    assert.deepEqual(order.filter((l) => /restore/.test(l)).sort(), ['one-restore', 'project-restore', 'suite-restore', 'two-restore']);
  };
  await scratch.run('mount -t tmpfs -o size=16k tmpfs /tmp && (head -c 1M /dev/zero > /tmp/fill 2>/dev/null || true) && ! (echo x > /tmp/x) 2>/dev/null');
  try {
    await check(await run(scratch, files));
    await scratch.run('umount /tmp && mount -t tmpfs -o ro tmpfs /tmp');
    await check(await run(scratch, files));
  } finally {
    await scratch.run('umount /tmp');
  }
});

test('tasks that kill their parents or the agent fail alone: the others pass, every restore runs, reports agree', { skip }, async () => {
  const restore = 'restore: echo "$SPREAD_TASK" >> /home/marks/restored\n';
  const tasks: Record<string, string> = {
    'tests/parents/task.yaml': `summary: kills its parents\nexecute: |\n    p=$PPID\n    while [ "$p" -gt 1 ]; do n=$(awk '/^PPid/{print $2}' /proc/$p/status); kill -9 $p; p=$n; done\n    echo survived\n${restore}`,
    'tests/agent/task.yaml': `summary: kills the agent\nexecute: |\n    for p in /proc/[0-9]*; do case "$(tr '\\\\0' ' ' < $p/cmdline)" in spread-agent*) kill -9 \${p#/proc/};; esac; done 2>/dev/null\n    sleep 0.2\n    echo survived\n${restore}`,
  };
  for (let i = 1; i <= 4; i++) tasks[`tests/ok${i}/task.yaml`] = `summary: ok\nexecute: echo "ok ${i}"\n${restore}`;
  const { out, report, log } = await run(main, tasks);
  assert.match(out, /Error executing adhoc:debian-12:tests\/parents \(adhoc:debian-12\) : remote agent killed while running the script/);
  assert.match(out, /Error executing adhoc:debian-12:tests\/agent \(adhoc:debian-12\) : remote agent killed while running the script/);
  assert.match(out, /Successful tasks: 4\nAborted tasks: 0\nFailed tasks: 2\n    - adhoc:debian-12:tests\/agent\n    - adhoc:debian-12:tests\/parents\n/);
  assert.deepEqual(report.totals, { jobs: 6, passed: 4, failed: 2, error: 0, skipped: 0 });
  assert.deepEqual(statuses(report), { 'tests/agent': 'failed', 'tests/ok1': 'passed', 'tests/ok2': 'passed', 'tests/ok3': 'passed', 'tests/ok4': 'passed', 'tests/parents': 'failed' });
  assert.deepEqual((await main.run('sort /home/marks/restored')).trim().split('\n'), ['tests/agent', 'tests/ok1', 'tests/ok2', 'tests/ok3', 'tests/ok4', 'tests/parents']);
  for (let i = 1; i <= 4; i++) assert.match(log(`adhoc:debian-12:tests/ok${i}`).toString(), new RegExp(`\\nok ${i}\\n`));
});

test('a process left reading its parents\' stdin steals nothing: the next task gets its own script and environment', { skip }, async () => {
  try {
    const { out, report, log } = await run(main, {
      'tests/a-thief/task.yaml': `summary: thief\npriority: 2\nexecute: |\n    p=$PPID\n    while [ "$p" -gt 1 ]; do\n        setsid cat /proc/$p/fd/0 > /home/marks/stolen.$p 2>/dev/null < /dev/null &\n        p=$(awk '/^PPid/{print $2}' /proc/$p/status)\n    done\n`,
      'tests/b-victim/task.yaml': 'summary: victim\npriority: 1\nenvironment:\n    VICTIM_SECRET: hunter2\nexecute: echo "secret=$VICTIM_SECRET"\n',
    });
    assert.match(out, /Successful tasks: 2\nAborted tasks: 0\n$/);
    assert.deepEqual(report.totals, { jobs: 2, passed: 2, failed: 0, error: 0, skipped: 0 });
    assert.match(log('adhoc:debian-12:tests/b-victim').toString(), /\nsecret=hunter2\n/);
    assert.equal(await main.run('cat /home/marks/stolen.*'), '', 'nothing was read from any stdin');
  } finally {
    await main.run('pkill -9 -x cat; true');
  }
});

test('a project file whose name is not UTF-8 reaches the machine with its exact bytes', { skip }, async () => {
  const { r, out, report } = await run(main, {
    'tests/names/task.yaml': "summary: names\nexecute: |\n    test \"$(cat \"$(printf 'caf\\351.txt')\")\" = latin-1\n    ls | od -An -c | tr -s ' '\n",
  }, [], (dir) => writeFileSync(Buffer.concat([Buffer.from(`${dir}/tests/names/`), Buffer.from('caf\xe9.txt', 'latin1')]), 'latin-1'));
  assert.equal(r.code, 0, out);
  assert.deepEqual(report.totals, { jobs: 1, passed: 1, failed: 0, error: 0, skipped: 0 });
});
