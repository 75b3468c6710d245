/** The parallel loader gives exactly what the sequential one gives: tasks, warnings, and the first error. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadProject, loadProjectParallel } from '../../src/project/load.js';
import { makeProject, removeProject, SHARED, SPREAD_YAML } from '../helpers/fixture.js';

test('snapd loads the same in parallel as sequentially', async () => {
  const file = join(SHARED, 'conformance/snapd/spread.yaml');
  const sequential = loadProject(file);
  const parallel = await loadProjectParallel(file);
  assert.ok(parallel.project.suites.flatMap((s) => s.tasks).length > 700, 'enough files for two threads');
  assert.deepEqual(parallel, sequential);
});

const many = (extra: Record<string, string>): Record<string, string> => {
  const files: Record<string, string> = { 'spread.yaml': SPREAD_YAML() };
  for (let i = 0; i < 300; i++) files[`tests/t${String(i).padStart(3, '0')}/task.yaml`] = 'summary: t\nexecute: "true"\n';
  return { ...files, ...extra };
};

test('an error in a file parsed by the worker is the same first error, with its file and line', async () => {
  const dir = makeProject(many({
    'tests/t290/task.yaml': 'summary: t\nkill-timeout: soon\n',
    'tests/t295/task.yaml': 'summary: t\nfrobnicate: 1\n',
    'tests/t299/task.yaml': 'execute: x\n',
  }));
  try {
    const file = join(dir, 'spread.yaml');
    assert.throws(() => loadProject(file), /^ConfigError: .*tests\/t290\/task\.yaml:2:15: kill-timeout must look like/);
    await assert.rejects(loadProjectParallel(file), /^ConfigError: .*tests\/t290\/task\.yaml:2:15: kill-timeout must look like/);
  } finally {
    removeProject(dir);
  }
});

test('warnings from both threads come in file order', async () => {
  const dir = makeProject(many({ 'tests/t010/task.yaml': 'summary: t\nfoo: 1\n', 'tests/t290/task.yaml': 'summary: t\nbar: 1\n' }));
  try {
    const file = join(dir, 'spread.yaml');
    const { warnings } = await loadProjectParallel(file);
    assert.deepEqual(warnings.map((w) => w.message), ['unknown key "foo" (it is ignored)', 'unknown key "bar" (it is ignored)']);
    assert.deepEqual(warnings, loadProject(file).warnings);
  } finally {
    removeProject(dir);
  }
});
