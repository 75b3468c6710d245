/**
 * The tests every cloud backend passes against its fake control plane
 * (google.test.ts, openstack.test.ts): whole spread runs (2 systems, one on 2
 * workers, a failing task, the summary, every instance deleted), -reuse twice
 * then -discard, -gc deleting exactly the expired instances, the errors users
 * hit (one line each, nothing left behind), and no password or token in the
 * output.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { ApiCall } from '../helpers/fake-api.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import type { FixtureFiles, SpreadResult } from '../helpers/fixture.js';

export interface CloudUnderTest {
  readonly type: 'google' | 'openstack';
  /** Two systems, the first (`SYSTEM_A`) with 2 workers. */
  backendYaml(name: string): string;
  /**
   * Environment for the spread process: the CA, short polls; with `errors`
   * also short boot and address limits (only failures wait for those, so
   * runs that succeed keep the original's limits and hold on a busy machine).
   */
  env(o?: { errors?: boolean }): Record<string, string>;
  readonly calls: ApiCall[];
  /** Names of the instances that exist. */
  live(): string[];
  /** How many create calls were made so far. */
  creates(): number;
  /** Values that must never be printed (tokens, keys, the account password). */
  secrets(): string[];
  /** Backends each failing one way, with the words their one-line error must hold. */
  errorBackends(): { readonly name: string; readonly yaml: string; readonly expect: RegExp }[];
  /** Instance records for -gc; returns which must go and which must stay. */
  seedGc(): { expired: string[]; kept: string[]; yaml: string; warning?: RegExp };
  settle(): Promise<void>;
}

const TASK = (body: string) => `summary: task
execute: |
    test -s /etc/fake-instance
    # What the backend's startup script or cloud-init did, on the instance itself:
    grep -qx 'PasswordAuthentication=yes' /etc/ssh/sshd_config.d/00-spread.conf
    ${body}
`;

export const cloudFiles = (name: string, backendYaml: string): FixtureFiles => ({
  'spread.yaml': `project: ${name}
path: /home/cloud-test
backends:
${backendYaml}
suites:
    tests/:
        summary: tests
        prepare: echo "suite prepared on $(cat /etc/fake-instance)" >> /root/log
`,
  'tests/a/task.yaml': TASK('echo a'),
  'tests/b/task.yaml': TASK('echo b'),
  'tests/c/task.yaml': TASK('echo c'),
  'tests/fails/task.yaml': TASK('echo "failing on purpose on $(cat /etc/fake-instance)"; exit 1'),
});

const linesOf = (r: SpreadResult) => stripTime(r.stdout);

function assertNoSecrets(cloud: CloudUnderTest, output: string, password: string): void {
  for (const secret of [password, ...cloud.secrets()]) {
    assert.ok(secret.length >= 6 && !output.includes(secret), `a secret (${secret.slice(0, 4)}...) was printed`);
  }
}

