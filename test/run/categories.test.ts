/**
 * Every failure category of the summary (spec §5.3, §6), each provoked on a
 * system of its own (one worker each) by a $FAIL variable in the system's
 * environment, and the summary compared line by line with what the original
 * prints for the same events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';

const failIf = (what: string) => `'[ "$FAIL" != ${what} ]'`;
const system = (name: string, fail: string) => `            - ${name}:\n                environment:\n                    FAIL: ${fail}\n`;

const PROJECT = {
  'spread.yaml': `project: categories
path: /categories
prepare: ${failIf('project-prepare')}
restore: ${failIf('project-restore')}
backends:
    local:
        prepare: ${failIf('backend-prepare')}
        restore: ${failIf('backend-restore')}
        systems:
${system('a-1', 'task')}${system('b-1', 'suite-prepare')}${system('c-1', 'suite-restore')}${system('d-1', 'backend-prepare')}${system('e-1', 'backend-restore')}${system('f-1', 'project-prepare')}${system('g-1', 'project-restore')}
suites:
    tests/:
        summary: Tests
        prepare: ${failIf('suite-prepare')}
        restore: ${failIf('suite-restore')}
`,
  'tests/t-pass/task.yaml': 'summary: passes\npriority: 4\nexecute: "true"\n',
  'tests/t-fail/task.yaml': 'summary: execute fails\npriority: 3\nsystems: [a-1]\nexecute: "false"\n',
  'tests/t-prep/task.yaml': 'summary: prepare fails\npriority: 2\nsystems: [a-1]\nprepare: "false"\nexecute: "true"\n',
  'tests/t-rest/task.yaml': 'summary: restore fails\npriority: 1\nsystems: [a-1]\nexecute: "true"\nrestore: "false"\n',
};

test('the summary lists every failure category with the original\'s titles and entries', async () => {
  const dir = makeProject(PROJECT);
  try {
    const r = await runSpread(['-seed=7'], dir);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr, 'error: unsuccessful run\n');
    const summary = stripTime(r.stdout.slice(r.stdout.indexOf('Successful tasks:')));
    // t-rest is not successful (its restore failed) and t-prep not aborted
    // (its prepare failed): each job counts once (docs/reports.md).
    assert.equal(summary, `Successful tasks: 4
Aborted tasks: 3
Failed tasks: 1
    - local:a-1:tests/t-fail
Failed task prepare: 1
    - local:a-1:tests/t-prep
Failed task restore: 1
    - local:a-1:tests/t-rest
Failed suite prepare: 1
    - local:b-1:tests/
Failed suite restore: 1
    - local:c-1:tests/
Failed backend prepare: 1
    - local:d-1:local
Failed backend restore: 1
    - local:e-1:local
Failed project prepare: 1
    - local:f-1:project
Failed project restore: 1
    - local:g-1:project
`);
    for (const line of [
      'Error executing local:a-1:tests/t-fail (', 'Error preparing local:a-1:tests/t-prep (', 'Error restoring local:a-1:tests/t-rest (',
      'Error preparing local:b-1:tests/ (', 'Error restoring local:c-1:tests/ (', 'Error preparing local:d-1 (', 'Error restoring local:e-1 (',
      'Error preparing local:f-1 (', 'Error restoring local:g-1 (',
    ]) assert.ok(r.stdout.includes(line), `log has "${line}"`);
  } finally {
    removeProject(dir);
  }
});

test('a successful run exits 0 and prints the summary without failure sections', async () => {
  const dir = makeProject({ ...PROJECT, 'tests/t-fail/task.yaml': 'summary: x\nsystems: [a-1]\nexecute: "true"\n' });
  try {
    const r = await runSpread(['local:c-1', 'local:e-1:tests/t-pass'], dir);
    assert.equal(r.code, 1, 'c-1 and e-1 fail their restores');
    const ok = await runSpread(['local:a-1:tests/t-pass', 'local:a-1:tests/t-fail'], dir);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.stderr, '');
    assert.match(ok.stdout, /Successful tasks: 2\n.* Aborted tasks: 0\n$/);
  } finally {
    removeProject(dir);
  }
});

test('REBOOT on the local backend fails the script instead of rebooting this host', async () => {
  const dir = makeProject({
    'spread.yaml': 'project: noreboot\npath: /noreboot\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n',
    'tests/r/task.yaml': 'summary: reboots\nexecute: REBOOT\n',
  });
  try {
    const r = await runSpread([], dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /Error executing local:this-host:tests\/r \(.*\) : cannot reboot local:this-host \(.*\): local machines cannot be rebooted/);
  } finally {
    removeProject(dir);
  }
});

test('a backend type this version cannot run stops the run at the start, in one line naming it', async () => {
  const dir = makeProject({
    'spread.yaml': 'project: cloud\npath: /cloud\nbackends:\n    linode:\n        systems: [ubuntu-22.04-64]\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n',
    'tests/t/task.yaml': 'summary: t\nexecute: "true"\n',
  });
  try {
    const list = await runSpread(['-list'], dir);
    assert.equal(list.code, 0, 'listing needs no backend');
    const r = await runSpread([], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: backend "linode" has type "linode", which this version of spread cannot run yet (available: adhoc, local, docker, podman, lxd, qemu, google, openstack)\n');
    assert.equal(r.stdout, '', 'nothing started');
    const local = await runSpread(['local:'], dir);
    assert.equal(local.code, 0, 'jobs of other backends still run when selected');
  } finally {
    removeProject(dir);
  }
});
