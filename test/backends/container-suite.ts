/**
 * The docker and podman tests, one suite run against either real engine:
 * the engine's own CLI is the witness (inspect, ps), never our code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FatalError, type Machine } from '../../src/backends/backend.js';
import { dockerBackend } from '../../src/backends/docker.js';
import { podmanBackend } from '../../src/backends/podman.js';
import { answers, contextFor, exerciseTwo, loadYaml, projectName, runOn, skipUnless, systemOf } from './fixture.js';

export const TEST_IMAGE = 'spread-test/debian:12';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface EngineCase {
  readonly type: 'docker' | 'podman';
  /** `run-options` this host needs (podman: runtime and ulimits). */
  readonly runOptions: readonly string[];
  /** An `engine:` that points the real client at a dead socket, and the one line expected. */
  readonly deadEngine: string;
  readonly deadMessage: string;
}

export function containerEngineSuite(c: EngineCase): void {
  const cli = (...args: string[]): string => execFileSync(c.type, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const ready = answers([c.type, 'version']) && answers([c.type, 'image', 'inspect', TEST_IMAGE]);
  const skip = skipUnless(ready, `${c.type} or its image ${TEST_IMAGE} is not available here (run .ci/engines.sh --images ${c.type})`);
  const factory = c.type === 'docker' ? dockerBackend : podmanBackend;
  const name = projectName(c.type);
  const options = `[${c.runOptions.map((o) => JSON.stringify(o)).join(', ')}]`;
  const yaml = (extra = '') => `project: ${name}
path: /home/test
backends:
    ${c.type}:
        run-options: ${options}
        systems:
            - debian-12:
                image: ${TEST_IMAGE}
                run-options: [--label, spread-ci=1, --label, spread-test.system-option=yes]
            - nosuch-1
    old:
        type: ${c.type}
        halt-timeout: 1s
        run-options: ${options}
        systems:
            - debian-12:
                image: ${TEST_IMAGE}
    young:
        type: ${c.type}
        halt-timeout: 1h
        run-options: ${options}
        systems:
            - debian-12:
                image: ${TEST_IMAGE}
${extra}suites:
    tests/:
        summary: tests
`;
  const project = ready || process.env.CI === 'true' ? loadYaml(yaml()) : undefined;
  const exists = async (m: Machine) => cli('ps', '-a', '-q', '--filter', `name=^${m.label}$`) !== '';

  describe(`${c.type} backend`, { skip }, () => {
    const machines: Machine[] = [];
    const images: string[] = [];
    after(async () => {
      await Promise.all(machines.map((m) => m.discard().catch(() => {})));
      const ids = cli('ps', '-a', '-q', '--filter', `label=spread.project=${name}`).split(/\s+/).filter(Boolean);
      if (ids.length > 0) cli('rm', '-f', ...ids);
      if (images.length > 0) cli('rmi', '-f', ...images);
    });
    before(() => assert.ok(project));

    test('two machines at once: Debian 12, distinct hostnames, upload, nothing left after discard', async () => {
      const backend = factory(project!.backends[0]!, contextFor(project!));
      const system = systemOf(project!, c.type, 'debian-12');
      await exerciseTwo(backend, system, (m) => {
        machines.push(m);
        // Published on 127.0.0.1 only, with the backend's and the system's run-options.
        assert.match(cli('port', m.label, '22/tcp'), /^127\.0\.0\.1:\d+$/);
        assert.equal(cli('inspect', '--format', '{{index .Config.Labels "spread-test.system-option"}}', m.label), 'yes');
      }, exists);
    });

    test('keep leaves the container, reuse reconnects, discard removes it', async () => {
      const ctx = contextFor(project!, { keep: true });
      const backend = factory(project!.backends[0]!, ctx);
      const system = systemOf(project!, c.type, 'debian-12');
      const m = await backend.allocate(system);
      machines.push(m);
      assert.ok(ctx.logs.some((l) => l.includes(`Allocated ${c.type}:debian-12 (${m.label})`)), ctx.logs.join('\n'));
      const entry = m.reuseEntry();
      assert.deepEqual(entry.data, { name: m.label });
      assert.equal(entry.password, contextFor(project!).password);
      await runOn(m, 'touch /root/kept');
      const again = await factory(project!.backends[0]!, contextFor(project!)).reuse(entry, system);
      assert.equal(again.address, m.address);
      assert.equal(await runOn(again, 'ls /root/kept'), '/root/kept\n');
      await again.discard();
      assert.equal(await exists(m), false);
      await assert.rejects(factory(project!.backends[0]!, contextFor(project!)).reuse(entry, system), /cannot reuse container/);
    });

    test('gc removes containers older than the halt-timeout, of its own backend only', async () => {
      const backendNamed = (n: string, ctx = contextFor(project!, { keep: true })) => factory(project!.backends.find((b) => b.name === n)!, ctx);
      const [old, young] = await Promise.all([
        backendNamed('old').allocate(systemOf(project!, 'old', 'debian-12')),
        backendNamed('young').allocate(systemOf(project!, 'young', 'debian-12')),
      ]);
      machines.push(old, young);
      await sleep(1200);
      const ctx = contextFor(project!);
      await backendNamed('old', ctx).gc!();
      await backendNamed('young').gc!();
      assert.equal(await exists(old), false, 'old container collected');
      assert.equal(await exists(young), true, 'young container kept');
      assert.ok(ctx.logs.some((l) => l.startsWith(`Container old:debian-12 (${old.label}) exceeds halt-timeout`)), ctx.logs.join('\n'));
      const none = contextFor(project!);
      await factory(project!.backends[0]!, none).gc!();
      assert.match(none.logs.join('\n'), /sets no halt-timeout: keeping its containers/);
      assert.equal(await exists(young), true);
      await young.discard();
    });

    test('an interrupted allocation leaves nothing behind', async () => {
      const system = systemOf(project!, c.type, 'debian-12');
      for (const ms of [20, 150, 300]) {
        const stop = new AbortController();
        const backend = factory(project!.backends[0]!, contextFor(project!));
        setTimeout(() => stop.abort(), ms);
        const m = await backend.allocate(system, stop.signal).catch(() => undefined);
        if (m) {
          machines.push(m);
          await m.discard();
        }
        assert.equal(cli('ps', '-a', '-q', '--filter', `label=spread.project=${name}`), '', `nothing left after an abort at ${ms} ms`);
      }
    });

    test('a missing image is a FatalError naming it', async () => {
      const backend = factory(project!.backends[0]!, contextFor(project!));
      await assert.rejects(backend.allocate(systemOf(project!, c.type, 'nosuch-1')), (err: Error) => {
        assert.ok(err instanceof FatalError, String(err));
        assert.match(err.message, /^cannot find image "nosuch:1" for [a-z]+:nosuch-1: not present locally and cannot be pulled \(.+\); build or pull it, or set image: in spread.yaml$/);
        return true;
      });
    });

    test('an image without sshd is a FatalError naming it, and leaves nothing', async () => {
      const image = `spread-test/nosshd-${randomBytes(3).toString('hex')}:1`;
      const builder = `spread-build-${randomBytes(3).toString('hex')}`;
      cli('run', '--name', builder, ...c.runOptions, '--entrypoint', 'rm', TEST_IMAGE, '-f', '/usr/sbin/sshd');
      cli('commit', builder, image);
      cli('rm', '-f', builder);
      images.push(image);
      const p = loadYaml(yaml().replace('            - nosuch-1\n', `            - nosshd-1:\n                image: ${image}\n`));
      const backend = factory(p.backends[0]!, contextFor(p));
      await assert.rejects(backend.allocate(systemOf(p, c.type, 'nosshd-1')), (err: Error) => {
        assert.ok(err instanceof FatalError, String(err));
        assert.match(err.message, new RegExp(`^image "${image}" of ${c.type}:nosshd-1 \\(spread-\\w+-nosshd-1\\) has no sshd: `));
        return true;
      });
      assert.equal(cli('ps', '-a', '-q', '--filter', `label=spread.system=nosshd-1`, '--filter', `label=spread.project=${name}`), '');
    });

    test('a system username and password are set and used; scripts run as root through sudo', async () => {
      const image = `spread-test/user-${randomBytes(3).toString('hex')}:1`;
      const builder = `spread-build-${randomBytes(3).toString('hex')}`;
      cli('run', '--name', builder, ...c.runOptions, '--entrypoint', '/bin/sh', TEST_IMAGE, '-c',
        'useradd -m -s /bin/bash tester && echo "tester ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/tester');
      cli('commit', builder, image);
      cli('rm', '-f', builder);
      images.push(image);
      const p = loadYaml(yaml().replace('            - nosuch-1\n',
        `            - user-1:\n                image: ${image}\n                username: tester\n                password: s3cret\n` +
        `            - nobody-1:\n                image: ${image}\n                username: nobody-here\n`));
      const backend = factory(p.backends[0]!, contextFor(p));
      const m = await backend.allocate(systemOf(p, c.type, 'user-1'));
      machines.push(m);
      assert.equal(m.username, 'tester');
      assert.deepEqual({ ...m.reuseEntry(), data: undefined }, { username: 'tester', password: 's3cret', address: m.address, data: undefined });
      assert.equal(await runOn(m, 'id -u; echo "$SUDO_USER"'), '0\ntester\n');
      await m.discard();
      await assert.rejects(backend.allocate(systemOf(p, c.type, 'nobody-1')), (err: Error) => {
        assert.ok(err instanceof FatalError, String(err));
        assert.match(err.message, /^user "nobody-here" of [a-z]+:nobody-1 \(spread-\w+-nobody-1\) does not exist in image "spread-test\/user-\w+:1"$/);
        return true;
      });
    });

    test('a missing or unreachable engine is a one-line FatalError', async () => {
      const missing = loadYaml(yaml().replace(`        run-options: ${options}\n`, `        run-options: ${options}\n        engine: /nonexistent/${c.type}\n`));
      await assert.rejects(factory(missing.backends[0]!, contextFor(missing)).allocate(systemOf(missing, c.type, 'debian-12')), (err: Error) => {
        assert.ok(err instanceof FatalError);
        assert.equal(err.message, `${c.type}: command not found: /nonexistent/${c.type} (install ${c.type}, or set engine: in backend "${c.type}")`);
        return true;
      });
      const dead = loadYaml(yaml().replace(`        run-options: ${options}\n`, `        run-options: ${options}\n        engine: ${c.deadEngine}\n`));
      await assert.rejects(factory(dead.backends[0]!, contextFor(dead)).allocate(systemOf(dead, c.type, 'debian-12')), (err: Error) => {
        assert.ok(err instanceof FatalError);
        assert.equal(err.message, c.deadMessage);
        return true;
      });
    });
  });
}
