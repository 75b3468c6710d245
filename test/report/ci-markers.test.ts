/** CI log markers: GitHub Actions groups and annotations, the original's Travis folds and timers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { githubMarkers, travisMarkers } from '../../src/report/ci-markers.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const PROJECT = {
  'spread.yaml': 'project: ci\npath: /ci\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n        debug-each: |\n            echo suite debug info\n            echo more of it\n',
  'tests/broken/task.yaml': 'summary: fails\nexecute: |\n    echo 100% of the first line\n    for i in $(seq 12); do echo line $i; done\n    false\n',
  'tests/passes/task.yaml': 'summary: passes\nexecute: "true"\n',
};

test('GitHub Actions: the failure folded in a group, an annotation naming the job with the last lines; debug output folded, not annotated', async () => {
  const dir = makeProject(PROJECT);
  try {
    const r = await runSpread(['-seed=1'], dir, { GITHUB_ACTIONS: 'true' });
    assert.equal(r.code, 1);
    const group = /^::group::(Error executing local:this-host:tests\/broken \(\S+\))\n\d{4}-\S+ \S+ \1 : \n-----\n[\s\S]*?\n-----\n::endgroup::\n::error title=(.*)::(.*)\n/m.exec(r.stdout);
    assert.ok(group, r.stdout);
    assert.equal(group[2], 'spread%3A local%3Athis-host%3Atests/broken');
    const message = group[3]!.split('%0A');
    assert.equal(message[0], group[1]);
    assert.equal(message[1], '(...)', 'earlier lines are in the group only');
    assert.deepEqual(message.slice(-3), ['+ echo line 12', 'line 12', '+ false']);
    assert.equal(message.length, 12);
    assert.doesNotMatch(group[3]!, /\n/);
    assert.match(r.stdout, /^::group::Debug output for local:this-host:tests\/broken \(\S+\)\n.* : \n-----\n\+ echo suite debug info\nsuite debug info\n\+ echo more of it\nmore of it\n-----\n::endgroup::\n(?!::error)/m);
    assert.equal((r.stdout.match(/^::error /gm) ?? []).length, 1, 'one annotation: the failure');
    assert.match(r.stdout, /Successful tasks: 1\n.*Aborted tasks: 0\n.*Failed tasks: 1\n    - local:this-host:tests\/broken\n$/, 'the summary as always');
  } finally {
    removeProject(dir);
  }
});

test('Travis: every script timed, a multi-line failure folded and timed with ids of its own', async () => {
  const dir = makeProject(PROJECT);
  try {
    const r = await runSpread(['-seed=1'], dir, { TRAVIS: 'true' });
    assert.equal(r.code, 1);
    const lines = r.stdout.split('\n');
    const starts = lines.filter((l) => l.startsWith('travis_time:start:')).map((l) => l.slice('travis_time:start:'.length));
    const ends = lines.filter((l) => l.startsWith('travis_time:end:')).map((l) => /^travis_time:end:([0-9a-f]+):start=(\d+),finish=(\d+),duration=(\d+)$/.exec(l));
    assert.ok(ends.every((m) => m && BigInt(m[3]!) - BigInt(m[2]!) === BigInt(m[4]!)), 'end lines: start, finish, duration in ns');
    assert.deepEqual(ends.map((m) => m![1]).sort(), [...starts].sort(), 'every timer ends');
    // Each executing line follows its timer's start.
    for (const [i, l] of lines.entries()) if (/ Executing /.test(l)) assert.match(lines[i - 1]!, /^travis_time:start:[0-9a-f]+$/);
    const fold = /^travis_fold:start:fold-([0-9a-f]+)\ntravis_time:start:\1\n.* Error executing local:this-host:tests\/broken [^\n]*\n-----\n[\s\S]*?\n-----\ntravis_time:end:\1:[^\n]*\ntravis_fold:end:fold-\1\n\.\n/m.exec(r.stdout);
    assert.ok(fold, r.stdout);
  } finally {
    removeProject(dir);
  }
});

test('annotation text escapes what GitHub parses: % and newlines in the message; : and , in the title', () => {
  const text = githubMarkers().failure({ at: 0, message: 'Error x : 50%, done', text: 'T\n', context: 'a:b,c' });
  assert.equal(text, 'T\n::error title=spread%3A a%3Ab%2Cc::Error x : 50%25, done\n');
});

test('Travis ids pair a script start with its end; single-line failures are timed, not folded', () => {
  const m = travisMarkers();
  const start = m.scriptStart({ at: 1000, key: 'k' });
  const end = m.scriptEnd({ at: 1500, key: 'k' });
  assert.equal(start, `travis_time:start:${(1000n * 1_000_000n & 0xffffffffn).toString(16)}\n`);
  assert.equal(end, `travis_time:end:${(1000n * 1_000_000n & 0xffffffffn).toString(16)}:start=1000000000,finish=1500000000,duration=500000000\n`);
  assert.doesNotMatch(m.failure({ at: 1500, message: 'Error x : boom', text: 'T\n', context: 'c', startedAt: 1000 }), /travis_fold/);
});
