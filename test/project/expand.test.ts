import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jobEnv } from '../../src/project/job-env.js';
import { matrixOf, namesOf } from '../helpers/matrix.js';

const TASK = 'summary: a task\nexecute: echo ok\n';

test('jobs are backends x systems x tasks, named backend:system:suite/task (spec §3.1, §4.1)', async () => {
  const names = await namesOf({
    'spread.yaml': `project: p
path: /p
backends:
    one:
        type: adhoc
        allocate: ADDRESS x
        systems: [ubuntu-16.04, debian-9]
    two:
        type: lxd
        systems: [ubuntu-16.04]
suites:
    tests/main/:
        summary: s
`,
    'tests/main/a/task.yaml': TASK,
    'tests/main/b/task.yaml': TASK,
    'tests/main/not-a-task/readme.txt': 'no task.yaml here',
  });
  assert.deepEqual(names, [
    'one:debian-9:tests/main/a', 'one:debian-9:tests/main/b',
    'one:ubuntu-16.04:tests/main/a', 'one:ubuntu-16.04:tests/main/b',
    'two:ubuntu-16.04:tests/main/a', 'two:ubuntu-16.04:tests/main/b',
  ]);
});

const TWO_BACKENDS = `project: p
path: /p
backends:
    lxd:
        systems: [ubuntu-16.04, ubuntu-18.04, debian-9]
    qemu:
        systems: [ubuntu-16.04, fedora-30]
`;

test('suite and task lists edit systems and backends, with globs; unknown systems are skipped', async () => {
  const names = await namesOf({
    'spread.yaml': `${TWO_BACKENDS}suites:
    s1/:
        summary: s
        systems: [ubuntu-*]
    s2/:
        summary: s
        backends: [qemu]
        systems: [-fedora-30]
`,
    's1/plain/task.yaml': TASK,
    's1/minus/task.yaml': `${TASK}systems: [-ubuntu-18.04]\n`,
    's1/plus/task.yaml': `${TASK}systems: [+debian-9]\n`,
    's1/only/task.yaml': `${TASK}backends: [lxd]\nsystems: [ubuntu-18.04, no-such-1]\n`,
    's2/t/task.yaml': TASK,
  });
  assert.deepEqual(names, [
    'lxd:debian-9:s1/plus',
    'lxd:ubuntu-16.04:s1/minus', 'lxd:ubuntu-16.04:s1/plain', 'lxd:ubuntu-16.04:s1/plus',
    'lxd:ubuntu-18.04:s1/only', 'lxd:ubuntu-18.04:s1/plain', 'lxd:ubuntu-18.04:s1/plus',
    'qemu:ubuntu-16.04:s1/minus', 'qemu:ubuntu-16.04:s1/plain', 'qemu:ubuntu-16.04:s1/plus',
    'qemu:ubuntu-16.04:s2/t',
  ]);
});

test('variants: one flat axis from env suffixes of every level, edited by variants lists (spec §4.1)', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
environment:
    P/a: pa
backends:
    lxd:
        environment:
            B/b: bb
        systems:
            - ubuntu-16.04:
                variants: [+c]
suites:
    s/:
        summary: s
        environment:
            S/d: sd
`,
    's/all/task.yaml': TASK,
    's/minus/task.yaml': `${TASK}variants: [-a, -c]\n`,
    's/plain/task.yaml': `${TASK}variants: [b, z]\n`,
    's/glob/task.yaml': `${TASK}variants: ["-[ab]"]\nenvironment:\n    T/e: te\n`,
    's/none/task.yaml': `${TASK}variants: ["-*"]\n`,
  });
  assert.deepEqual(m.jobs.map((j) => j.name), [
    'lxd:ubuntu-16.04:s/all:a', 'lxd:ubuntu-16.04:s/all:b', 'lxd:ubuntu-16.04:s/all:c', 'lxd:ubuntu-16.04:s/all:d',
    'lxd:ubuntu-16.04:s/glob:c', 'lxd:ubuntu-16.04:s/glob:d', 'lxd:ubuntu-16.04:s/glob:e',
    'lxd:ubuntu-16.04:s/minus:b', 'lxd:ubuntu-16.04:s/minus:d',
    'lxd:ubuntu-16.04:s/plain:b', 'lxd:ubuntu-16.04:s/plain:z',
  ], 'an emptied variant set gives no jobs (s/none)');
});

test('the empty variant is dropped only when there are others; samples get #N in numeric order', async () => {
  const names = await namesOf({
    'spread.yaml': `project: p\npath: /p\nbackends:\n    lxd:\n        systems: [ubuntu-16.04]\nsuites:\n    s/:\n        summary: s\n`,
    's/plain/task.yaml': TASK,
    's/sampled/task.yaml': `${TASK}samples: 11\n`,
    's/negative/task.yaml': `${TASK}samples: -1\n`,
    's/one/task.yaml': `${TASK}samples: 1\n`,
  });
  assert.deepEqual(names, [
    'lxd:ubuntu-16.04:s/one', 'lxd:ubuntu-16.04:s/plain',
    ...Array.from({ length: 11 }, (_, i) => `lxd:ubuntu-16.04:s/sampled#${i + 1}`),
  ]);
});

