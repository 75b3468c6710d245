/**
 * Anchors, aliases and merge keys as the original's YAML loader (yaml.v2)
 * resolves them, on projects shaped like the public ones that use them
 * (charmcraft, snapcraft, rockcraft, craft-application): aliased system
 * lists and environments, `<<: *docsuite` suites, anchors used across levels,
 * and where errors point when the bad value was reached through an alias.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadProject } from '../../src/project/load.js';
import { formatWarning } from '../../src/project/errors.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';
import type { FixtureFiles } from '../helpers/fixture.js';
import { matrixOf } from '../helpers/matrix.js';

const TASK = 'summary: a task\nexecute: echo ok\n';

/**
 * charmcraft's shape: google and openstack backends, an openstack-dev backend
 * that reuses the openstack systems and environment through aliases, and doc
 * suites that take `manual: true`, `systems:` and `kill-timeout:` from the
 * first one with `<<: *docsuite`. (Only openstack keys the loader already
 * knows are used: key, location, plan, halt-timeout.)
 */
const CHARMCRAFT_YAML = `project: charmcraft

path: /charmcraft
environment: &project-env
  PROJECT_PATH: /charmcraft
  SNAPD_TESTING_TOOLS: $PROJECT_PATH/tools/external/tools
  PATH: /snap/bin:$PATH:$SNAPD_TESTING_TOOLS
  CRAFT_DEBUG: 1  # exception tracebacks
  DEFAULT_BASE: &default-base jammy

exclude:
  - .git
  - .tox
  - .*_cache

backends:
  google:
    key: '$(HOST: echo "$SPREAD_GOOGLE_KEY")'
    location: snapd-spread/us-east1-b
    halt-timeout: 2h
    systems:
      - ubuntu-20.04-64:
          workers: 2
          storage: 40G
      - ubuntu-22.04-64:
          workers: 4
          storage: 40G
  openstack:
    type: openstack
    key: '$(HOST: echo "$SPREAD_OPENSTACK_PASSWORD")'
    location: charmcraft-ci/regionone
    plan: cpu4-ram8-disk50
    halt-timeout: 4h
    environment: &openstack-env
      HTTP_PROXY: http://squid.internal:3128
      HTTPS_PROXY: http://squid.internal:3128
    systems: &openstack-systems
      - ubuntu-22.04-64:
          image: ubuntu-22.04
          workers: 4
      - ubuntu-24.04-64:
          image: ubuntu-24.04
          workers: 4
  openstack-dev:
    type: openstack
    key: '$(HOST: echo "$SPREAD_OPENSTACK_PASSWORD")'
    location: charmcraft-dev/regionone
    manual: true
    environment: *openstack-env
    systems: *openstack-systems

prepare: |
  snap install charmcraft --classic --dangerous /charmcraft/*.snap

suites:
  docs/tutorial/code/: &docsuite
    summary: tutorial code from the documentation
    manual: true
    systems:
      - ubuntu-22.04-64
    kill-timeout: 30m
  docs/howto/code/:
    <<: *docsuite
    summary: how-to code from the documentation
  tests/spread/commands/:
    summary: simple charmcraft commands
  tests/spread/smoketests/:
    summary: basic charm builds on each base
    systems: [ubuntu-22.04-64, ubuntu-24.04-64]
    environment:
      <<: *project-env
      BASE/jammy: "22.04"
      BASE/noble: "24.04"
    variants: [*default-base]
  tests/spread/store/:
    summary: store commands (credentials needed)
    manual: true
    systems: [ubuntu-22.04-64]
`;

const CHARMCRAFT: FixtureFiles = {
  'spread.yaml': CHARMCRAFT_YAML,
  'docs/tutorial/code/first-charm/task.yaml': TASK,
  'docs/howto/code/pack/task.yaml': TASK,
  'docs/howto/code/upload/task.yaml': TASK,
  'tests/spread/commands/init/task.yaml': TASK,
  'tests/spread/commands/version/task.yaml': TASK,
  'tests/spread/smoketests/basic/task.yaml': TASK,
  'tests/spread/store/register/task.yaml': TASK,
};

