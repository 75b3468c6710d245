/**
 * The original's own end-to-end checks (../shared/conformance/upstream-tests),
 * run for real: each inner project gets its backends switched to adhoc on a
 * test sshd, and the outer task's `execute` script runs unchanged with our
 * `spread` first on PATH, so every grep it does is checked against our
 * output. One adaptation: PyYAML 6 needs `safe_load` where the adhoc check
 * calls `yaml.load` (unrelated to spread).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { adhocPool, switchToAdhoc } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { SHARED, SPREAD_BIN } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const UPSTREAM = join(SHARED, 'conformance/upstream-tests');
const skip = sshdSkip();
let target: SshdTarget;
let pool: AdhocPool;
let bin: string;

before(async () => {
  if (skip) return;
  target = await startSshd({ host: '127.0.0.2', rebootable: true });
  pool = adhocPool([target]);
  bin = mkdtempSync(join(tmpdir(), 'spread-bin-'));
  writeFileSync(join(bin, 'spread'), `#!/bin/sh\nexec "${process.execPath}" "${SPREAD_BIN}" -pass="$SPREAD_TEST_PASS" "$@"\n`);
  chmodSync(join(bin, 'spread'), 0o755);
});

after(async () => {
  await target?.stop();
  pool?.remove();
  if (bin) rmSync(bin, { recursive: true, force: true });
});

function runOuter(name: string): Promise<{ code: number; output: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `spread-upstream-${name}-`));
  cpSync(join(UPSTREAM, name), dir, { recursive: true });
  writeFileSync(join(dir, 'spread.yaml'), switchToAdhoc(readFileSync(join(dir, 'spread.yaml'), 'utf8')));
  const outer = parse(readFileSync(join(dir, 'task.yaml'), 'utf8')) as { execute: string };
  const script = outer.execute.replace(/yaml\.load\(sys\.stdin\)/g, 'yaml.safe_load(sys.stdin)');
  return new Promise((resolve) => {
    execFile('/bin/bash', ['-c', `set -eux\n${script}`], {
      cwd: dir,
      env: { ...process.env, ...pool.env, PATH: `${bin}:${process.env['PATH']}`, SPREAD_TEST_PASS: target.rootPassword },
      maxBuffer: 64 << 20,
    }, (err, stdout, stderr) => {
      let log = '';
      for (const f of ['task.out']) {
        try {
          log += readFileSync(join(dir, f), 'utf8');
        } catch { /* not every check writes one */ }
      }
      resolve({ code: err ? 1 : 0, output: `${stdout}${stderr}\n--- task.out ---\n${log}`, dir });
    });
  });
}

for (const name of ['lxd', 'envs', 'match', 'nomatch', 'artifacts', 'repack', 'reboot', 'adhoc']) {
  test(`upstream tests/${name} passes with our spread`, { skip }, async () => {
    await target.run('rm -rf /home/test /home/adhoc');
    const r = await runOuter(name);
    try {
      assert.equal(r.code, 0, r.output);
    } finally {
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
}
