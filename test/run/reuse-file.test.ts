/**
 * The reuse file under hostile conditions: corrupt content refused and kept
 * byte for byte, no `flock` (a fallback lock that still keeps two runs
 * apart), a `flock` that dies before taking the lock, and, with real docker
 * containers, a reused machine that moved to a new port or is gone.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import seedrandom from 'seedrandom';
import { parse } from 'yaml';
import { answers, skipUnless } from '../backends/fixture.js';
import { TEST_IMAGE } from '../backends/container-suite.js';
import { makeProject, removeProject, runSpread, SPREAD_BIN, stripTime } from '../helpers/fixture.js';

const LOCAL = {
  'spread.yaml': 'project: reusefile\npath: /reusefile\nbackends:\n    local:\n        systems: [a-1]\nsuites:\n    tests/:\n        summary: tests\n',
  'tests/t/task.yaml': 'summary: t\nexecute: echo ran\n',
};

const VALID = `backends:
    adhoc:
        systems:
            - ubuntu-16.04:
                  password: secret
                  address: 127.0.0.1:2222
`;
const bytes = (n: number, seed: string): Buffer => {
  const rng = seedrandom(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(rng() * 256)));
};

const CORRUPT: Record<string, { content: Buffer; why: RegExp }> = {
  'random bytes': { content: bytes(600, 'reuse'), why: /: .+; fix or remove it \(it was left as it is\)$/ },
  'truncated in a key': { content: Buffer.from(VALID.slice(0, VALID.indexOf('address') + 4)), why: /: .+; fix or remove it/ },
  'truncated before the address': { content: Buffer.from(VALID.slice(0, VALID.indexOf('address'))), why: /: backend "adhoc", system "ubuntu-16\.04": no address; fix or remove it/ },
  'a list of systems at the top': { content: Buffer.from('- ubuntu-16.04\n- debian-12\n'), why: /: not a map of backends; / },
  'systems not a list': { content: Buffer.from('backends:\n    adhoc:\n        systems: {ubuntu-16.04: {address: x}}\n'), why: /: backend "adhoc": "systems" is not a list; / },
  'an unknown key': { content: Buffer.from(`${VALID}machines: []\n`), why: /: unknown key "machines" \(only "backends"\); / },
};

for (const [what, { content, why }] of Object.entries(CORRUPT)) {
  test(`a reuse file with ${what} is refused in one line and left byte for byte`, async () => {
    const dir = makeProject(LOCAL);
    try {
      const file = join(dir, '.spread-reuse.yaml');
      writeFileSync(file, content);
      for (const args of [['-reuse'], ['-discard']]) {
        const r = await runSpread(args, dir);
        assert.equal(r.code, 1);
        const lines = r.stderr.split('\n').filter(Boolean);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, new RegExp(`^error: cannot read reuse tracking file ${file.replace(/[.]/g, '\\.')}${why.source}`));
        assert.doesNotMatch(r.stdout, /Allocating|Executing/, 'nothing ran');
        assert.ok(readFileSync(file).equals(content), 'the file is untouched');
        assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.spread-reuse')), ['.spread-reuse.yaml'], 'no .new, .tmp or .lock left');
      }
    } finally {
      removeProject(dir);
    }
  });
}

/** A PATH with everything of /usr/bin and /bin but `flock`, plus `extra` scripts. */
function pathWithout(extra: Record<string, string> = {}): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'spread-path-'));
  for (const from of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    let names: string[] = [];
    try {
      names = readdirSync(from);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name === 'flock' || existsSync(join(dir, name))) continue;
      symlinkSync(join(from, name), join(dir, name));
    }
  }
  for (const [name, script] of Object.entries(extra)) {
    writeFileSync(join(dir, name), script);
    chmodSync(join(dir, name), 0o755);
  }
  return { path: dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

test('without flock: a warning, and a lock file that still keeps a second run waiting', async () => {
  const noFlock = pathWithout();
  const dir = makeProject({
    ...LOCAL,
    'tests/t/task.yaml': `summary: t\nexecute: |\n    touch "${'$'}{RELEASE_DIR}/started"\n    while ! test -e "${'$'}{RELEASE_DIR}/release"; do sleep 0.05; done\nenvironment:\n    RELEASE_DIR: '$(HOST:echo "$RELEASE_DIR")'\n`,
  });
  const releaseDir = mkdtempSync(join(tmpdir(), 'spread-release-'));
  const env = { ...process.env, PATH: noFlock.path, RELEASE_DIR: releaseDir };
  const run = (args: string[]) => {
    const child = spawn(process.execPath, [SPREAD_BIN, ...args], { cwd: dir, env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    return { output: () => out, done: new Promise<number | null>((resolve) => child.on('close', resolve)) };
  };
  const until = async (cond: () => boolean, what: string) => {
    for (const deadline = Date.now() + 60_000; !cond(); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };
  try {
    const first = run(['-reuse']);
    await until(() => existsSync(join(releaseDir, 'started')), 'the first run to hold the lock and start its task');
    assert.match(stripTime(first.output()), /WARNING: flock \(util-linux\) is not installed: locking .*\.spread-reuse\.yaml with .*\.spread-reuse\.yaml\.lock instead/);
    const second = run(['-reuse']);
    await until(() => second.output().includes('Waiting for another process to release reuse lock.'), 'the second run to wait');
    assert.doesNotMatch(second.output(), /Executing/, 'the second run has not started while the first holds the lock');
    writeFileSync(join(releaseDir, 'release'), '');
    assert.equal(await first.done, 0, first.output());
    assert.equal(await second.done, 0, second.output());
    assert.match(second.output(), /Reusing local:a-1/, 'the second run reused what the first kept');
    assert.equal(existsSync(join(dir, '.spread-reuse.yaml.lock')), false, 'the lock file is removed');
    assert.equal((await runSpread(['-discard'], dir, { PATH: noFlock.path })).code, 0);
  } finally {
    noFlock.remove();
    removeProject(dir);
    rmSync(releaseDir, { recursive: true, force: true });
  }
});

test('a flock that exits before taking the lock does not hang the run: a warning, then the fallback lock', async () => {
  const broken = pathWithout({ flock: '#!/bin/sh\necho "flock: cannot open lock file: Permission denied" >&2\nexit 66\n' });
  const dir = makeProject(LOCAL);
  try {
    const r = await runSpread([], dir, { PATH: broken.path });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(stripTime(r.stdout), /WARNING: flock ended before taking the lock \(exit status 66: flock: cannot open lock file: Permission denied\): locking /);
    assert.match(r.stdout, /Successful tasks: 1/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.spread-reuse')), []);
  } finally {
    broken.remove();
    removeProject(dir);
  }
});

describe('reused docker containers that moved or are gone', { skip: skipUnless(answers(['docker', 'image', 'inspect', TEST_IMAGE]), `docker or its image ${TEST_IMAGE} is not available`) }, () => {
  const name = `reuse-${process.pid}-${Date.now().toString(36)}`;
  const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
  const containers = () => docker('ps', '-a', '-q', '--filter', `label=spread.project=${name}`).split(/\s+/).filter(Boolean);
  let dir: string;
  before(() => {
    dir = makeProject({
      'spread.yaml': `project: ${name}\npath: /home/reuse\nbackends:\n    docker:\n        systems:\n            - debian-12:\n                image: ${TEST_IMAGE}\nsuites:\n    tests/:\n        summary: tests\n`,
      'tests/t/task.yaml': 'summary: t\nexecute: echo ran\n',
    });
  });
  after(() => {
    const left = containers();
    if (left.length > 0) docker('rm', '-f', ...left);
    removeProject(dir);
  });
  const recorded = (): string[] => {
    const doc = parse(readFileSync(join(dir, '.spread-reuse.yaml'), 'utf8') || '{}') as { backends?: { docker?: { systems: Record<string, { address: string }>[] } } };
    return (doc.backends?.docker?.systems ?? []).map((s) => s['debian-12']!.address);
  };

  test('a stopped container restarted on a new port: the entry follows it, and one -discard removes it', async () => {
    const first = await runSpread(['-reuse'], dir);
    assert.equal(first.code, 0, first.stdout);
    const [before] = recorded();
    assert.ok(before);
    const [id] = containers();
    docker('stop', '-t', '0', id!);
    // Hold the old port, so the restarted container cannot get it back.
    const port = Number(before!.split(':')[1]);
    const holder = net.createServer();
    await new Promise<void>((resolve, reject) => holder.once('error', reject).listen(port, '127.0.0.1', resolve));
    try {
      const second = await runSpread(['-reuse', '-v'], dir);
      assert.equal(second.code, 0, second.stdout);
      assert.match(second.stdout, /Starting stopped container/);
      const after = recorded();
      assert.equal(after.length, 1, 'one entry, not the old one plus a new one');
      assert.notEqual(after[0], before);
      assert.match(second.stdout, new RegExp(`moved from ${before} to ${after[0]}`));
    } finally {
      holder.close();
    }
    const discard = await runSpread(['-discard'], dir);
    assert.equal(discard.code, 0, discard.stdout);
    assert.deepEqual(containers(), [], 'one -discard was enough');
    assert.equal(existsSync(join(dir, '.spread-reuse.yaml')) ? recorded().length : 0, 0);
  });

  test('a container removed behind spread\'s back is forgotten, and a new one allocated', async () => {
    assert.equal((await runSpread(['-reuse'], dir)).code, 0);
    const [gone] = recorded();
    docker('rm', '-f', ...containers());
    const r = await runSpread(['-reuse'], dir);
    assert.equal(r.code, 0, r.stdout);
    assert.match(stripTime(r.stdout), new RegExp(`Forgetting docker:debian-12 at ${gone}: cannot reuse container `));
    assert.equal(recorded().length, 1);
    assert.notEqual(recorded()[0], gone);
    assert.equal((await runSpread(['-discard'], dir)).code, 0);
    assert.deepEqual(containers(), []);
  });
});

