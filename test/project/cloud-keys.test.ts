/**
 * The openstack backend keys of upstream 32cad07 (spec §13) and the google
 * key forms: loaded without warnings under -strict, the system-level
 * networks/groups inheritance, and -list on a craft-style project.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadProject } from '../../src/project/load.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const OPENSTACK = `project: craft
path: /root/craft
backends:
    openstack-dev:
        type: openstack
        endpoint: https://keystone.example:5000/v3
        account: spread-user
        key: $(HOST:echo secret)
        location: craft-project/RegionOne
        plan: m1.large
        halt-timeout: 2h
        networks: [net-a, net-b]
        groups: [default, ssh]
        systems:
            - ubuntu-22.04-64:
                image: ubuntu-jammy
                workers: 2
            - ubuntu-24.04-64:
                networks: [net-c]
            - centos-9-64:
                groups: [only-this]
                plan: m1.small
suites:
    tests/:
        summary: Tests
`;

test('openstack keys load under -strict, and a system inherits networks and groups only when its own list is empty', () => {
  const dir = makeProject({ 'spread.yaml': OPENSTACK, 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const { project, warnings } = loadProject(join(dir, 'spread.yaml'), { strict: true });
    assert.deepEqual(warnings, []);
    const b = project.backends[0]!;
    assert.equal(b.type, 'openstack');
    assert.equal(b.endpoint, 'https://keystone.example:5000/v3');
    assert.equal(b.account, "spread-user");
    assert.equal(b.location, 'craft-project/RegionOne');
    assert.equal(b.haltTimeout, 2 * 3600_000);
    assert.deepEqual(b.networks, ['net-a', 'net-b']);
    assert.deepEqual(b.groups, ['default', 'ssh']);
    const [jammy, noble, centos] = b.systems;
    assert.deepEqual([jammy!.networks, jammy!.groups, jammy!.plan, jammy!.workers], [['net-a', 'net-b'], ['default', 'ssh'], 'm1.large', 2]);
    // Replaced, not merged.
    assert.deepEqual([noble!.networks, noble!.groups], [['net-c'], ['default', 'ssh']]);
    assert.deepEqual([centos!.networks, centos!.groups, centos!.plan], [['net-a', 'net-b'], ['only-this'], 'm1.small']);
  } finally {
    removeProject(dir);
  }
});

test('a system without lists under a backend without lists has none; a misspelt key is still a warning', () => {
  const yaml = OPENSTACK.replace('        networks: [net-a, net-b]\n        groups: [default, ssh]\n', '        netwroks: [x]\n');
  const dir = makeProject({ 'spread.yaml': yaml, 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const { project, warnings } = loadProject(join(dir, 'spread.yaml'));
    const jammy = project.backends[0]!.systems[0]!;
    assert.deepEqual([jammy.networks, jammy.groups], [[], []]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /netwroks/);
  } finally {
    removeProject(dir);
  }
});

test('-list works on an openstack project (the original lists it too)', async () => {
  const dir = makeProject({ 'spread.yaml': OPENSTACK, 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const r = await runSpread(['-list'], dir);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, [
      'openstack-dev:centos-9-64:tests/a',
      'openstack-dev:ubuntu-22.04-64:tests/a',
      'openstack-dev:ubuntu-24.04-64:tests/a',
      '',
    ].join('\n'));
  } finally {
    removeProject(dir);
  }
});

test('a google key may be inline JSON of either kind, or a path', () => {
  const yaml = `project: g
path: /root/g
backends:
    google:
        key: '{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}'
        location: my-project/us-east1-b
        endpoint: https://compute.internal.example
        systems: [ubuntu-22.04-64]
    google-sa:
        type: google
        key: ~/.config/spread/sa.json
        location: my-project/us-east1-b
        systems: [ubuntu-22.04-64]
suites:
    tests/:
        summary: Tests
`;
  const dir = makeProject({ 'spread.yaml': yaml, 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
  try {
    const { project, warnings } = loadProject(join(dir, 'spread.yaml'), { strict: true });
    assert.deepEqual(warnings, []);
    assert.match(project.backends[0]!.key, /authorized_user/);
    assert.equal(project.backends[0]!.endpoint, 'https://compute.internal.example');
    assert.equal(project.backends[1]!.key, '~/.config/spread/sa.json');
  } finally {
    removeProject(dir);
  }
});
