/**
 * The command's V8 code cache (src/cli/launch.ts): written once per kind of
 * command into the user's cache directory, private, taken as it is by the
 * next run (not written again), replaced when V8 rejects it, never in the
 * way: a broken cache or an unwritable directory only costs the compile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeProject, removeProject, runSpread, SPREAD_YAML } from '../helpers/fixture.js';

const project = makeProject({ 'spread.yaml': SPREAD_YAML(), 'tests/a/task.yaml': 'summary: a\nexecute: "true"\n' });
const scratch = mkdtempSync(join(tmpdir(), 'spread-cache-test-'));
after(() => {
  removeProject(project);
  rmSync(scratch, { recursive: true, force: true });
});

const LISTED = 'lxd:ubuntu-16.04:tests/a\n';
let n = 0;
const freshCache = (): string => join(scratch, `cache-${++n}`);
const list = (cache: string, env: NodeJS.ProcessEnv = {}) => runSpread(['-list'], project, { XDG_CACHE_HOME: cache, ...env });
const files = (cache: string): string[] => {
  try {
    return readdirSync(join(cache, 'spread-ts')).sort();
  } catch {
    return [];
  }
};

test('the first -list writes a private cache for its kind; the next takes it as it is', async () => {
  const cache = freshCache();
  assert.equal((await list(cache)).stdout, LISTED);
  const [name, ...more] = files(cache);
  assert.match(name ?? '', /^v\d+\.\d+\.\d+-[a-z0-9]+-\d+-\d+-list\.v8cache$/);
  assert.deepEqual(more, []);
  assert.equal(statSync(join(cache, 'spread-ts')).mode & 0o777, 0o700);
  const file = join(cache, 'spread-ts', name!);
  const first = statSync(file);
  assert.equal(first.mode & 0o777, 0o600);
  assert.ok(first.size > 100_000, 'the cache holds the compiled bundle');
  assert.equal((await list(cache)).stdout, LISTED);
  // Written again only when missing or rejected: the same file (renamed over, it would be a new inode).
  assert.equal(statSync(file).ino, first.ino);
  assert.equal(statSync(file).mtimeMs, first.mtimeMs);
});

test('a run writes the run cache; a command that stops before its run starts (bad flag, broken spread.yaml) writes none', async () => {
  const cache = freshCache();
  const env = { XDG_CACHE_HOME: cache };
  assert.equal((await runSpread(['-no-such-flag'], project, env)).code, 2);
  const broken = makeProject({ 'spread.yaml': 'project: [\n' });
  try {
    assert.equal((await runSpread(['-pass=x'], broken, env)).code, 1);
  } finally {
    removeProject(broken);
  }
  assert.deepEqual(files(cache), [], 'too little of the run compiled to serve later runs');
  const local = makeProject({
    'spread.yaml': 'project: cached\npath: /cached\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    checks/:\n        summary: checks\n',
    'checks/one/task.yaml': 'summary: one\nexecute: "true"\n',
  });
  try {
    const r = await runSpread(['-pass=x'], local, env);
    assert.equal(r.code, 0, r.stdout);
  } finally {
    removeProject(local);
  }
  assert.deepEqual(files(cache).map((f) => f.replace(/.*-/, '')), ['run.v8cache']);
});

test('runs started together with no cache all work and leave one cache, no temp files', async () => {
  const cache = freshCache();
  const runs = await Promise.all(Array.from({ length: 4 }, () => list(cache)));
  for (const r of runs) assert.equal(r.stdout, LISTED);
  assert.deepEqual(files(cache).map((f) => f.replace(/.*-/, '')), ['list.v8cache']);
});

test('a cache V8 rejects is replaced, and the command works as without one', async () => {
  const cache = freshCache();
  await list(cache);
  const file = join(cache, 'spread-ts', files(cache)[0]!);
  writeFileSync(file, Buffer.alloc(4096, 7));
  assert.equal((await list(cache)).stdout, LISTED);
  assert.notDeepEqual(readFileSync(file).subarray(0, 64), Buffer.alloc(64, 7));
  assert.ok(statSync(file).size > 100_000);
});

test('caches of other bundles or Node versions, and temp files left behind, are dropped when a new one is written', async () => {
  const cache = freshCache();
  await list(cache);
  writeFileSync(join(cache, 'spread-ts', 'v18.0.0-x64-1000-1-run.v8cache'), 'old');
  writeFileSync(join(cache, 'spread-ts', `${files(cache)[0]}.999999`), 'left by a run killed while writing');
  rmSync(join(cache, 'spread-ts', files(cache).find((f) => f.endsWith('-list.v8cache'))!));
  await list(cache);
  assert.deepEqual(files(cache).map((f) => f.replace(/.*-/, '')), ['list.v8cache']);
});

test('SPREAD_COMPILE_CACHE=off writes nothing; an unwritable cache directory is no error', async () => {
  const off = freshCache();
  assert.equal((await list(off, { SPREAD_COMPILE_CACHE: 'off' })).stdout, LISTED);
  assert.deepEqual(files(off), []);
  const blocked = freshCache();
  writeFileSync(blocked, 'a file where the directory would be');
  const r = await list(blocked);
  assert.equal(r.stdout, LISTED);
  assert.equal(r.stderr, '');
});
