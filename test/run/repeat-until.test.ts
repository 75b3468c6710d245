/** -repeat-until: repeat through unrelated failures until one whose output matches. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread, SPREAD_BIN, stripTime } from '../helpers/fixture.js';


/** A task whose Nth run (counted in its directory, which survives the repeats) does what `byRun` says. */
const project = (byRun: string) => ({
  'spread.yaml': 'project: until\npath: /until\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n',
  'tests/flaky/task.yaml': `summary: flaky\nexecute: |\n    echo x >> runs\n    n=$(wc -l < runs)\n    ${byRun}\n`,
});

test('unrelated failures are counted and repeated past; the matching one stops', async () => {
  const dir = makeProject(project('case $n in 1|2) echo "unrelated hiccup"; exit 1;; 3) echo ok;; 4) echo "segfault at 0x0"; exit 1;; esac'));
  try {
    const r = await runSpread(['-repeat-until=segfault', '-json=out.json', '-junit=out.xml'], dir);
    const out = stripTime(r.stdout);
    assert.equal(r.code, 1);
    // The reports keep the failure that matched, not the first unrelated one.
    const report = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { jobs: { status: string; outcomes: string[]; failure: { output: string } }[] };
    assert.equal(report.jobs[0]!.status, 'failed');
    assert.deepEqual(report.jobs[0]!.outcomes, ['task-error', 'task-error', 'task-done', 'task-error']);
    assert.match(report.jobs[0]!.failure.output, /segfault at 0x0/);
    assert.doesNotMatch(report.jobs[0]!.failure.output, /unrelated/);
    assert.match(readFileSync(join(dir, 'out.xml'), 'utf8'), /<failure message="[^"]*" type="task-error"><!\[CDATA\[[^\]]*segfault at 0x0/);
    assert.equal((out.match(/does not match -repeat-until, repeating/g) ?? []).length, 2);
    assert.match(out, /Successful tasks: 1\nAborted tasks: 0\nFailed tasks: 3\n(    - local:this-host:tests\/flaky\n){3}/);
    assert.ok(out.lastIndexOf('Executing') < out.indexOf('segfault at 0x0\n'), 'nothing ran after the matching failure');
    assert.equal((out.match(/^Executing /gm) ?? []).length, 4);
  } finally {
    removeProject(dir);
  }
});

test('-repeat=N bounds -repeat-until', async () => {
  const dir = makeProject(project('echo "unrelated"; exit 1'));
  try {
    const r = await runSpread(['-repeat=3', '-repeat-until=segfault'], dir);
    assert.match(stripTime(r.stdout), /Successful tasks: 0\nAborted tasks: 0\nFailed tasks: 4\n/, 'the first run and 3 repeats');
  } finally {
    removeProject(dir);
  }
});

test('without a limit, Ctrl-C stops the repeats and the run ends with its summary', async () => {
  const dir = makeProject(project('sleep 0.05'));
  try {
    const child = spawn(process.execPath, [SPREAD_BIN, '-repeat-until=never'], { cwd: dir });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    while ((out.match(/Executing/g) ?? []).length < 5) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, 'every run passed');
    assert.match(stripTime(out), /Successful tasks: \d+\nAborted tasks: 0\n$/);
  } finally {
    removeProject(dir);
  }
});

test('-repeat-until with a bad regular expression is a usage error', async () => {
  const dir = makeProject(project('true'));
  try {
    const r = await runSpread(['-repeat-until=(oops'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: -repeat-until: invalid regular expression "\(oops"/);
  } finally {
    removeProject(dir);
  }
});

test('-abend still stops at the first failure, matching or not', async () => {
  const dir = makeProject(project('echo "unrelated"; exit 1'));
  try {
    const r = await runSpread(['-abend', '-repeat-until=segfault'], dir);
    assert.match(stripTime(r.stdout), /Successful tasks: 0\nAborted tasks: 0\nFailed tasks: 1\n/);
  } finally {
    removeProject(dir);
  }
});
