/**
 * Report files through the real command: paths checked (and parent
 * directories made) before anything runs, and one report that cannot be
 * written at the end never stopping the other or the run.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const PROJECT = {
  'spread.yaml': 'project: files\npath: /files\nbackends:\n    local:\n        systems: [a-1]\nsuites:\n    tests/:\n        summary: tests\n',
  'tests/t/task.yaml': 'summary: t\nexecute: echo ran\n',
};

test('a report path that cannot be written stops spread before anything starts, in one line', async () => {
  const dir = makeProject(PROJECT);
  try {
    writeFileSync(join(dir, 'file'), '');
    mkdirSync(join(dir, 'adir'));
    const cases: [string, RegExp][] = [
      [`-junit=file/out.xml`, /^error: -junit=.*\/file\/out\.xml: cannot create directory .*\/file: (ENOTDIR|EEXIST)\n$/],
      [`-json=adir`, /^error: -json=.*\/adir: is a directory\n$/],
    ];
    for (const [flag, expected] of cases) {
      const r = await runSpread([flag], dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, expected);
      assert.equal(r.stdout, '', 'nothing started');
    }
    const made = await runSpread(['-json=a/b/c/out.json'], dir);
    assert.equal(made.code, 0, made.stderr);
    assert.ok(existsSync(join(dir, 'a/b/c/out.json')), 'parent directories are created');
  } finally {
    removeProject(dir);
  }
});

test('a report that cannot be written at the end is one line on stderr: the other report and the run go on', async () => {
  const dir = makeProject({
    ...PROJECT,
    // The task takes the JUnit report's place with a directory, after spread checked the path.
    'tests/t/task.yaml': `summary: t\nexecute: mkdir "$OUT"\nenvironment:\n    OUT: '$(HOST:echo "$PWD/out.xml")'\n`,
  });
  try {
    const r = await runSpread(['-junit=out.xml', '-json=out.json'], dir);
    assert.match(r.stdout, /Successful tasks: 1\n.*Aborted tasks: 0\n$/, 'the summary is printed');
    assert.equal(r.code, 1, 'a lost report makes the run unsuccessful');
    assert.match(r.stderr, /^error: cannot write JUnit report out\.xml: EISDIR[^\n]*\nerror: unsuccessful run\n$/);
    const report = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { totals: { passed: number } };
    assert.equal(report.totals.passed, 1, 'the JSON report was written all the same');
  } finally {
    removeProject(dir);
  }
});