async function list(files: FixtureFiles, args: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = makeProject(files);
  try {
    return await runSpread(['-list', ...args], dir);
  } finally {
    removeProject(dir);
  }
}

test('a charmcraft-shaped project lists exactly the jobs the original lists', async () => {
  // Derived by hand from the spec: no filter drops the manual backend
  // (openstack-dev), the manual suites (docs/*: manual comes through the merge
  // key; store); smoketests keeps only the variant named by *default-base.
  const r = await list(CHARMCRAFT);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, [
    'google:ubuntu-20.04-64:tests/spread/commands/init',
    'google:ubuntu-20.04-64:tests/spread/commands/version',
    'google:ubuntu-22.04-64:tests/spread/commands/init',
    'google:ubuntu-22.04-64:tests/spread/commands/version',
    'google:ubuntu-22.04-64:tests/spread/smoketests/basic:jammy',
    'openstack:ubuntu-22.04-64:tests/spread/commands/init',
    'openstack:ubuntu-22.04-64:tests/spread/commands/version',
    'openstack:ubuntu-22.04-64:tests/spread/smoketests/basic:jammy',
    'openstack:ubuntu-24.04-64:tests/spread/commands/init',
    'openstack:ubuntu-24.04-64:tests/spread/commands/version',
    'openstack:ubuntu-24.04-64:tests/spread/smoketests/basic:jammy',
    '',
  ].join('\n'));

  // docs/ names the manual doc suites; their systems come through the merge key.
  const docs = await list(CHARMCRAFT, ['docs/']);
  assert.equal(docs.stdout, [
    'google:ubuntu-22.04-64:docs/howto/code/pack',
    'google:ubuntu-22.04-64:docs/howto/code/upload',
    'google:ubuntu-22.04-64:docs/tutorial/code/first-charm',
    'openstack:ubuntu-22.04-64:docs/howto/code/pack',
    'openstack:ubuntu-22.04-64:docs/howto/code/upload',
    'openstack:ubuntu-22.04-64:docs/tutorial/code/first-charm',
    '',
  ].join('\n'));

  // The manual backend, named, has the aliased systems.
  const dev = await list(CHARMCRAFT, ['openstack-dev']);
  assert.equal(dev.stdout, [
    'openstack-dev:ubuntu-22.04-64:tests/spread/commands/init',
    'openstack-dev:ubuntu-22.04-64:tests/spread/commands/version',
    'openstack-dev:ubuntu-22.04-64:tests/spread/smoketests/basic:jammy',
    'openstack-dev:ubuntu-24.04-64:tests/spread/commands/init',
    'openstack-dev:ubuntu-24.04-64:tests/spread/commands/version',
    'openstack-dev:ubuntu-24.04-64:tests/spread/smoketests/basic:jammy',
    '',
  ].join('\n'));
});

test('aliased lists, maps and environments load as the anchored values; merge keys fill suites', async () => {
  const { project } = await matrixOf(CHARMCRAFT);
  const [google, openstack, dev] = project.backends;
  assert.deepEqual(dev!.systems.map((s) => [s.name, s.image, s.workers]), [['ubuntu-22.04-64', 'ubuntu-22.04', 4], ['ubuntu-24.04-64', 'ubuntu-24.04', 4]]);
  assert.deepEqual(dev!.systems.map((s) => s.backend), ['openstack-dev', 'openstack-dev']);
  assert.deepEqual(dev!.env, openstack!.env);
  assert.equal(dev!.manual, true);
  assert.equal(google!.systems.length, 2);
  const howto = project.suites.find((s) => s.name === 'docs/howto/code/')!;
  assert.equal(howto.summary, 'how-to code from the documentation');
  assert.equal(howto.manual, true);
  assert.deepEqual(howto.systems, ['ubuntu-22.04-64']);
  assert.equal(howto.killTimeout, 30 * 60_000);
  const smoke = project.suites.find((s) => s.name === 'tests/spread/smoketests/')!;
  assert.deepEqual(smoke.variants, ['jammy']);
  // A merge key inside environment: the merged variables in order, then the suite's own.
  assert.deepEqual(smoke.env.map(([k]) => k), ['PROJECT_PATH', 'SNAPD_TESTING_TOOLS', 'PATH', 'CRAFT_DEBUG', 'DEFAULT_BASE', 'BASE/jammy', 'BASE/noble']);
});