test('priority is the first set value of task, suite, system, backend', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
backends:
    lxd:
        priority: 1
        systems:
            - ubuntu-16.04:
                priority: 2
            - ubuntu-18.04
suites:
    s/:
        summary: s
    t/:
        summary: t
        priority: 3
`,
    's/a/task.yaml': TASK,
    's/b/task.yaml': `${TASK}priority: -5\n`,
    't/c/task.yaml': TASK,
  });
  const prio = Object.fromEntries(m.jobs.map((j) => [j.name, j.priority]));
  assert.deepEqual(prio, {
    'lxd:ubuntu-16.04:s/a': 2, 'lxd:ubuntu-16.04:s/b': -5, 'lxd:ubuntu-16.04:t/c': 3,
    'lxd:ubuntu-18.04:s/a': 1, 'lxd:ubuntu-18.04:s/b': -5, 'lxd:ubuntu-18.04:t/c': 3,
  });
});

const MANUAL = {
  'spread.yaml': `project: spread
backends:
    lxd-a:
        type: lxd
        systems:
            - ubuntu-16.04-a:
                image: ubuntu-16.04
            - ubuntu-16.04-m:
                image: ubuntu-16.04
                manual: true
    lxd-m:
        type: lxd
        systems:
            - ubuntu-16.04-a:
                image: ubuntu-16.04
            - ubuntu-16.04-m:
                image: ubuntu-16.04
                manual: true
        manual: true
path: /home/test
suites:
    checks-a/:
        summary: Verification tasks.
    checks-m/:
        summary: Verification tasks.
        manual: true
`,
  'checks-a/task-a/task.yaml': TASK,
  'checks-a/task-m/task.yaml': `${TASK}manual: true\n`,
  'checks-m/task-a/task.yaml': TASK,
  'checks-m/task-m/task.yaml': `${TASK}manual: true\n`,
};

test('manual selection per dimension (spec §3.3, the original tests/manual)', async () => {
  const cases: [string[], string[]][] = [
    [[], ['lxd-a:ubuntu-16.04-a:checks-a/task-a']],
    [['lxd-m'], ['lxd-m:ubuntu-16.04-a:checks-a/task-a']],
    [['lxd-...'], ['lxd-a:ubuntu-16.04-a:checks-a/task-a']],
    [['ubuntu-16.04-m'], ['lxd-a:ubuntu-16.04-m:checks-a/task-a']],
    [['ubuntu-...'], ['lxd-a:ubuntu-16.04-a:checks-a/task-a']],
    [['checks-m/'], ['lxd-a:ubuntu-16.04-a:checks-m/task-a']],
    [['checks-.../'], ['lxd-a:ubuntu-16.04-a:checks-a/task-a']],
    [['/task-m'], ['lxd-a:ubuntu-16.04-a:checks-a/task-m']],
    [['/task-...'], ['lxd-a:ubuntu-16.04-a:checks-a/task-a']],
    [['lxd-m:ubuntu-16.04-m:checks-m/task-m'], ['lxd-m:ubuntu-16.04-m:checks-m/task-m']],
  ];
  for (const [args, expected] of cases) assert.deepEqual(await namesOf(MANUAL, args), expected, `-list ${args.join(' ')}`);
});

test('no jobs left is an error, worded as the original', async () => {
  await assert.rejects(namesOf(MANUAL, ['nothing']), /^ConfigError: nothing matches provider filter$/m);
  const none = { ...MANUAL, 'checks-a/task-a/task.yaml': `${TASK}manual: true\n`, 'checks-m/task-a/task.yaml': `${TASK}manual: true\n` };
  await assert.rejects(namesOf(none), /cannot find any tasks/);
});

test('the envs cascade of the original tests/envs: references, variant overrides at every level', async () => {
  const level = (name: string, extra = '') => `${name}_ONE: ${name.toLowerCase()}\n${extra}${name}_VAR/a,b: ${name.toLowerCase()}/a,b\n${name}_VAR/c: ${name.toLowerCase()}/c\n`;
  const indent = (text: string, n: number) => text.replace(/^/gm, ' '.repeat(n)).trimEnd();
  const m = await matrixOf({
    'spread.yaml': `project: spread
environment:
${indent(level('PROJECT'), 4)}
backends:
    lxd:
        environment:
${indent(level('BACKEND'), 12)}
        systems:
            - ubuntu-16.04:
                environment:
${indent(level('SYSTEM'), 20)}
path: /home/test
suites:
    checks/:
        summary: Verification tasks.
        environment:
${indent(level('SUITE'), 12)}
`,
    'checks/main/task.yaml': `summary: s\nenvironment:\n${indent(level('TASK', 'TASK_ALL: $PROJECT_ONE $TASK_ONE\n'), 4)}\nexecute: 'true'\n`,
  });
  assert.deepEqual(m.jobs.map((j) => j.variant), ['a', 'b', 'c']);
  const envOf = (variant: string) => new Map(jobEnv(m.jobs.find((j) => j.variant === variant)!, m.evaluated));
  for (const [variant, suffix] of [['a', 'a,b'], ['b', 'a,b'], ['c', 'c']] as const) {
    const env = envOf(variant);
    for (const level of ['PROJECT', 'BACKEND', 'SYSTEM', 'SUITE', 'TASK']) {
      assert.equal(env.get(`${level}_VAR`), `${level.toLowerCase()}/${suffix}`);
      assert.equal(env.get(`${level}_ONE`), level.toLowerCase());
    }
    assert.equal(env.get('TASK_ALL'), '$PROJECT_ONE $TASK_ONE', 'references stay for the remote shell');
    assert.ok(![...env.keys()].some((k) => k.includes('/')), 'no suffixed key survives');
  }
  const keys = [...envOf('a').keys()];
  assert.deepEqual(keys.slice(0, 9), ['SPREAD_JOB', 'SPREAD_PROJECT', 'SPREAD_PATH', 'SPREAD_BACKEND', 'SPREAD_SYSTEM', 'SPREAD_SUITE', 'SPREAD_TASK', 'SPREAD_VARIANT', 'SPREAD_SAMPLE']);
  assert.ok(keys.indexOf('PROJECT_ONE') < keys.indexOf('BACKEND_ONE') && keys.indexOf('SUITE_ONE') < keys.indexOf('TASK_ONE'));
  assert.equal(envOf('c').get('SPREAD_JOB'), 'lxd:ubuntu-16.04:checks/main:c');
});

test('$(HOST:...) runs on this host once per command and fills the environment', async () => {
  const counter = join(mkdtempSync(join(tmpdir(), 'spread-host-')), 'runs');
  process.env['SPREAD_TEST_X'] = 'hello';
  const cmd = `$(HOST:echo "$SPREAD_TEST_X"; echo run >> ${counter})`;
  const m = await matrixOf({
    'spread.yaml': `project: p
path: $(HOST:echo /from/host/)
environment:
    A: '${cmd}'
    B: 'x-${cmd}-y $NOT_HOST'
backends:
    lxd:
        environment:
            C: '${cmd}'
        systems: [ubuntu-16.04]
suites:
    s/:
        summary: s
`,
    's/t/task.yaml': TASK,
  });
  const env = new Map(jobEnv(m.jobs[0]!, m.evaluated));
  assert.equal(m.evaluated.remotePath, '/from/host', 'the path is cleaned');
  assert.equal(env.get('SPREAD_PATH'), '/from/host');
  assert.equal(env.get('A'), 'hello');
  assert.equal(env.get('B'), 'x-hello-y $NOT_HOST', 'only HOST commands are expanded here');
  assert.equal(env.get('C'), 'hello');
  assert.equal(readFileSync(counter, 'utf8'), 'run\n', 'the command ran once for three uses');
});

test('a failing $(HOST:...) names the command, the level and the error', async () => {
  await assert.rejects(matrixOf({
    'spread.yaml': `project: p\npath: /p\nbackends:\n    lxd:\n        systems: [ubuntu-16.04]\nsuites:\n    s/:\n        summary: s\n        environment:\n            X: $(HOST:echo oops >&2; echo more >&2; exit 3)\n`,
    's/t/task.yaml': TASK,
  }), /spread\.yaml:\d+:\d+: \$\(HOST:echo oops >&2; echo more >&2; exit 3\) in suite s\/ environment \(X\) returned error: oops; more$/);
});

test('system usernames and whole-reference passwords are expanded; other passwords stay literal', async () => {
  const m = await matrixOf({
    'spread.yaml': `project: p
path: /p
environment:
    USER_NAME: $(HOST:echo tester)
backends:
    adhoc:
        allocate: ADDRESS x
        environment:
            PASS: secret
        systems:
            - ubuntu-16.04:
                username: u-$USER_NAME
                password: $PASS
            - debian-9:
                password: a$PASS
suites:
    s/:
        summary: s
`,
    's/t/task.yaml': TASK,
  });
  const [ubuntu, debian] = m.project.backends[0]!.systems;
  assert.deepEqual(m.evaluated.credentials(ubuntu!), { username: 'u-tester', password: 'secret' });
  assert.deepEqual(m.evaluated.credentials(debian!), { username: '', password: 'a$PASS' });
});
