/** Loading rules of spec §1 not covered by the matrix and bad-input tests. */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findProjectFile, loadProject } from '../../src/project/load.js';
import { makeProject, removeProject, runSpread, SPREAD_YAML } from '../helpers/fixture.js';
import { matrixOf } from '../helpers/matrix.js';

const TASK = 'summary: t\nexecute: "true"\n';

test('the project file is found walking up; spread.yaml wins over .spread.yaml in one directory', () => {
  const dir = makeProject({ '.spread.yaml': SPREAD_YAML(), 'tests/a/task.yaml': TASK, 'sub/deeper/x': '' });
  try {
    assert.equal(findProjectFile(join(dir, 'sub/deeper')), join(dir, '.spread.yaml'));
    const both = makeProject({ 'spread.yaml': SPREAD_YAML(), '.spread.yaml': SPREAD_YAML() });
    assert.equal(findProjectFile(both), join(both, 'spread.yaml'));
    removeProject(both);
  } finally {
    removeProject(dir);
  }
});

test('spread runs from a subdirectory of the project', async () => {
  const dir = makeProject({ 'spread.yaml': SPREAD_YAML(), 'tests/a/task.yaml': TASK });
  try {
    mkdirSync(join(dir, 'tests/a/inner'));
    const r = await runSpread(['-list'], join(dir, 'tests/a/inner'));
    assert.equal(r.stdout, 'lxd:ubuntu-16.04:tests/a\n');
  } finally {
    removeProject(dir);
  }
});

test('string fields keep the literal YAML text; null is empty; scripts are trimmed but execute is not', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
environment:
    VERSION: 1.10
    ANSWER: yes
    OCTAL: 0755
    EMPTY: ~
    QUOTED: "1.0"
backends:
    lxd:
        systems: [ubuntu-16.04]
prepare: |

    echo prepared

suites:
    s/:
        summary: "  spaced summary  "
`,
    's/t/task.yaml': 'summary: t\nexecute: |\n\n    echo run\n\n',
  });
  assert.deepEqual(m.project.env, [['VERSION', '1.10'], ['ANSWER', 'yes'], ['OCTAL', '0755'], ['EMPTY', ''], ['QUOTED', '1.0']]);
  assert.equal(m.project.prepare, 'echo prepared');
  assert.equal(m.project.suites[0]!.summary, 'spaced summary');
  assert.equal(m.jobs[0]!.task.execute, '\necho run\n', 'execute is trimmed only when it runs');
});

test('backend and system fields: type from the name, key evaluated and trimmed, plan and storage cascade, workers 0 is 1, image defaults to the name, a repeated system keeps the last, variants sorted', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
backends:
    google:
        key: "$(HOST:echo ' secret ')"
        plan: n1-standard-2
        storage: 20G
        variants: [zeta, alpha]
        systems:
            - ubuntu-16.04:
                workers: 0
            - ubuntu-18.04:
                plan: e2-small
                storage: 10G
                image: custom-image
            - ubuntu-16.04:
                workers: 3
suites:
    s/:
        summary: s
`,
    's/t/task.yaml': TASK,
  });
  const google = m.project.backends[0]!;
  assert.equal(google.type, 'google');
  assert.equal(m.evaluated.key(google), 'secret');
  assert.deepEqual(google.variants, ['alpha', 'zeta']);
  assert.deepEqual(google.systems.map((s) => [s.name, s.workers, s.plan, s.storage, s.image]), [
    ['ubuntu-18.04', 1, 'e2-small', 10 * 1024 ** 3, 'custom-image'],
    ['ubuntu-16.04', 3, 'n1-standard-2', 20 * 1024 ** 3, 'ubuntu-16.04'],
  ]);
});

test('include, exclude and rename expand $VAR and $(HOST:...) against the project environment', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
environment:
    PREFIX: snapd-2.62/
    TOP: $(HOST:echo src)
include: [$TOP, docs]
exclude: [$TOP/*.o]
rename: ["s,^,$PREFIX,S"]
backends:
    lxd:
        systems: [ubuntu-16.04]
suites:
    s/:
        summary: s
`,
    's/t/task.yaml': TASK,
  });
  assert.deepEqual(m.evaluated.include, ['src', 'docs']);
  assert.deepEqual(m.evaluated.exclude, ['src/*.o']);
  assert.deepEqual(m.evaluated.rename, ['s,^,snapd-2.62/,S']);
});

test('a field at a level that does not have it is an unknown key (spec §1.7)', () => {
  const dir = makeProject({
    'spread.yaml': `${SPREAD_YAML('        samples: 3\n')}variants: [a]\npriority: 3\n`,
    'tests/a/task.yaml': `${TASK}prepare-each: x\nworkers: 2\n`,
  });
  try {
    const { warnings } = loadProject(join(dir, 'spread.yaml'));
    const keys = warnings.map((w) => /unknown key "([^"]+)"/.exec(w.message)?.[1]).sort();
    assert.deepEqual(keys, ['prepare-each', 'priority', 'samples', 'variants', 'workers']);
    assert.throws(() => loadProject(join(dir, 'spread.yaml'), { strict: true }), /unknown key/);
  } finally {
    removeProject(dir);
  }
});

test('a number, boolean or date where text or a script is expected is read as the text written, as the original reads it', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
backends:
    lxd:
        systems: [ubuntu-16.04]
prepare: 3.10
suites:
    s/:
        summary: 2024
        restore: yes
`,
    's/t/task.yaml': 'summary: 2024-01-31\ndetails: no\nexecute: true\nprepare: 0x10\nartifacts: [1.50]\nvariants: [~]\n',
  });
  assert.equal(m.project.prepare, '3.10');
  assert.equal(m.project.suites[0]!.summary, '2024');
  assert.equal(m.project.suites[0]!.restore, 'yes');
  const task = m.project.suites[0]!.tasks[0]!;
  assert.deepEqual([task.summary, task.details, task.execute, task.prepare, task.artifacts], ['2024-01-31', 'no', 'true', '0x10', ['1.50']]);
});