test('merge keys apply in written order, as yaml.v2 decodes: keys after << win, keys before lose, earlier maps of a list win', async () => {
  const { project } = await matrixOf({
    'spread.yaml': `project: p
path: /p
backends:
  lxd:
    systems: [ubuntu-22.04]
suites:
  a/: &a {summary: from a, priority: 1, manual: true}
  b/: &b {summary: from b, priority: 2, kill-timeout: 2m, environment: {X: b}}
  c/:
    summary: written before the merge
    <<: [*a, *b]
    priority: 5
  d/:
    <<: *b
    environment:
      <<: {Y: merged, X: merged}
      X: local
`,
    'a/t/task.yaml': TASK, 'b/t/task.yaml': TASK, 'c/t/task.yaml': TASK, 'd/t/task.yaml': TASK,
  });
  const c = project.suites.find((s) => s.name === 'c/')!;
  assert.equal(c.summary, 'from a');
  assert.equal(c.priority, 5);
  assert.equal(c.manual, true);
  assert.equal(c.killTimeout, 2 * 60_000);
  assert.deepEqual(c.env, [['X', 'b']]);
  const d = project.suites.find((s) => s.name === 'd/')!;
  assert.equal(d.summary, 'from b');
  // The suite's own environment replaces the merged one; inside it, X keeps its first position.
  assert.deepEqual(d.env, [['Y', 'merged'], ['X', 'local']]);
});

test('a top-level merge unions backends and suites with the file\'s own, as yaml.v2 decodes Go maps', async () => {
  const { project, jobs } = await matrixOf({
    'spread.yaml': `project: p
x-common: &common
  path: /from-merge
  backends:
    lxd:
      systems: [ubuntu-22.04]
  suites:
    merged/: {summary: from the merge}
<<: *common
suites:
  own/: {summary: written here}
`,
    'merged/t/task.yaml': TASK, 'own/t/task.yaml': TASK,
  });
  assert.equal(project.path, '/from-merge');
  assert.deepEqual(project.suites.map((s) => s.name), ['merged/', 'own/']);
  assert.deepEqual(jobs.map((j) => j.name), ['lxd:ubuntu-22.04:merged/t', 'lxd:ubuntu-22.04:own/t']);
});

test('aliases in task.yaml: a script reused, an anchored environment, a scalar alias as a variant name', async () => {
  const { jobs } = await matrixOf({
    'spread.yaml': 'project: p\npath: /p\nbackends:\n  lxd:\n    systems: [ubuntu-22.04]\nsuites:\n  s/:\n    summary: s\n',
    's/t/task.yaml': `summary: t
environment:
  MODE/fast: &fast fast
  MODE/slow: slow
variants: [*fast]
prepare: &setup |
  mkdir -p /tmp/x
restore: *setup
execute: echo $MODE
`,
  });
  assert.deepEqual(jobs.map((j) => j.name), ['lxd:ubuntu-22.04:s/t:fast']);
  assert.equal(jobs[0]!.task.prepare, 'mkdir -p /tmp/x');
  assert.equal(jobs[0]!.task.restore, 'mkdir -p /tmp/x');
});

test('an anchor defined at one level is used at others of the same file: project, backend, system, suite', async () => {
  const { project } = await matrixOf({
    'spread.yaml': `project: p
path: /p
environment:
  PROXY: &proxy http://proxy:3128
backends:
  lxd:
    environment: &lxd-env {A: 1, HTTP_PROXY: *proxy}
    systems:
      - ubuntu-22.04:
          environment: *lxd-env
suites:
  s/:
    summary: s
    environment:
      HTTPS_PROXY: *proxy
`,
    's/t/task.yaml': TASK,
  });
  assert.deepEqual(project.backends[0]!.systems[0]!.env, [['A', '1'], ['HTTP_PROXY', 'http://proxy:3128']]);
  assert.deepEqual(project.suites[0]!.env, [['HTTPS_PROXY', 'http://proxy:3128']]);
});

