/**
 * lxd backend: the original's naming and image rules as tables, then real
 * containers from the local `spread-debian-12` image (skipped off CI when
 * LXD or the image is missing). The lxd-count file lives in a temporary home.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FatalError, type Machine } from '../../src/backends/backend.js';
import { lxdAddress, lxdBackend, lxdName, matchLocalImage, remoteImageName, type LxdImage } from '../../src/backends/lxd.js';
import { answers, contextFor, exerciseTwo, loadYaml, projectName, runOn, skipUnless, systemOf } from './fixture.js';

const home = mkdtempSync(join(tmpdir(), 'spread-lxd-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

describe('lxd naming and images (the original rules)', () => {
  test('image names map to remotes', () => {
    const cases: [string, string][] = [
      ['ubuntu-16.04', 'ubuntu:16.04/amd64'],
      ['ubuntu-16.04-i386', 'ubuntu:16.04/i386'],
      ['debian-sid', 'images:debian/sid/amd64'],
      ['fedora-8', 'images:fedora/8/amd64'],
      ['ubuntu:16.04.1', 'ubuntu:16.04.1'],
      ['local:spread-debian-12', 'local:spread-debian-12'],
    ];
    for (const [image, want] of cases) assert.equal(remoteImageName(image, 'amd64'), want, image);
  });

  test('a cached image matches by remote and every name part', () => {
    const remotes = new Map([['https://images.linuxcontainers.org', 'images'], ['https://cloud-images.ubuntu.com/releases', 'ubuntu']]);
    const images: LxdImage[] = [
      { fingerprint: 'imported', properties: { os: 'debian', release: 'bookworm', version: '12', architecture: 'amd64', remote: 'images', aliases: 'debian/12,spread-debian-12' } },
      { fingerprint: 'cached-ubuntu', properties: { os: 'ubuntu', release: 'xenial', version: '16.04', architecture: 'amd64' }, update_source: { server: 'https://cloud-images.ubuntu.com/releases' } },
    ];
    assert.equal(matchLocalImage('debian-12', 'amd64', images, remotes), 'imported');
    assert.equal(matchLocalImage('debian-bookworm', 'amd64', images, remotes), 'imported');
    assert.equal(matchLocalImage('debian-12-arm64', 'amd64', images, remotes), undefined);
    assert.equal(matchLocalImage('debian-11', 'amd64', images, remotes), undefined);
    assert.equal(matchLocalImage('ubuntu-16.04', 'amd64', images, remotes), 'cached-ubuntu');
    assert.equal(matchLocalImage('ubuntu-xenial', 'amd64', images, remotes), 'cached-ubuntu');
    assert.equal(matchLocalImage('images:ubuntu/16.04', 'amd64', images, remotes), undefined, 'wrong remote');
  });

  test('the address is any global IPv4 address but lo, not only eth0', () => {
    const state = (network: object) => ({ network });
    assert.equal(lxdAddress(state({ lo: { addresses: [{ family: 'inet', address: '127.0.0.1', scope: 'local' }] } })), undefined);
    assert.equal(lxdAddress(state({
      lo: { addresses: [{ family: 'inet', address: '127.0.0.1', scope: 'local' }] },
      enp5s0: { addresses: [{ family: 'inet6', address: 'fe80::1', scope: 'link' }, { family: 'inet', address: '10.1.2.3', scope: 'global' }] },
    })), '10.1.2.3');
    assert.equal(lxdAddress(state({ eth0: { addresses: [{ family: 'inet6', address: 'fd42::5', scope: 'global' }] } })), undefined);
    assert.equal(lxdAddress(null), undefined);
  });

  test('names count up in ~/.spread/lxd-count under a lock', async () => {
    const names = await Promise.all(Array.from({ length: 8 }, () => lxdName({ name: 'ubuntu-16.04' }, home)));
    assert.deepEqual(names.map((n) => Number(/^spread-(\d+)-ubuntu-16-04$/.exec(n)?.[1])).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(readFileSync(join(home, '.spread', 'lxd-count'), 'utf8'), '8');
  });
});

const ready = answers(['lxc', 'image', 'info', 'spread-debian-12']);
const name = projectName('lxd');
const yaml = (engine = '') => `project: ${name}
path: /home/test
backends:
    lxd:
${engine}        run-options: [-c, user.spread-ci=1]
        systems:
            - debian-12
            - nosuch-9
suites:
    tests/:
        summary: tests
`;

describe('lxd backend', { skip: skipUnless(ready, 'LXD or its image spread-debian-12 is not available here (run .ci/engines.sh --images lxd)') }, () => {
  const machines: Machine[] = [];
  const lxc = (...args: string[]) => execFileSync('lxc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).trim();
  const exists = async (m: Machine) => lxc('list', '--format', 'csv', '-c', 'n').split('\n').includes(m.label);
  after(async () => {
    await Promise.all(machines.map((m) => m.discard().catch(() => {})));
  });
  const project = loadYaml(yaml());
  const system = systemOf(project, 'lxd', 'debian-12');

  test('two machines at once: Debian 12, distinct hostnames, upload, nothing left after discard', async () => {
    const ctx = contextFor(project);
    const backend = lxdBackend(project.backends[0]!, ctx, { home });
    const got = await exerciseTwo(backend, system, (m) => {
      machines.push(m);
      assert.match(m.label, /^spread-\d+-debian-12$/);
      assert.equal(lxc('config', 'get', m.label, 'user.spread-ci'), '1', 'run-options reach lxc launch');
    }, exists);
    for (const m of got) assert.ok(ctx.logs.includes(`Waiting for lxd container ${m.label} to have an address...`), ctx.logs.join('\n'));
  });

  test('keep makes a persistent container that reuse reconnects to', async () => {
    const backend = lxdBackend(project.backends[0]!, contextFor(project, { keep: true }), { home });
    const m = await backend.allocate(system);
    machines.push(m);
    assert.equal(lxc('list', m.label, '--format', 'csv', '-c', 'n'), m.label);
    assert.match(lxc('config', 'show', m.label), /^ephemeral: false$/m);
    const entry = m.reuseEntry();
    assert.deepEqual(entry.data, { name: m.label });
    await runOn(m, 'touch /root/kept');
    const again = await lxdBackend(project.backends[0]!, contextFor(project), { home }).reuse(entry, system);
    assert.equal(await runOn(again, 'ls /root/kept'), '/root/kept\n');
    await again.discard();
    assert.equal(await exists(m), false);
  });

  test('an image that cannot be found is a FatalError', async () => {
    const backend = lxdBackend(project.backends[0]!, contextFor(project), { home });
    await assert.rejects(backend.allocate(systemOf(project, 'lxd', 'nosuch-9')), (err: Error) => {
      assert.ok(err instanceof FatalError, String(err));
      assert.match(err.message, /^cannot launch lxd container: .*images\.linuxcontainers\.org|^cannot launch lxd container: images:nosuch\/9\/amd64 not found/);
      return true;
    });
  });

  test('a missing or unreachable LXD is a one-line FatalError', async () => {
    const missing = loadYaml(yaml('        engine: /nonexistent/lxc\n'));
    await assert.rejects(lxdBackend(missing.backends[0]!, contextFor(missing), { home }).allocate(system), (err: Error) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.message, 'lxd: command not found: /nonexistent/lxc (install LXD, or set engine: in backend "lxd")');
      return true;
    });
    const dead = loadYaml(yaml('        engine: env LXD_DIR=/nonexistent lxc\n'));
    await assert.rejects(lxdBackend(dead.backends[0]!, contextFor(dead), { home }).allocate(system), (err: Error) => {
      assert.ok(err instanceof FatalError);
      assert.equal(err.message, 'lxd: cannot reach the LXD daemon at unix:///nonexistent/unix.socket; is it running?');
      return true;
    });
  });
});
