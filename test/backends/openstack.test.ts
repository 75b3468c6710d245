/**
 * The openstack backend against the fake OpenStack (test/helpers/fake-openstack.ts)
 * with real machines behind it: the shared cloud suite, plus what only
 * openstack has (cloud-init user data, the SSH fallback when the console is
 * disabled, networks and groups, an endpoint without a version).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { cloudConfig, matchOpenstackImage, serverAddress } from '../../src/backends/openstack.js';
import { closedPort } from '../helpers/fake-api.js';
import { startFakeOpenstack } from '../helpers/fake-openstack.js';
import type { FakeOpenstack } from '../helpers/fake-openstack.js';
import { tlsUnavailable, testTls } from '../helpers/fake-tls.js';
import { sshdUnavailable } from '../helpers/sshd.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { cloudFiles, cloudSuite } from './cloud-suite.js';

const why = sshdUnavailable() ?? tlsUnavailable();
const skip = why !== undefined && process.env['CI'] !== 'true' ? why : false;
const USER = 'spread-bot';
const PASSWORD = `os-${Math.random().toString(36).slice(2)}-secret`;
const REGION = 'RegionOne';

test('image lookup: an exact name wins, else the newest whose name holds the terms', () => {
  const images = [
    { id: '1', name: 'ubuntu-22.04-server-cloudimg-20240101', created_at: '2024-01-01T00:00:00Z' },
    { id: '2', name: 'ubuntu-22.04-server-cloudimg-20240601', created_at: '2024-06-01T00:00:00Z' },
    { id: '3', name: 'ubuntu-22.04', created_at: '2023-01-01T00:00:00Z' },
  ];
  assert.equal(matchOpenstackImage('ubuntu-22.04', images)?.id, '3');
  assert.equal(matchOpenstackImage('ubuntu-22.04-server', images)?.id, '2');
  assert.equal(matchOpenstackImage('debian-12', images), undefined);
});

test('the address: on the first named network only, else the first network with one; none is undefined, not a crash', () => {
  const server = { id: 'x', addresses: { a: [{ addr: 'fe80::1', version: 6 }, { addr: '10.0.0.5', version: 4 }], b: [{ addr: '10.1.0.5', version: 4 }] } };
  assert.equal(serverAddress(server, []), '10.0.0.5');
  assert.equal(serverAddress(server, ['b', 'a']), '10.1.0.5');
  assert.equal(serverAddress(server, ['c']), undefined);
  assert.equal(serverAddress({ id: 'y' }, ['c']), undefined);
});

test('the user data is #cloud-config whose runcmd YAML reads back to the shell commands', () => {
  const text = cloudConfig(`it's: "x"`);
  assert.ok(text.startsWith('#cloud-config\n'));
  const runcmd = (parse(text) as { runcmd: string[] }).runcmd;
  assert.equal(runcmd[0], `echo root:'it'\\''s: "x"' | chpasswd`);
  assert.ok(runcmd.some((c) => c.includes('MACHINE-IS-READY') && c.includes('/dev/ttyS0')));
});

describe('openstack against the fake OpenStack', { skip, timeout: 300_000 }, () => {
  let fake: FakeOpenstack;
  let deadPort = 0;

  before(async () => {
    deadPort = await closedPort();
    fake = await startFakeOpenstack({
      user: USER, password: PASSWORD, region: REGION,
      projects: { 'spread-proj': {}, 'quota-proj': { quota: 0 } },
      images: [
        { name: 'ubuntu-22.04-server-cloudimg-amd64', created: '2024-06-01T00:00:00Z' },
        { name: 'ubuntu-22.04-server-cloudimg-amd64-old', created: '2023-06-01T00:00:00Z' },
        { name: 'debian-12-genericcloud-amd64' },
        { name: 'bare-linux-1', noCloudInit: true },
        { name: 'quiet-linux-1', noConsole: true },
      ],
      networks: [{ name: 'public', external: true }, { name: 'private' }, { name: 'second' }, { name: 'no-dhcp', dhcp: false }],
      groups: ['default', 'ssh'],
    });
  });
  after(async () => {
    await fake?.stop();
  });

  const backend = (name: string, o: { location?: string; key?: string; systems?: string; endpoint?: string; extra?: string } = {}) => `    ${name}:
        type: openstack
        endpoint: ${o.endpoint ?? fake.endpoint}
        account: ${USER}
        key: ${o.key ?? `$(HOST:echo ${PASSWORD})`}
        location: ${o.location ?? `spread-proj/${REGION}`}
${o.extra ?? ''}        systems:
${o.systems ?? '            - ubuntu-22.04-64\n'}`;
  const env = (o?: { errors?: boolean }) => ({ NODE_EXTRA_CA_CERTS: testTls().caFile, SPREAD_CLOUD_TIMING: `poll=50ms,console=1s,retry=10ms${o?.errors ? ',boot=3s,address=2s' : ''}` });

  cloudSuite({
    type: 'openstack',
    backendYaml: (name) => backend(name, {
      extra: '        plan: m1.small\n        groups: [default, ssh]\n',
      systems: '            - ubuntu-22.04-64:\n                workers: 2\n            - debian-12-64:\n                image: debian-12\n                networks: [second]\n',
    }),
    env,
    get calls() { return fake.calls; },
    live: () => fake.live(),
    creates: () => fake.calls.filter((c) => c.method === 'POST' && /\/servers$/.test(c.path)).length,
    secrets: () => [...fake.tokens, PASSWORD],
    errorBackends: () => [
      { name: 'bad-key', yaml: backend('bad-key', { key: 'not-the-password' }), expect: /cannot authenticate to OpenStack at https:\/\/127\.0\.0\.1:\d+\/v3 as "spread-bot" in project "spread-proj": the request you have made requires authentication \(check account:, key:/ },
      { name: 'quota', yaml: backend('quota', { location: `quota-proj/${REGION}` }), expect: /quota exceeded for instances: Requested 1, but already used 0 of 0 instances \(delete servers, ask for more quota/ },
      { name: 'no-image', yaml: backend('no-image', { systems: '            - ubuntu-99.04-64\n' }), expect: /cannot find matching image for "ubuntu-99.04-64" \(check image:/ },
      { name: 'bad-region', yaml: backend('bad-region', { location: 'spread-proj/RegionMars' }), expect: /region "RegionMars" has no public compute, image, network endpoint \(regions in the catalog: RegionOne; check location:/ },
      { name: 'bad-flavor', yaml: backend('bad-flavor', { extra: '        plan: m9.enormous\n' }), expect: /cannot find valid flavor with name "m9.enormous" \(available: m1.small, m1.medium, m1.large; check plan:\)/ },
      { name: 'no-marker', yaml: backend('no-marker', { systems: '            - bare-linux-1\n' }), expect: /cannot allocate new OpenStack server no-marker:bare-linux-1 \([a-z0-9-]+\): cannot find ready marker in console output .*\(the image must run cloud-init\)/ },
      { name: 'no-address', yaml: backend('no-address', { extra: '        networks: [no-dhcp]\n' }), expect: /server no-address:ubuntu-22.04-64 \([a-z0-9-]+\) has no address on network "no-dhcp" \(check networks:\)/ },
      { name: 'unreachable', yaml: backend('unreachable', { endpoint: `https://127.0.0.1:${deadPort}/v3` }), expect: new RegExp(`cannot authenticate to OpenStack at https://127\\.0\\.0\\.1:${deadPort}/v3 .*cannot reach the openstack API at https://127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED.*\\(check endpoint:`) },
    ],
    seedGc: () => {
      const HOUR = 3600_000;
      const names = { old: 'gc-old', young: 'gc-young', labelKeeps: 'gc-label-keeps', labelExpires: 'gc-label-expires', badLabel: 'gc-bad-label' };
      const spread = { spread: 'true', owner: 'someone' };
      fake.seed({ project: 'spread-proj', name: names.old, ageMs: 2 * HOUR, metadata: spread });
      fake.seed({ project: 'spread-proj', name: names.young, ageMs: 10 * 60_000, metadata: spread });
      fake.seed({ project: 'spread-proj', name: names.labelKeeps, ageMs: 2 * HOUR, metadata: { ...spread, 'halt-timeout': '3h' } });
      fake.seed({ project: 'spread-proj', name: names.labelExpires, ageMs: 10 * 60_000, metadata: { ...spread, 'halt-timeout': '5m' } });
      fake.seed({ project: 'spread-proj', name: names.badLabel, ageMs: 2 * HOUR, metadata: { ...spread, 'halt-timeout': 'soon' } });
      fake.seed({ project: 'spread-proj', name: 'someone-elses-vm', ageMs: 48 * HOUR, metadata: {} });
      return {
        expired: [names.old, names.labelExpires, names.badLabel],
        kept: [names.young, names.labelKeeps, 'someone-elses-vm'],
        yaml: backend('cloud', { extra: '        halt-timeout: 1h\n' }),
      };
    },
    settle: () => fake.settle(),
  });

  test('openstack: the server request carries the original\'s name, metadata, networks and groups; cloud-init ran', async () => {
    const dir = makeProject(cloudFiles('os-body', backend('cloud', {
      extra: '        networks: [private]\n        groups: [ssh]\n',
      systems: '            - ubuntu-22.04-64:\n                networks: [second, private]\n',
    })));
    try {
      const known = new Set(fake.servers.keys());
      const r = await runSpread(['-reuse', '-pass=pass-1234', 'tests/a'], dir, env());
      assert.equal(r.code, 0, stripTime(r.stdout));
      const s = [...fake.servers.values()].find((x) => !known.has(x.id))!;
      assert.match(s.name, /^[a-z]{3}\d{6}-\d{6}$/);
      assert.deepEqual(s.metadata, { spread: 'true', owner: s.metadata['owner'], reuse: 'true', password: 'pass-1234' });
      assert.deepEqual(s.networks, ['second', 'private']);
      assert.deepEqual(s.body['security_groups'], [{ name: 'ssh' }]);
      assert.equal(s.body['availability_zone'], 'nova');
      assert.equal(s.cloudInitOutput, '', 'every runcmd line ran cleanly');
      await runSpread(['-discard'], dir, env());
      await fake.settle();
      assert.ok(s.deleted);
    } finally {
      removeProject(dir);
    }
  });

  test('openstack: a disabled console falls back to logging in over SSH; an endpoint without a version finds v3', async () => {
    const dir = makeProject(cloudFiles('os-quiet', backend('cloud', { endpoint: fake.root, systems: '            - quiet-linux-1\n' })));
    try {
      const liveBefore = fake.live();
      const r = await runSpread(['-v', 'tests/a'], dir, env());
      await fake.settle();
      assert.equal(r.code, 0, stripTime(r.stdout));
      assert.match(stripTime(r.stdout), /^No console output for cloud:quiet-linux-1 .*; waiting for SSH at 127\.0\.0\.\d+\.\.\.$/m);
      assert.deepEqual(fake.live().filter((n) => !liveBefore.includes(n)), []);
    } finally {
      removeProject(dir);
    }
  });
});