/** Load a project and return the one-line error, or the warnings. */
function load(files: FixtureFiles): { error?: string; warnings: string[] } {
  const dir = makeProject(files);
  try {
    const { warnings } = loadProject(join(dir, 'spread.yaml'));
    return { warnings: warnings.map(formatWarning) };
  } catch (err) {
    return { error: (err as Error).message, warnings: [] };
  } finally {
    removeProject(dir);
  }
}

const lineOf = (text: string, marker: string): number => text.split('\n').findIndex((l) => l.includes(marker)) + 1;

test('errors and warnings through aliases point at the value as written and name the alias that used it', () => {
  const bad = `project: p
path: /p
x-lists:
  mixed: &mixed [a, +b] #value
x-defaults: &defaults
  summary: docs
  kil-timeout: 1m #typo
backends:
  lxd:
    systems: [ubuntu-22.04]
suites:
  docs/:
    <<: *defaults #merge
  tests/:
    summary: t
    variants: *mixed #alias
`;
  const mixed = load({ 'spread.yaml': bad, 'docs/t/task.yaml': TASK, 'tests/t/task.yaml': TASK });
  const valueLine = lineOf(bad, '#value');
  assert.equal(mixed.error, `spread.yaml:${valueLine}:17: suite tests/ variants list mixes plain entries with +/- entries (use only names to replace the inherited list, or only +name/-name to edit it) (reached through *mixed at spread.yaml:${lineOf(bad, '#alias')}:15)`);

  const good = bad.replace('    variants: *mixed #alias\n', '');
  const warned = load({ 'spread.yaml': good, 'docs/t/task.yaml': TASK, 'tests/t/task.yaml': TASK });
  assert.equal(warned.error, undefined);
  const typo = warned.warnings.filter((w) => w.includes('kil-timeout'));
  assert.deepEqual(typo, [`spread.yaml:${lineOf(good, '#typo')}:3: unknown key "kil-timeout" in suites.docs/ (did you mean "kill-timeout"?) (reached through <<: *defaults at spread.yaml:${lineOf(good, '#merge')}:9)`]);

  // A bad system name reached through an aliased list item.
  const item = `project: p
path: /p
x-names:
  - &odd Ubuntu_22 #value
backends:
  lxd:
    systems: [ubuntu-22.04, *odd] #alias
suites:
  s/: {summary: s}
`;
  assert.match(load({ 'spread.yaml': item }).error ?? '', new RegExp(`^spread.yaml:${lineOf(item, '#value')}:10: backend "lxd" refers to invalid system name: "Ubuntu_22" .*\\(reached through \\*odd at spread.yaml:${lineOf(item, '#alias')}:29\\)$`));
});

test('an alias bomb (billion laughs) is refused with one line, quickly', { timeout: 20_000 }, async () => {
  const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(', ')}]`);
  }
  const r = await list({ 'spread.yaml': `project: p\npath: /p\nx-bomb:\n${levels.map((l) => `  ${l}\n`).join('')}backends:\n  lxd:\n    systems: [ubuntu-22.04]\nsuites:\n  s/: {summary: s}\n`, 's/t/task.yaml': TASK });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: spread\.yaml:\d+:\d+: invalid YAML: too much alias expansion: .*alias bomb.*\n$/);
});

test('an anchor that contains itself, and a merge of something that is not a map, are refused at the place written', async () => {
  const self = await list({ 'spread.yaml': 'project: p\npath: /p\nx: &x {a: *x}\nbackends:\n  lxd:\n    systems: [ubuntu-22.04]\nsuites:\n  s/: {summary: s}\n' });
  assert.equal(self.stderr, 'error: spread.yaml:3:11: invalid YAML: anchor &x contains an alias to itself (*x); a value cannot include itself\n');
  const scalar = await list({ 'spread.yaml': 'project: p\npath: /p\nbackends:\n  lxd:\n    systems: [ubuntu-22.04]\nsuites:\n  s/:\n    <<: 5\n    summary: s\n' });
  assert.equal(scalar.stderr, 'error: spread.yaml:8:9: invalid YAML: a merge key (<<) needs a map, an alias of a map, or a list of them\n');
});
