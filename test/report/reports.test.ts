/** -junit and -json through the real command, on a project where jobs pass, fail and are aborted. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const PROJECT = {
  'spread.yaml': `project: reports
path: /reports
backends:
    local:
        systems: [a-1, b-1]
suites:
    good/:
        summary: good
    bad/:
        summary: suite prepare fails on b-1
        prepare: '[ "$SPREAD_SYSTEM" != b-1 ]'
`,
  'good/pass/task.yaml': 'summary: p\nsamples: 2\nexecute: "true"\n',
  'good/fail/task.yaml': 'summary: f\nenvironment:\n    X/one: 1\n    X/two: 2\nexecute: |\n    echo "<out & about> ]]> \u0007"\n    test "$X" = 1\n',
  'bad/t/task.yaml': 'summary: t\nexecute: "true"\n',
};

test('-junit and -json describe every job: passed, failed with output, aborted with the reason', async () => {
  const dir = makeProject(PROJECT);
  try {
    const r = await runSpread(['-junit=out.xml', '-json=out.json', '-seed=5'], dir);
    assert.equal(r.code, 1);
    const report = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as {
      version: number; seed: number; totals: Record<string, number>;
      jobs: { name: string; status: string; outcomes: string[]; failure: { verb: string; level: string; output: string } | null }[];
    };
    assert.equal(report.version, 1);
    assert.equal(report.seed, 5);
    assert.deepEqual(report.totals, { jobs: 10, passed: 7, failed: 2, aborted: 1 });
    const byName = new Map(report.jobs.map((j) => [j.name, j]));
    assert.equal(byName.get('local:a-1:good/pass#2')!.status, 'passed');
    const failed = byName.get('local:a-1:good/fail:two')!;
    assert.equal(failed.status, 'failed');
    assert.deepEqual(failed.outcomes, ['task-error']);
    assert.equal(failed.failure!.verb, 'executing');
    assert.match(failed.failure!.output, /<out & about>/);
    const aborted = byName.get('local:b-1:bad/t')!;
    assert.equal(aborted.status, 'aborted');
    assert.equal(aborted.failure!.level, 'suite', 'the failure that stopped it');

    const xml = readFileSync(join(dir, 'out.xml'), 'utf8');
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="spread" tests="10" failures="2" errors="0" skipped="1" time="[\d.]+">\n/);
    assert.match(xml, /<testsuite name="local:a-1:good\/" tests="4" failures="1" errors="0" skipped="0" time="[\d.]+">/);
    assert.match(xml, /<testcase name="pass#2" classname="local:a-1:good\/" time="[\d.]+"\/>/);
    assert.match(xml, /<testcase name="fail:two" classname="local:a-1:good\/" time="[\d.]+">\n      <failure message="Error executing local:a-1:good\/fail:two : \+ test 2 = 1" type="executing"><!\[CDATA\[/);
    assert.match(xml, /<out & about> ]]]]><!\[CDATA\[> /, 'CDATA ends are split');
    assert.doesNotMatch(xml, /\u0007/, 'control characters are dropped');
    assert.match(xml, /<testcase name="t" classname="local:b-1:bad\/" time="0.000">\n      <skipped message="aborted: Error preparing local:b-1:bad\/ : [^"]+"\/>/);
  } finally {
    removeProject(dir);
  }
});
