/**
 * What `spread -list` loads. The command is one bundle (scripts/bundle.mjs),
 * but what only a run needs (ssh2, tar packing, the runner, Redis) sits in
 * module initialisers that run when a run starts: -list, -h and -version
 * never evaluate it. Seen from outside through what the process requires
 * (Node's built-in modules and the packages left outside the bundle), with a
 * run as the control that the same probe does see them. (bench/startup.ts
 * measures the time.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { baseEnv, makeProject, removeProject, SPREAD_BIN } from '../helpers/fixture.js';

const dir = makeProject({
  'spread.yaml': `project: startup
path: /remote/startup
backends:
    adhoc:
        allocate: FATAL "no machines here"
        systems: [ubuntu-24.04]
suites:
    tests/:
        summary: tests
`,
  'tests/one/task.yaml': 'summary: one\nexecute: "true"\n',
  // Records every require() of the process: the bundle's own, and those of what it loads.
  'probe.cjs': `const Module = require('node:module');
const seen = new Set();
const original = Module.prototype.require;
Module.prototype.require = function (id) { seen.add(id); return original.apply(this, arguments); };
process.on('exit', () => require('node:fs').writeFileSync(process.env.PROBE_OUT, [...seen].join('\\n')));
`,
});
after(() => removeProject(dir));

/** The modules `spread args` required, and its exit status. */
function required(args: string[]): Promise<{ code: number; modules: Set<string> }> {
  const out = join(dir, 'required.txt');
  writeFileSync(out, '');
  return new Promise((resolve) => {
    execFile(process.execPath, ['--require', join(dir, 'probe.cjs'), SPREAD_BIN, ...args], { cwd: dir, env: { ...baseEnv(), PROBE_OUT: out } }, (err) => {
      const modules = new Set(readFileSync(out, 'utf8').split('\n').map((m) => m.replace(/^node:/, '')));
      resolve({ code: err ? Number(err.code) : 0, modules });
    });
  });
}

/** What only a run evaluates: ssh2 (its native helper), tar's compression, sockets, Redis. */
const RUN_ONLY = ['cpu-features', 'zlib', 'net', 'ioredis'];

test('-list, -h and -version evaluate no SSH, tar or runner code; a run does', async () => {
  for (const args of [['-list'], ['-h'], ['-version']]) {
    const { modules } = await required(args);
    assert.ok(modules.has('fs'), `the probe sees what ${args[0]} requires`);
    for (const m of RUN_ONLY) assert.ok(!modules.has(m), `${args[0]} does not load ${m}`);
  }
  // A run that fails at allocation has started the runner: the same probe sees SSH and tar (not Redis, only for -queue).
  const run = await required(['-pass=x']);
  assert.equal(run.code, 1);
  for (const m of RUN_ONLY.filter((m) => m !== 'ioredis')) assert.ok(run.modules.has(m), `a run loads ${m}`);
  assert.ok([...run.modules].some((m) => m.endsWith('/sshcrypto.node')), 'ssh2 loads its native crypto from the installed package');
});
