/**
 * -debug and -shell through a real terminal: tmux runs spread, the test
 * types into the shell that opens on the machine (a real sshd, and the local
 * backend), checks what it sees, exits, and checks the run goes on to the
 * right summary.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import type { AdhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, SPREAD_BIN } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';
import { finished, startInTmux, tmux, tmuxSkip, waitScreen } from '../helpers/tmux.js';

const skip = tmuxSkip || sshdSkip();
let target: SshdTarget;
let pool: AdhocPool;

before(async () => {
  if (skip) return;
  target = await startSshd({ host: '127.0.0.10', rootPassword: 'shell-pw' });
  pool = adhocPool([target]);
});
after(async () => {
  await target?.stop();
  pool?.remove();
});

const PROJECT = (backend: string) => ({
  'spread.yaml': `project: shells\npath: /home/shell\nenvironment:\n    MYVAR: from-the-project\nbackends:\n${backend}suites:\n    tests/:\n        summary: tests\n`,
  'tests/fails/task.yaml': 'summary: fails\nenvironment:\n    TASKVAR: task-value\nexecute: |\n    echo failing now\n    false\n',
  'tests/passes/task.yaml': 'summary: passes\nexecute: "true"\n',
});

test('-debug opens a shell on the machine where a script failed, with its environment; the run then goes on', { skip }, async () => {
  await target.run('rm -rf /home/shell');
  const dir = makeProject(PROJECT(adhocBackend('adhoc', '- ubuntu-16.04')));
  const session = `spread-debug-${process.pid}`;
  try {
    startInTmux(session, dir, ['-debug', '-pass=shell-pw', '-seed=3'], pool.env);
    await waitScreen(session, /adhoc:ubuntu-16\.04 \.\.\.\/tests\/fails# $/m, 'the debug shell prompt');
    tmux('send-keys', '-t', session, 'echo "seen: $MYVAR $TASKVAR $SPREAD_JOB in $PWD as $(id -u)"', 'Enter');
    const text = await waitScreen(session, /^seen: /m, 'the command output');
    assert.match(text, /^seen: from-the-project task-value adhoc:ubuntu-16\.04:tests\/fails in \/home\/shell\/tests\/fails as 0$/m);
    tmux('send-keys', '-t', session, 'echo ok | MATCH ok && echo helpers-work', 'Enter');
    await waitScreen(session, /^helpers-work$/m, 'MATCH in the shell');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    const r = await finished(dir);
    assert.equal(r.status, 1);
    assert.match(r.out, /Starting shell to debug\.\.\./);
    assert.match(r.out, /Continuing\.\.\./);
    assert.match(r.out, /Successful tasks: 1\n.*Aborted tasks: 0\n.*Failed tasks: 1\n    - adhoc:ubuntu-16.04:tests\/fails\n/);
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});

test('-shell opens a shell instead of execute, on the local backend too; the task counts as passed', { skip: tmuxSkip }, async () => {
  const dir = makeProject(PROJECT('    local:\n        systems: [this-host]\n'));
  const session = `spread-shell-${process.pid}`;
  try {
    startInTmux(session, dir, ['-shell', 'tests/fails'], {});
    await waitScreen(session, /local:this-host \.\.\.\/tests\/fails# $/m, 'the shell prompt');
    tmux('send-keys', '-t', session, 'echo "here: $TASKVAR $SPREAD_VARIANT."', 'Enter');
    await waitScreen(session, /^here: task-value \.$/m, 'the command output');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    const r = await finished(dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Starting shell instead of executing local:this-host:tests\/fails\.\.\./);
    assert.match(r.out, /Successful tasks: 1\n.*Aborted tasks: 0\n$/);
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});

test('interactive modes need a terminal', async () => {
  const dir = makeProject(PROJECT('    local:\n        systems: [this-host]\n'));
  try {
    const out = execFileSync('/bin/bash', ['-c', `'${process.execPath}' '${SPREAD_BIN}' -debug < /dev/null; echo "status $?"`], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /status 1/);
  } finally {
    removeProject(dir);
  }
});

test('-shell-before and -shell-after open a shell before and after execute', { skip: tmuxSkip }, async () => {
  const dir = makeProject({
    ...PROJECT('    local:\n        systems: [this-host]\n'),
    'tests/passes/task.yaml': 'summary: passes\nexecute: touch executed\n',
  });
  const session = `spread-around-${process.pid}`;
  try {
    startInTmux(session, dir, ['-shell-before', '-shell-after', 'tests/passes'], {});
    await waitScreen(session, /Starting shell instead of executing local:this-host:tests\/passes[\s\S]*# $/m, 'the shell before execute');
    tmux('send-keys', '-t', session, 'test -e executed && echo "before: executed" || echo "before: not yet"', 'Enter');
    await waitScreen(session, /^before: not yet$/m, 'the first shell to run before execute');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    await waitScreen(session, /Starting shell after executing local:this-host:tests\/passes[\s\S]*# $/m, 'the shell after execute');
    tmux('send-keys', '-t', session, 'test -e executed && echo "after: executed"', 'Enter');
    await waitScreen(session, /^after: executed$/m, 'the second shell to run after execute');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    const r = await finished(dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Successful tasks: 1\n/);
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});

test('on a terminal a status line shows progress, and leaves no trace when the run ends', { skip: tmuxSkip }, async () => {
  const dir = makeProject({
    'spread.yaml': 'project: progress\npath: /progress\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: tests\n',
    ...Object.fromEntries(['a', 'b', 'c'].map((t) => [`tests/${t}/task.yaml`, 'summary: slow\nexecute: sleep 1\n'])),
    'run-tty.sh': `cd "$1" && '${process.execPath}' '${SPREAD_BIN}' -seed=1; echo "STATUS=$?"; sleep 600\n`,
  });
  const session = `spread-progress-${process.pid}`;
  try {
    tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', `env -u CI bash '${join(dir, 'run-tty.sh')}' '${dir}'`);
    // The status line names the next job when it starts, a moment before its "Executing" line: wait for both.
    const during = await waitScreen(session, /Executing local:this-host:tests\/\w .*\(2\/3\)\.\.\.\nspread: 1\/3 done, 1 running \(tests\/\w\), 0:0\d$/m, 'the second job\'s log line above the status line');
    assert.match(during, /Executing local:this-host:tests\/\w .*\(2\/3\)\.\.\.\nspread: 1\/3 done/, 'log lines stay above the status line');
    const after = await waitScreen(session, /^STATUS=0$/m, 'the end of the run');
    assert.doesNotMatch(after, /^spread: /m, 'the status line is gone');
    assert.match(after, /Successful tasks: 3\n.*Aborted tasks: 0\nSTATUS=0/);
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});
