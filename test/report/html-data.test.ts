/** What the HTML report's data says about runs the page draws: repeats, level scripts, links. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { J, L, L_SIZE, R, R_SIZE, RUN_EXECUTE_FAILED } from '../../src/report/html/model.js';
import { readReportData } from '../../src/report/html/render.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

test('-repeat: each repeat is a run of its own on the timeline; suite scripts are there; artifacts link relative to the report', async () => {
  const dir = makeProject({
    'spread.yaml': 'project: repeats\npath: /repeats\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n        prepare: "true"\n        restore: "true"\n',
    'tests/again/task.yaml': 'summary: runs three times, fails the third\nartifacts: [count]\nprepare: "true"\nrestore: "true"\nexecute: |\n    echo x >> count\n    test $(wc -l < count) -lt 3\n',
  });
  try {
    const r = await runSpread(['-repeat=4', '-artifacts=art', '-html=out/r.html'], dir);
    assert.equal(r.code, 1);
    const data = readReportData(readFileSync(join(dir, 'out/r.html'), 'utf8'));
    const runs = Array.from({ length: data.runs.length / R_SIZE }, (_, i) => data.runs.slice(i * R_SIZE, (i + 1) * R_SIZE));
    assert.equal(runs.length, 3, 'stopped at the failing repeat');
    assert.deepEqual(runs.map((run) => run[R.Flags]), [0, 0, RUN_EXECUTE_FAILED]);
    for (const [a, b] of [[0, 1], [1, 2]] as const) assert.ok(runs[a]![R.T3]! <= runs[b]![R.T0]!, 'repeats follow each other');
    for (const run of runs) assert.ok(run[R.T0]! <= run[R.T1]! && run[R.T1]! <= run[R.T2]! && run[R.T2]! <= run[R.T3]!);
    const levels = Array.from({ length: data.levels.length / L_SIZE }, (_, i) => data.levels.slice(i * L_SIZE, (i + 1) * L_SIZE));
    assert.deepEqual(levels.map((l) => [l[L.Level], l[L.Verb], l[L.Ok]]), [[2, 0, 1], [2, 1, 1]], 'the suite prepare and restore');
    const job = data.jobs[0]!;
    assert.deepEqual([job[J.Runs], job[J.FailedRuns]], [3, 1]);
    assert.equal(data.artifacts[job[J.Artifacts]!]!.path, '../art/local%3Athis-host%3Atests/again', 'each path segment escaped (a colon would read as a URL scheme)');
  } finally {
    removeProject(dir);
  }
});
