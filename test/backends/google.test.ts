/**
 * The google backend against the fake Compute Engine (test/helpers/fake-gce.ts)
 * with real machines behind it: the shared cloud suite, plus what only
 * google has (authorized-user keys, the application default credentials,
 * the insert body, image lookup).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { imageProjects, matchImage, sourceImage, startupScript } from '../../src/backends/google.js';
import type { GoogleImage } from '../../src/backends/google.js';
import { toTerms } from '../../src/backends/cloud-request.js';
import { closedPort } from '../helpers/fake-api.js';
import { startFakeGce } from '../helpers/fake-gce.js';
import type { FakeGce } from '../helpers/fake-gce.js';
import { tlsUnavailable, testTls } from '../helpers/fake-tls.js';
import { sshdUnavailable } from '../helpers/sshd.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { cloudFiles, cloudSuite } from './cloud-suite.js';

const why = sshdUnavailable() ?? tlsUnavailable();
const skip = why !== undefined && process.env['CI'] !== 'true' ? why : false;
const ZONE = 'us-east1-b';
const PROJECT = 'spread-proj';

const img = (name: string, family: string, description: string): GoogleImage => ({ project: 'p', name, family, terms: toTerms(description) });

test('image lookup: exact name, then family, then description terms; project prefixes and public projects', () => {
  const images = [
    img('ubuntu-2204-jammy-v20240101', 'ubuntu-2204-lts', 'Canonical, Ubuntu, 22.04 LTS, amd64 jammy image built on 2024-01-01'),
    img('debian-12-bookworm-v20240101', 'debian-12', 'Debian, Debian GNU/Linux, 12 (bookworm), amd64 built on 20240101'),
  ];
  assert.deepEqual(matchImage('ubuntu-2204-jammy-v20240101', images), { image: images[0], family: false });
  assert.deepEqual(matchImage('debian-12', images), { image: images[1], family: true });
  assert.equal(matchImage('ubuntu-22.04-64', images)?.image, images[0]);
  assert.equal(matchImage('ubuntu-24.04-64', images), undefined);
  assert.equal(matchImage('other/debian-12', images)?.image, images[1], 'the project part is not a term');
  assert.deepEqual(imageProjects('ubuntu-22.04-64', 'mine'), ['mine', 'ubuntu-os-cloud']);
  assert.deepEqual(imageProjects('fedora-39', 'mine'), ['mine']);
  assert.deepEqual(imageProjects('their-proj/ubuntu-22.04', 'mine'), ['their-proj']);
  assert.equal(sourceImage({ image: { ...images[0]!, project: 'mine' }, family: false }, 'mine'), 'global/images/ubuntu-2204-jammy-v20240101');
  assert.equal(sourceImage({ image: { ...images[0]!, project: 'ubuntu-os-cloud' }, family: true }, 'mine'), 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts');
});

test('the startup script quotes the password for the shell', () => {
  assert.match(startupScript("it's"), /echo root:'it'\\''s' \| chpasswd/);
});

describe('google against the fake Compute Engine', { skip, timeout: 300_000 }, () => {
  let fake: FakeGce;
  let keyDir: string;
  let deadPort = 0;

  before(async () => {
    fake = await startFakeGce({
      projects: {
        [PROJECT]: { zones: [ZONE], images: [{ name: 'noagent-1', family: 'noagent', description: 'An image without the guest environment', noAgent: true }] },
        'quota-proj': { zones: [ZONE], quota: 0 },
      },
      publicImages: {
        'ubuntu-os-cloud': [
          { name: 'ubuntu-2404-noble-amd64-v20240601', family: 'ubuntu-2404-lts-amd64', description: 'Canonical, Ubuntu, 24.04 LTS, amd64 noble image' },
          { name: 'ubuntu-2204-jammy-v20240601', family: 'ubuntu-2204-lts', description: 'Canonical, Ubuntu, 22.04 LTS, amd64 jammy image' },
          { name: 'ubuntu-2204-jammy-v20240101', family: 'ubuntu-2204-lts', description: 'Canonical, Ubuntu, 22.04 LTS, amd64 jammy image' },
        ],
        'debian-cloud': [{ name: 'debian-12-bookworm-v20240601', family: 'debian-12', description: 'Debian, Debian GNU/Linux, 12 (bookworm), amd64' }],
      },
    });
    deadPort = await closedPort();
    keyDir = mkdtempSync(join(tmpdir(), 'spread-gce-key-'));
    writeFileSync(join(keyDir, 'sa.json'), fake.serviceAccount(), { mode: 0o600 });
  });
  after(async () => {
    await fake?.stop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  const backend = (name: string, o: { location?: string; key?: string; systems?: string; endpoint?: string; extra?: string } = {}) => `    ${name}:
        type: google
        key: ${o.key ?? `${keyDir}/sa.json`}
        location: ${o.location ?? `${PROJECT}/${ZONE}`}
        endpoint: ${o.endpoint ?? fake.url}
${o.extra ?? ''}        systems:
${o.systems ?? '            - ubuntu-22.04-64\n'}`;

  cloudSuite({
    type: 'google',
    backendYaml: (name) => backend(name, { systems: '            - ubuntu-22.04-64:\n                workers: 2\n            - debian-12-64:\n                image: debian-12\n' }),
    env: (o) => ({ NODE_EXTRA_CA_CERTS: testTls().caFile, SPREAD_CLOUD_TIMING: `poll=50ms,retry=10ms${o?.errors ? ',boot=3s' : ''}` }),
    get calls() { return fake.calls; },
    live: () => fake.live(),
    creates: () => fake.calls.filter((c) => c.method === 'POST' && /\/instances$/.test(c.path)).length,
    secrets: () => [...fake.tokens, JSON.parse(fake.authorizedUser()).client_secret, JSON.parse(fake.authorizedUser()).refresh_token],
    errorBackends: () => [
      { name: 'bad-key', yaml: backend('bad-key', { key: `'${fake.serviceAccount({ wrongKey: true })}'` }), expect: /cannot authenticate to Google with the key: field: invalid_grant: Invalid JWT Signature\. \(check that key: holds a valid service account/ },
      { name: 'quota', yaml: backend('quota', { location: `quota-proj/${ZONE}` }), expect: /quota 'INSTANCES' exceeded.*\(ask for more quota/ },
      { name: 'no-image', yaml: backend('no-image', { systems: '            - ubuntu-99.04-64\n' }), expect: /cannot find any Google image matching "ubuntu-99.04-64" on project "spread-proj" or "ubuntu-os-cloud" \(check image:/ },
      { name: 'bad-zone', yaml: backend('bad-zone', { location: `${PROJECT}/mars-north1-a` }), expect: /unknown zone "mars-north1-a" in Google project "spread-proj".*\(check location:/ },
      { name: 'bad-plan', yaml: backend('bad-plan', { extra: '        plan: n9-enormous\n' }), expect: /machine type with name 'n9-enormous' does not exist in zone.*\(check plan:/i },
      { name: 'no-marker', yaml: backend('no-marker', { systems: '            - noagent-1:\n                image: noagent\n' }), expect: /cannot find ready marker in console output for no-marker:noagent-1 \([a-z0-9-]+\) \(the image must run GCE startup scripts/ },
      { name: 'unreachable', yaml: backend('unreachable', { endpoint: `https://127.0.0.1:${deadPort}` }), expect: new RegExp(`cannot reach the google API at https://127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED.*\\(check the network`) },
    ],
    seedGc: () => {
      const HOUR = 3600_000;
      const names = { old: 'jan011200-000001', young: 'jan011200-000002', labelKeeps: 'jan011200-000003', labelExpires: 'jan011200-000004', badLabel: 'jan011200-000005' };
      fake.seed({ project: PROJECT, zone: ZONE, name: names.old, ageMs: 2 * HOUR, labels: { spread: 'true' } });
      fake.seed({ project: PROJECT, zone: ZONE, name: names.young, ageMs: 10 * 60_000, labels: { spread: 'true' } });
      fake.seed({ project: PROJECT, zone: ZONE, name: names.labelKeeps, ageMs: 2 * HOUR, labels: { spread: 'true', 'halt-timeout': '3h' } });
      fake.seed({ project: PROJECT, zone: ZONE, name: names.labelExpires, ageMs: 10 * 60_000, labels: { spread: 'true', 'halt-timeout': '5m' } });
      fake.seed({ project: PROJECT, zone: ZONE, name: names.badLabel, ageMs: 2 * HOUR, labels: { spread: 'true', 'halt-timeout': 'soon' } });
      fake.seed({ project: PROJECT, zone: ZONE, name: 'my-own-vm', ageMs: 48 * HOUR, labels: {} });
      return {
        expired: [names.old, names.labelExpires, names.badLabel],
        kept: [names.young, names.labelKeeps, 'my-own-vm'],
        yaml: backend('cloud', { extra: '        halt-timeout: 1h\n' }),
        warning: /^WARNING: Some Google servers ignored due to unsafe labels\.$/m,
      };
    },
    settle: () => fake.settle(),
  });

  test('google: authorized-user credentials, from the application default credentials file', async () => {
    const home = mkdtempSync(join(tmpdir(), 'spread-gce-home-'));
    const adc = join(home, '.config/gcloud/application_default_credentials.json');
    const dir = makeProject(cloudFiles('gce-adc', backend('cloud', { key: "''", systems: '            - ubuntu-22.04-64\n' })));
    try {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(join(home, '.config/gcloud'), { recursive: true });
      writeFileSync(adc, fake.authorizedUser());
      const env = { NODE_EXTRA_CA_CERTS: testTls().caFile, SPREAD_CLOUD_TIMING: 'poll=50ms', HOME: home, SPREAD_GOOGLE_TOKEN_URL: fake.tokenUrl };
      const r = await runSpread(['tests/a'], dir, env);
      await fake.settle();
      assert.equal(r.code, 0, stripTime(r.stdout));
      writeFileSync(adc, fake.authorizedUser({ wrongSecret: true }));
      const bad = await runSpread(['tests/a'], dir, env);
      assert.match(stripTime(bad.stdout), /^Cannot allocate cloud:ubuntu-22.04-64: cannot authenticate to Google with the application default credentials \(.*\): invalid_client: The OAuth client was not found/m);
    } finally {
      removeProject(dir);
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('google: the insert body is the original\'s, the startup script is dropped after boot, 503s are retried', async () => {
    const dir = makeProject(cloudFiles('gce-body', backend('cloud', { systems: '            - ubuntu-22.04-64:\n                storage: 20G\n                secure-boot: true\n                cpu-family: Intel Skylake\n                plan: e2-medium\n' })));
    try {
      const known = new Set(fake.instances.keys());
      const calls = fake.calls.length;
      fake.failNext(3);
      const r = await runSpread(['-reuse', '-pass=some-pass-1234', 'tests/a'], dir, { NODE_EXTRA_CA_CERTS: testTls().caFile, SPREAD_CLOUD_TIMING: 'poll=50ms,retry=10ms' });
      assert.equal(r.code, 0, stripTime(r.stdout));
      assert.equal(fake.calls.slice(calls).filter((c) => c.status === 503).length, 3, 'three 503s, retried');
      const inst = [...fake.instances.values()].find((i) => !known.has(i.name))!;
      const body = inst.body;
      assert.equal(body['machineType'], `zones/${ZONE}/machineTypes/e2-medium`);
      assert.equal(body['minCpuPlatform'], 'Intel Skylake');
      assert.deepEqual(body['shieldedInstanceConfig'], { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
      assert.deepEqual(body['tags'], { items: ['spread'] });
      assert.deepEqual((body['disks'] as Record<string, unknown>[])[0]!['initializeParams'], { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts', diskSizeGb: '20' });
      assert.deepEqual(Object.keys(inst.labels).sort(), ['owner', 'password', 'reuse', 'spread']);
      assert.equal(inst.labels['reuse'], 'true');
      assert.equal(inst.labels['password'], 'some-pass-1234');
      assert.deepEqual(inst.metadata.items.map((i) => i.key), [], 'startup-script removed after boot');
      assert.match(inst.startupOutput ?? '', /^$/, 'the startup script ran cleanly');
      await runSpread(['-discard'], dir, { NODE_EXTRA_CA_CERTS: testTls().caFile });
      await fake.settle();
      assert.ok(inst.deleted);
    } finally {
      removeProject(dir);
    }
  });

  test('google: without the test CA the API is refused (TLS verification is on)', async () => {
    const dir = makeProject(cloudFiles('gce-tls', backend('cloud')));
    try {
      const r = await runSpread(['tests/a'], dir, { SPREAD_CLOUD_TIMING: 'poll=50ms' });
      assert.match(stripTime(r.stdout), /^Cannot allocate cloud:ubuntu-22.04-64: cannot authenticate to Google .*cannot reach the google API at .*(certificate|self-signed|issuer)/m);
    } finally {
      removeProject(dir);
    }
  });
});
