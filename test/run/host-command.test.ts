/**
 * `$(HOST:...)` output (often secrets) leaves no trace on the host: the
 * private directory it passes through is mode 0700 while spread lives and
 * gone when it ends, whether spread exits, or is killed outright.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostShell } from '../../src/run/host-command.js';
import { makeProject, removeProject, runSpread, SPREAD_BIN } from '../helpers/fixture.js';

const hostDirs = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('spread-host-'));

const project = (value: string): Record<string, string> => ({
  'spread.yaml': `project: p\npath: /p\nenvironment:\n    SECRET: "$(HOST: ${value})"\nbackends:\n    lxd:\n        systems: [ubuntu-22.04]\nsuites:\n    s/:\n        summary: s\n`,
  's/t/task.yaml': 'summary: t\nexecute: "true"\n',
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('-list leaves no spread-host directory behind; while a command runs it is private (0700)', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'spread-host-test-'));
  // The command looks at its own output directory: the only spread-host-* in this TMPDIR.
  const dir = makeProject(project('stat -c %a \\"$TMPDIR\\"/spread-host-* > \\"$TMPDIR/mode\\"; echo s3cret'));
  try {
    const r = await runSpread(['-list'], dir, { TMPDIR: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(tmp, 'mode'), 'utf8'), '700\n');
    assert.deepEqual(hostDirs(tmp), []);
  } finally {
    removeProject(dir);
    removeProject(tmp);
  }
});

test('the output directory is 0700, files go as soon as they are read, and close removes it', async () => {
  const shell = new HostShell(process.cwd());
  try {
    // The command's stdout is a file in the directory: find it through /proc.
    const here = 'p=$BASHPID; d=$(dirname "$(readlink /proc/$p/fd/1)")';
    assert.equal(await shell.run(`${here}; ls -ld "$d" | cut -c1-10`), 'drwx------');
    const dir = await shell.run(`${here}; echo "$d"`);
    assert.deepEqual(readdirSync(dir), [], 'the earlier commands\' files are gone');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    await assert.rejects(shell.run('echo oops >&2; exit 3'), /^Error: oops$/);
    assert.deepEqual(readdirSync(dir), []);
    shell.close();
    assert.equal(existsSync(dir), false);
  } finally {
    shell.close();
  }
});

test('a project without $(HOST:...) creates no directory at all', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'spread-host-test-'));
  const dir = makeProject({ ...project('x'), 'spread.yaml': project('x')['spread.yaml']!.replace(/ {4}SECRET.*\n/, '    PLAIN: yes\n') });
  try {
    const child = spawn(process.execPath, [SPREAD_BIN, '-list'], { cwd: dir, env: { ...process.env, TMPDIR: tmp } });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.deepEqual(hostDirs(tmp), []);
  } finally {
    removeProject(dir);
    removeProject(tmp);
  }
});

test('spread killed with SIGKILL while a command runs: the directory still goes', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'spread-host-test-'));
  // The command records its pid (sleep replaces it) so the test can end it.
  const dir = makeProject(project('echo $BASHPID > \\"$TMPDIR/started\\"; exec sleep 60'));
  let sleeper = 0;
  try {
    const child = spawn(process.execPath, [SPREAD_BIN, '-list'], { cwd: dir, env: { ...process.env, TMPDIR: tmp }, stdio: 'ignore' });
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await until(() => existsSync(join(tmp, 'started')) && readFileSync(join(tmp, 'started'), 'utf8').endsWith('\n'), 'the command to start');
    sleeper = Number(readFileSync(join(tmp, 'started'), 'utf8'));
    assert.equal(hostDirs(tmp).length, 1);
    assert.equal(statSync(join(tmp, hostDirs(tmp)[0]!)).mode & 0o777, 0o700);
    child.kill('SIGKILL');
    await closed;
    await until(() => hostDirs(tmp).length === 0, 'the directory to be removed');
  } finally {
    if (sleeper > 0) {
      try {
        process.kill(sleeper, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    removeProject(dir);
    removeProject(tmp);
  }
});