export function cloudSuite(cloud: CloudUnderTest): void {
  const password = () => `pw${randomBytes(8).toString('hex')}`;

  test(`${cloud.type}: a whole run on 2 systems, 3 machines, with a failing task; every instance deleted`, async () => {
    const dir = makeProject(cloudFiles(`cloud-${cloud.type}`, cloud.backendYaml('cloud')));
    const pass = password();
    try {
      const before = cloud.creates();
      const liveBefore = cloud.live();
      const r = await runSpread([`-pass=${pass}`, '-v'], dir, cloud.env());
      await cloud.settle();
      const out = linesOf(r);
      assert.equal(r.code, 1, out);
      assert.match(out, /^Successful tasks: 6$/m, out);
      assert.match(out, /^Aborted tasks: 0$/m);
      assert.match(out, /^Failed tasks: 2\n {4}- cloud:\S+:tests\/fails\n {4}- cloud:\S+:tests\/fails$/m);
      assert.match(out, /failing on purpose on [a-z]{3}\d{6}-\d{6}/, 'the failing task ran on an instance');
      assert.equal(cloud.creates() - before, 3, 'two machines for the 2-worker system, one for the other');
      assert.equal((out.match(/^Allocated cloud:/gm) ?? []).length, 3);
      assert.deepEqual(cloud.live().filter((n) => !liveBefore.includes(n)), [], 'every instance deleted');
      assertNoSecrets(cloud, r.stdout + r.stderr, pass);
    } finally {
      removeProject(dir);
    }
  });

  test(`${cloud.type}: -reuse keeps the instances, a second -reuse creates none, -discard deletes them`, async () => {
    const dir = makeProject(cloudFiles(`reuse-${cloud.type}`, cloud.backendYaml('cloud')));
    const pass = password();
    try {
      const liveBefore = cloud.live();
      const first = await runSpread([`-pass=${pass}`, '-reuse', '-vv', 'tests/a', 'tests/b', 'tests/c'], dir, cloud.env());
      assert.equal(first.code, 0, linesOf(first));
      const kept = cloud.live().filter((n) => !liveBefore.includes(n));
      assert.ok(kept.length >= 2, `instances kept: ${kept.join(', ')}`);
      assert.equal((linesOf(first).match(/^Keeping cloud:/gm) ?? []).length, kept.length);
      // Not even at -vv: the password and the tokens stay out of the log.
      assertNoSecrets(cloud, first.stdout + first.stderr, pass);

      const creates = cloud.creates();
      const second = await runSpread(['-reuse', 'tests/a', 'tests/b'], dir, cloud.env());
      assert.equal(second.code, 0, linesOf(second));
      assert.match(linesOf(second), /^Reusing cloud:/m);
      assert.equal(cloud.creates(), creates, 'no create call');
      assert.deepEqual(cloud.live().filter((n) => !liveBefore.includes(n)).sort(), [...kept].sort());

      const discard = await runSpread(['-discard'], dir, cloud.env());
      await cloud.settle();
      assert.equal(discard.code, 0, linesOf(discard));
      assert.deepEqual(cloud.live().filter((n) => kept.includes(n)), [], 'all kept instances deleted');
    } finally {
      removeProject(dir);
    }
  });

  test(`${cloud.type}: -gc deletes exactly the instances past their halt-timeout`, async () => {
    const { expired, kept, yaml, warning } = cloud.seedGc();
    const dir = makeProject(cloudFiles(`gc-${cloud.type}`, yaml));
    try {
      const r = await runSpread(['-gc'], dir, cloud.env());
      assert.equal(r.code, 0, linesOf(r));
      const live = cloud.live();
      for (const name of expired) assert.ok(!live.includes(name), `${name} is past its halt-timeout: deleted\n${linesOf(r)}`);
      for (const name of kept) assert.ok(live.includes(name), `${name} stays\n${linesOf(r)}`);
      for (const name of expired) assert.match(linesOf(r), new RegExp(`^Server ${name} exceeds halt-timeout`, 'm'));
      if (warning) assert.match(linesOf(r), warning);
    } finally {
      removeProject(dir);
    }
  });

  test(`${cloud.type}: each error users hit is one line naming backend, system and the fix, and leaves nothing`, async () => {
    const cases = cloud.errorBackends();
    const dir = makeProject(cloudFiles(`errors-${cloud.type}`, cases.map((c) => c.yaml).join('')));
    const pass = password();
    try {
      const liveBefore = cloud.live();
      const r = await runSpread([`-pass=${pass}`], dir, cloud.env({ errors: true }));
      await cloud.settle();
      const out = linesOf(r);
      assert.equal(r.code, 1, out);
      for (const c of cases) {
        const line = out.split('\n').find((l) => l.startsWith(`Cannot allocate ${c.name}:`));
        assert.ok(line, `no error line for ${c.name}:\n${out}\n${r.stderr}`);
        assert.match(line, c.expect, `${c.name}`);
        // Fatal at once: said once, not retried.
        assert.equal(out.split('\n').filter((l) => l.startsWith(`Cannot allocate ${c.name}:`)).length, 1, `${c.name} retried:\n${out}`);
      }
      assert.match(out, new RegExp(`^Aborted tasks: ${cases.length * 4}$`, 'm'));
      assert.deepEqual(cloud.live().filter((n) => !liveBefore.includes(n)), [], 'no instance left behind');
      assertNoSecrets(cloud, r.stdout + r.stderr, pass);
    } finally {
      removeProject(dir);
    }
  });
}
