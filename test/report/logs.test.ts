/**
 * -logs (one file per job and per level, full bytes, timings, safe names),
 * the console and reports pointing at them, and -artifacts-safe-names;
 * through the real command on the local backend.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread, runSpreadBytes, stripTime } from '../helpers/fixture.js';

const BYTES = "printf 'caf\\351 \\377\\376 ok \\342\\234\\223\\n'";
const PROJECT = {
  'spread.yaml': `project: logs
path: /logs
prepare: echo project prepared
restore: echo project restored
backends:
    local:
        systems: [a-1]
suites:
    good/:
        summary: good
        prepare: echo suite prepared
        restore: echo suite restored
`,
  'good/pass/task.yaml': 'summary: p\nprepare: echo task prepared\nrestore: echo task restored\nartifacts: [out.txt]\nexecute: |\n    echo executed\n    echo artifact > out.txt\n',
  'good/fail/task.yaml': `summary: f\nenvironment:\n    X/one: 1\n    X/two: 2\nexecute: |\n    ${BYTES}\n    test "$X" = 1\n`,
};

const files = (dir: string): string[] => {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
};

test('-logs: a file per job and per level with the full bytes and timings; console, JSON and JUnit point at them', async () => {
  const dir = makeProject(PROJECT);
  try {
    const r = await runSpreadBytes(['-logs=out/logs', '-json=out.json', '-junit=out.xml', '-seed=3', '-artifacts=arts', '-artifacts-safe-names'], dir);
    assert.equal(r.code, 1);
    assert.deepEqual(files(join(dir, 'out/logs')), [
      'local__a-1@project-1.log',
      'local__a-1__good/@suite-1.log',
      'local__a-1__good/fail__one.log',
      'local__a-1__good/fail__two.log',
      'local__a-1__good/pass.log',
    ], 'no ":" anywhere; the backend has no scripts, so no file');
    const log = (name: string) => readFileSync(join(dir, 'out/logs', name));
    const two = log('local__a-1__good/fail__two.log');
    const expected = Buffer.from('caf\xe9 \xff\xfe ok \u2713'.replace('\u2713', ''), 'latin1');
    assert.ok(two.includes(Buffer.concat([expected, Buffer.from('✓\n')])), 'the exact bytes');
    assert.match(two.toString('latin1'), /^== \d{4}-\d\d-\d\d \d\d:\d\d:\d\d Executing local:a-1:good\/fail:two \(\S+\) \(\d\/3\)\.\.\.\n\+ printf /);
    assert.match(two.toString('latin1'), /\n== [\d: -]+ Error executing local:a-1:good\/fail:two after \d+\.\d{3}s: exit status 1\n$/);
    assert.match(log('local__a-1__good/pass.log').toString(), /Preparing local:a-1:good\/pass [^]*\ntask prepared\n\n== .* Done in \d+\.\d{3}s\.\n== .* Executing [^]*\nexecuted\n[^]*Restoring [^]*\ntask restored\n/);
    assert.match(log('local__a-1__good/@suite-1.log').toString(), /Preparing local:a-1:good\/ [^]*\nsuite prepared\n[^]*Restoring local:a-1:good\/ [^]*\nsuite restored\n/);
    assert.match(log('local__a-1@project-1.log').toString(), /project prepared[^]*project restored/);

    const out = stripTime(r.stdout.toString('latin1'));
    assert.ok(r.stdout.includes(Buffer.concat([expected, Buffer.from('✓')])), 'the console gets the exact bytes too');
    assert.match(out, /^Full log of executing local:a-1:good\/fail:two: out\/logs\/local__a-1__good\/fail__two\.log$/m);

    const json = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { jobs: { name: string; log: string; failure: { output: string } | null }[] };
    const byName = new Map(json.jobs.map((j) => [j.name, j]));
    assert.equal(byName.get('local:a-1:good/pass')!.log, 'out/logs/local__a-1__good/pass.log');
    assert.match(byName.get('local:a-1:good/fail:two')!.failure!.output, /caf\\xe9 \\xff\\xfe ok ✓/, 'reports carry bytes that are not UTF-8 as \\xNN');
    const xml = readFileSync(join(dir, 'out.xml'), 'utf8');
    assert.match(xml, new RegExp(`\\[\\[ATTACHMENT\\|${dir}/out/logs/local__a-1__good/pass\\.log\\]\\]\\n\\]\\]></system-out>`), 'JUnit links the log');
    assert.match(xml, /caf\\xe9 \\xff\\xfe ok ✓/);

    assert.deepEqual(files(join(dir, 'arts')), ['local__a-1__good/pass/out.txt'], '-artifacts-safe-names');
  } finally {
    removeProject(dir);
  }
});

test('-logs keeps every byte of an output that the console and reports elide', async () => {
  const dir = makeProject({
    ...PROJECT,
    'good/fail/task.yaml': 'summary: f\nexecute: |\n    set +x\n    seq 1 400000\n    echo the end\n    exit 1\n',
  });
  try {
    const r = await runSpread(['-logs=logs', '-json=out.json', 'local:a-1:good/fail'], dir);
    assert.equal(r.code, 1);
    const log = readFileSync(join(dir, 'logs/local__a-1__good/fail.log'), 'utf8');
    const lines = Array.from({ length: 400_000 }, (_, i) => `${i + 1}`).join('\n');
    assert.ok(log.includes(`${lines}\nthe end\n`), 'all 400000 lines');
    const out = stripTime(r.stdout);
    assert.match(out, /\n\(\.\.\. \d+ bytes elided, full output in logs\/local__a-1__good\/fail\.log \.\.\.\)\n/);
    assert.match(out, /^1\n2\n3\n/m, 'the head');
    assert.match(out, /\n399999\n400000\nthe end\n-----\n/, 'the tail');
    assert.ok(r.stdout.length < 1_200_000, `the console got ${r.stdout.length} bytes`);
    const json = readFileSync(join(dir, 'out.json'), 'utf8');
    assert.ok(json.length < 2_600_000, `the JSON report has ${json.length} bytes`);
  } finally {
    removeProject(dir);
  }
});

test('-logs names: unique per job, per level and per worker, and the mapping is one to one', async () => {
  const { logPath } = await import('../../src/report/log-names.js');
  const { safeName } = await import('../../src/project/safe-names.js');
  assert.equal(safeName('google:ubuntu-22.04-64:tests/main/snap-run:classic_mode#2'), 'google__ubuntu-22.04-64__tests/main/snap-run__classic_mode#2');
  const job = { name: 'b:s-1:tests/main/x:v__w' } as never;
  assert.equal(logPath({ job, level: 'task', context: 'b:s-1:tests/main/x:v__w' }), 'b__s-1__tests/main/x__v__w.log');
  assert.equal(logPath({ job, level: 'task', context: 'b:s-1:tests/main/x:v__w instance 2/3', instance: 2 }), 'b__s-1__tests/main/x__v__w@instance-2.log');
  assert.equal(logPath({ job, level: 'suite', context: 'b:s-1:tests/main/', worker: 2 }), 'b__s-1__tests/main/@suite-2.log');
  assert.equal(logPath({ job, level: 'backend', context: 'b:s-1', worker: 1 }), 'b__s-1@backend-1.log');
  assert.equal(logPath({ job, level: 'project', context: 'b:s-1', worker: 3 }), 'b__s-1@project-3.log');
});
