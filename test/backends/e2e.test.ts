/**
 * Whole spread runs on docker, podman and lxd: a multi-task project on 2
 * workers, checking that jobs ran inside the containers (hostname, OS
 * release), the prepare/restore nesting on each machine, fetched artifacts,
 * that no container is left afterwards, and that -reuse keeps the machines
 * and a second run reuses them until -discard.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';
import { answers, projectName, skipUnless } from './fixture.js';

const IMAGE = 'spread-test/debian:12';
const PODMAN_OPTIONS = '[--runtime, runc, --ulimit, "nofile=1024:1024", --ulimit, "nproc=4096:4096"]';

interface Engine {
  readonly type: 'docker' | 'podman' | 'lxd';
  readonly ready: () => boolean;
  /** The backend's extra spread.yaml lines. */
  readonly backend: string;
  /** Names of this project's machines still present (`log`: spread's output, naming them). */
  readonly leftovers: (project: string, log: string) => string[];
}

const lines = (argv: string[]): string[] => {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

const ENGINES: Engine[] = [
  {
    type: 'docker',
    ready: () => answers(['docker', 'image', 'inspect', IMAGE]),
    backend: '',
    leftovers: (p) => lines(['docker', 'ps', '-a', '--filter', `label=spread.project=${p}`, '--format', '{{.Names}}']),
  },
  {
    type: 'podman',
    ready: () => answers(['podman', 'image', 'inspect', IMAGE]),
    backend: `        run-options: ${PODMAN_OPTIONS}\n`,
    leftovers: (p) => lines(['podman', 'ps', '-a', '--filter', `label=spread.project=${p}`, '--format', '{{.Names}}']),
  },
  {
    type: 'lxd',
    ready: () => answers(['lxc', 'image', 'info', 'spread-debian-12']),
    backend: '',
    // LXD names carry no project: look for the containers this run's log names.
    leftovers: (_, log) => {
      const named = new Set([...log.matchAll(/\((spread-\d+-debian-12)\)/g)].map((m) => m[1]!));
      const present = new Set(lines(['lxc', 'list', '--format=csv', '-c', 'n']));
      return [...named].filter((n) => present.has(n));
    },
  },
];

const note = (what: string) => `echo "${what} $(hostname)" >> /root/nesting.log`;

function project(engine: Engine, name: string): Record<string, string> {
  const image = engine.type === 'lxd' ? 'spread-debian-12' : IMAGE;
  const tasks: Record<string, string> = {};
  for (let i = 0; i < 4; i++) {
    tasks[`tests/t${i}/task.yaml`] = `summary: t${i}
artifacts: [facts.txt]
prepare: ${note(`prepare t${i}`)}
execute: |
    ${note(`execute t${i}`)}
    { hostname; . /etc/os-release; echo "$ID $VERSION_ID"; } > facts.txt
    # Long enough for the second machine to be up (lxd takes seconds) and take its share.
    sleep ${engine.type === 'lxd' ? 4 : 1}
restore: ${note(`restore t${i}`)}
`;
  }
  return {
    'spread.yaml': `project: ${name}
path: /home/e2e
prepare: ${note('project prepare')}
restore: ${note('project restore')}
backends:
    ${engine.type}:
${engine.backend}        systems:
            - debian-12:
                image: ${image}
                workers: 2
suites:
    tests/:
        summary: tests
        prepare: ${note('suite prepare')}
        restore: |
            ${note('suite restore')}
            cat /root/nesting.log
`,
    ...tasks,
  };
}

for (const engine of ENGINES) {
  const ready = engine.ready();
  describe(`spread on ${engine.type}`, { skip: skipUnless(ready, `${engine.type} or the test image is not available (run .ci/engines.sh --images ${engine.type})`), timeout: 240_000 }, () => {
    test('2 workers run the jobs inside containers, nest scripts, fetch artifacts and leave nothing behind', async () => {
      const name = projectName(`e2e-${engine.type}`);
      const dir = makeProject(project(engine, name));
      try {
        const r = await runSpread(['-vv', '-artifacts=out'], dir);
        assert.equal(r.code, 0, r.stdout);
        assert.match(r.stdout, /Successful tasks: 4\n.* Aborted tasks: 0\n$/);
        // The job name's slash makes a directory: out/<backend:system:tests>/<task>/.
        const facts = [0, 1, 2, 3].map((i) => readFileSync(join(dir, 'out', `${engine.type}:debian-12:tests`, `t${i}`, 'facts.txt'), 'utf8').trim().split('\n'));
        assert.equal(facts.length, 4, 'every job\'s artifact was fetched');
        for (const [, os] of facts) assert.equal(os, 'debian 12');
        const hosts = new Set(facts.map(([host]) => host));
        assert.equal(hosts.size, 2, `two machines ran jobs: ${[...hosts].join(', ')}`);
        assert.ok(![...hosts].includes(execFileSync('hostname', { encoding: 'utf8' }).trim()), 'not on this host');
        // Each machine's log, printed by the last suite restore: the nesting on that machine.
        for (const host of hosts) {
          const log = [...r.stdout.matchAll(new RegExp(`^(\\w+ [\\w ]*?) ${host}$`, 'gm'))].map((m) => m[1]!);
          const tasksHere = log.filter((l) => l.startsWith('execute')).map((l) => l.split(' ')[1]);
          const expected = ['project prepare', 'suite prepare', ...tasksHere.flatMap((t) => [`prepare ${t}`, `execute ${t}`, `restore ${t}`]), 'suite restore'];
          assert.deepEqual(log.slice(0, expected.length), expected, `nesting on ${host}`);
        }
        assert.deepEqual(engine.leftovers(name, r.stdout), [], 'every container was removed');
      } finally {
        removeProject(dir);
      }
    });

    test('-reuse keeps the containers; the next run reuses them; -discard removes them', async () => {
      const name = projectName(`e2e-${engine.type}`);
      const dir = makeProject(project(engine, name));
      let log = '';
      try {
        const first = await runSpread(['-reuse'], dir);
        log = first.stdout;
        assert.equal(first.code, 0, first.stdout);
        assert.equal((first.stdout.match(/^.* Keeping /gm) ?? []).length, 2);
        const kept = engine.leftovers(name, first.stdout);
        assert.equal(kept.length, 2, 'both machines kept');
        const second = await runSpread(['-reuse', 'tests/t1'], dir);
        assert.equal(second.code, 0, second.stdout);
        assert.match(second.stdout, /Reusing .*\.\.\./);
        assert.doesNotMatch(second.stdout, /Allocating/);
        assert.deepEqual(engine.leftovers(name, first.stdout).sort(), kept.sort(), 'the same containers');
        const discard = await runSpread(['-discard'], dir);
        assert.equal(discard.code, 0, discard.stdout);
        log = first.stdout;
        assert.deepEqual(engine.leftovers(name, first.stdout), []);
      } finally {
        for (const n of engine.leftovers(name, log)) {
          if (engine.type === 'lxd') lines(['lxc', 'delete', '--force', n]);
          else lines([engine.type, 'rm', '-f', n]);
        }
        removeProject(dir);
      }
    });
  });
}

describe('a recorded machine that is gone', { skip: skipUnless(ENGINES[0]!.ready(), 'docker or the test image is not available'), timeout: 120_000 }, () => {
  test('-reuse forgets the gone one and allocates a new one instead; -discard discards the live one', async () => {
    const engine = ENGINES[0]!;
    const name = projectName('e2e-gone');
    const files = project(engine, name);
    files['spread.yaml'] = files['spread.yaml']!.replace('workers: 2', 'workers: 1');
    const dir = makeProject(files);
    let log = '';
    try {
      const first = await runSpread(['-reuse', 'tests/t0'], dir);
      log += first.stdout;
      const [gone] = engine.leftovers(name, log);
      assert.ok(gone, first.stdout);
      lines(['docker', 'rm', '-f', gone]);
      const second = await runSpread(['-reuse', 'tests/t1'], dir);
      log += second.stdout;
      assert.equal(second.code, 0, second.stdout);
      assert.match(second.stdout, /Forgetting docker:debian-12 at .*No such object/);
      assert.match(second.stdout, /Allocating docker:debian-12\.\.\./);
      const discard = await runSpread(['-discard'], dir);
      assert.doesNotMatch(discard.stdout, /Forgetting/, 'the gone one was forgotten already');
      assert.match(discard.stdout, /Discarding docker:debian-12 /);
      assert.deepEqual(engine.leftovers(name, log), []);
      assert.equal(readFileSync(join(dir, '.spread-reuse.yaml'), 'utf8'), '', 'nothing left recorded');
    } finally {
      for (const n of engine.leftovers(name, log)) lines(['docker', 'rm', '-f', n]);
      removeProject(dir);
    }
  });
});
