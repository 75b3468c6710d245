/**
 * Script rendering (spec §4.5) checked against golden files under
 * test/remote/golden/ (regenerate with SPREAD_UPDATE_GOLDEN=1 after a
 * deliberate change, and review the diff), plus the behaviour of the
 * helpers in a real bash.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportLine } from '../../src/project/env.js';
import { renderLocalScript, renderScript } from '../../src/remote/script.js';
import { REPO_ROOT } from '../helpers/fixture.js';

const GOLDEN = join(REPO_ROOT, 'test/remote/golden');

function golden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env['SPREAD_UPDATE_GOLDEN'] === '1') writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, 'utf8'), `${name} differs from its golden file`);
}

const ENV = [['SPREAD_JOB', 'adhoc:ubuntu-16.04:tests/a'], ['A', 'x'], ['B', ''], ['C', '"quoted"'], ['D', '$A/y'], ['E', "'single'"]] as const;

test('a job script renders as the original wraps it', () => {
  golden('job-script.sh', renderScript({ script: '  echo hello\n  MATCH x <<< x\n', dir: '/home/test/tests/a', env: ENV }));
});

test('a non-root login drops the sudo variables', () => {
  golden('job-script-sudo.sh', renderScript({ script: 'true', dir: '/p', env: [], sudo: true }));
});

test('a local script (adhoc, repack) has ADDRESS and FATAL and no cd', () => {
  golden('local-script.sh', renderLocalScript({ script: '  cat <&3 >&4\n', env: ENV }));
});

test('exports: quoted or empty values verbatim, others in double quotes, nothing escaped', () => {
  assert.equal(exportLine(['A', 'x y']), 'export A="x y"');
  assert.equal(exportLine(['B', '']), 'export B=');
  assert.equal(exportLine(['C', '"q"']), 'export C="q"');
  assert.equal(exportLine(['D', "'q'"]), "export D='q'");
  assert.equal(exportLine(['E', '$(uname)']), 'export E="$(uname)"');
});

const bash = (script: string, input = '') => spawnSync('/bin/bash', ['-c', script], { input, encoding: 'utf8' });

test('MATCH and NOMATCH behave as the original in a real bash', () => {
  const prelude = renderScript({ script: 'true', env: [], trace: false }).split('\n(')[0];
  const run = (body: string, input: string) => bash(`${prelude}\n${body}`, input);
  assert.equal(run('MATCH foo', 'foo\nbar\n').status, 0);
  assert.equal(run('MATCH foo', 'foo\nbar\n').stdout + run('MATCH foo', 'foo\n').stderr, '', 'a match prints nothing');
  const miss = run('MATCH baz', 'foo\nbar\n');
  assert.equal(miss.status, 1);
  assert.equal(miss.stderr, 'grep error: pattern not found, got:\nfoo\nbar\n');
  assert.equal(run('MATCH "(foo|bar)"', 'bar').status, 0, 'extended regular expressions');
  assert.equal(run("MATCH '^bar$'", 'foo\nbar\nbaz').status, 0, 'multi-line input');
  assert.match(run('MATCH', 'x').stdout, /^error: missing regexp argument$/m);
  const hit = run('NOMATCH error', 'foo\nerror\nbar\n');
  assert.equal(hit.status, 1);
  assert.equal(hit.stderr, "NOMATCH pattern='error' found in:\nfoo\nerror\nbar\n");
  assert.equal(run('NOMATCH error', 'foo\nbar').status, 0);
  assert.equal(run('set -u; echo x | MATCH x; echo "${UNSET_VAR:-still strict}"; [[ $- == *u* ]]', '').status, 0, 'MATCH leaves the caller\'s options alone');
});

test('REBOOT and ERROR print their marker and exit 213', () => {
  const prelude = renderScript({ script: 'true', env: [], trace: false }).split('\n(')[0];
  for (const [call, out] of [['REBOOT', '<REBOOT>'], ['REBOOT foo', '<REBOOT foo>'], ['ERROR went wrong', '<ERROR went wrong>'], ['ERROR', '<ERROR>']]) {
    const r = bash(`${prelude}\nset -x\n${call}\necho unreachable`);
    assert.equal(r.status, 213, call);
    assert.equal(r.stdout, `${out}\n`, call);
    assert.doesNotMatch(r.stderr, /echo/, `${call}: the helper's own lines are not traced`);
  }
});

test('a rendered script runs: cd, exports expanded remotely, stdin from /dev/null', () => {
  const out = execFileSync('/bin/bash', ['-s'], {
    input: renderScript({ script: 'pwd; echo "$D"; cat; echo done', dir: '/tmp', env: [['A', 'x'], ['D', '$A/y']], trace: false }),
    encoding: 'utf8',
  });
  assert.equal(out, '/tmp\nx/y\ndone\n');
});
