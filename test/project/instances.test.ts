/**
 * The `instances:` task key (multi-machine tasks, docs/tasks.md): its two
 * forms, what is refused with file:line, the load-time check against the
 * workers of every system the task runs on, and `-list`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandJobs } from '../../src/project/expand.js';
import { loadProject } from '../../src/project/load.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const spreadYaml = (workers: string) => `project: demo
path: /remote/demo
backends:
    adhoc:
        allocate: ADDRESS 127.0.0.1
        systems:
            - ubuntu-16.04:
                workers: ${workers}
            - debian-12:
                workers: 1
suites:
    tests/:
        summary: tests
        systems: [ubuntu-16.04]
`;

async function withTask<T>(task: string, use: (dir: string) => Promise<T> | T, workers = '3'): Promise<T> {
  const dir = makeProject({ 'spread.yaml': spreadYaml(workers), 'tests/cluster/task.yaml': task, 'tests/plain/task.yaml': 'summary: plain\nexecute: "true"\n' });
  try {
    return await use(dir);
  } finally {
    removeProject(dir);
  }
}

test('instances: N and instances: {role: count} give the count and each instance\'s role', async () => {
  await withTask('summary: s\ninstances: 3\nexecute: "true"\n', (dir) => {
    const task = loadProject(`${dir}/spread.yaml`).project.suites[0]!.tasks[0]!;
    assert.equal(task.instances?.count, 3);
    assert.deepEqual(task.instances?.roles, []);
    assert.deepEqual(task.instances?.where, { file: 'tests/cluster/task.yaml', line: 2, column: 12 });
  });
  await withTask('summary: s\ninstances:\n    server: 1\n    client: 2\nexecute: "true"\n', (dir) => {
    const task = loadProject(`${dir}/spread.yaml`).project.suites[0]!.tasks[0]!;
    assert.equal(task.instances?.count, 3);
    assert.deepEqual(task.instances?.roles, ['server', 'client', 'client']);
  });
  await withTask('summary: s\ninstances: 1\nexecute: "true"\n', (dir) => {
    assert.equal(loadProject(`${dir}/spread.yaml`).project.suites[0]!.tasks[0]!.instances, undefined, 'one instance is an ordinary task');
  });
});

test('bad instances values are refused with file:line', async () => {
  const cases: [task: string, message: RegExp][] = [
    ['instances: 0', /^error: tests\/cluster\/task\.yaml:2:12: instances must be >= 1$/],
    ['instances: many', /^error: tests\/cluster\/task\.yaml:2:12: instances must be a whole number or a map of keys to values$/],
    ['instances: {Server: 1}', /^error: tests\/cluster\/task\.yaml:2:\d+: tests\/cluster has invalid role name "Server" in instances \(use lower case letters/],
    ['instances: {server: 0}', /^error: tests\/cluster\/task\.yaml:2:\d+: /],
    ['instances: {}', /^error: tests\/cluster\/task\.yaml:2:12: tests\/cluster has no roles in instances/],
  ];
  for (const [line, message] of cases) {
    await withTask(`summary: s\n${line}\nexecute: "true"\n`, async (dir) => {
      const r = await runSpread(['-list'], dir);
      assert.equal(r.code, 1, line);
      assert.match(r.stderr.trim(), message, line);
    });
  }
});

test('a system with fewer workers than the task\'s instances is a load-time error naming the task, file and line', async () => {
  await withTask('summary: s\ninstances: 3\nexecute: "true"\n', async (dir) => {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: tests/cluster/task.yaml:2:12: tests/cluster runs on 3 machines at once (instances) but system adhoc:ubuntu-16.04 has 2 workers ' +
      '(set workers: 3 or more on the system, or leave it out of the task\'s systems)\n');
    const run = await runSpread(['tests/plain'], dir);
    assert.equal(run.code, 1, 'a run fails the same way before allocating anything');
    assert.match(run.stderr, /tests\/cluster runs on 3 machines at once/);
  }, '2');
  // Only the systems the task runs on count: debian-12 has one worker but the suite leaves it out.
  await withTask('summary: s\ninstances: 3\nexecute: "true"\n', (dir) => {
    assert.equal(expandJobs(loadProject(`${dir}/spread.yaml`).project).length, 2);
  });
});

test('-list shows a multi-machine job once, with its instance count', async () => {
  await withTask('summary: s\ninstances: {server: 1, client: 2}\nexecute: "true"\n', async (dir) => {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'adhoc:ubuntu-16.04:tests/cluster (3 instances)\nadhoc:ubuntu-16.04:tests/plain\n');
  });
});
