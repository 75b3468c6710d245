/**
 * -shell on a chosen instance of a multi-machine task, through a real
 * terminal (tmux) on the local backend: the other instance runs its
 * execute, and the person in the shell plays instance 2's part with the
 * sync helpers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProject, removeProject, SPREAD_BIN } from '../helpers/fixture.js';

const tmuxSkip = ((): string | false => {
  try {
    execFileSync('tmux', ['-V']);
    return false;
  } catch {
    return process.env['CI'] === 'true' ? false : 'tmux is not installed';
  }
})();

const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });

async function waitScreen(session: string, re: RegExp, what: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session);
    if (re.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spread in a tmux session: its output also goes to out.log, its exit status to status. */
function startInTmux(session: string, dir: string, args: string): void {
  writeFileSync(join(dir, 'run.sh'), `cd '${dir}'\n'${process.execPath}' '${SPREAD_BIN}' ${args} 2>&1 | tee out.log\necho "\${PIPESTATUS[0]}" > status\nsleep 600\n`);
  tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', `bash '${join(dir, 'run.sh')}'`);
}

async function finished(dir: string): Promise<{ status: string; out: string }> {
  const deadline = Date.now() + 30_000;
  while (!existsSync(join(dir, 'status'))) {
    if (Date.now() > deadline) throw new Error('spread did not finish');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 100));
  return { status: readFileSync(join(dir, 'status'), 'utf8').trim(), out: readFileSync(join(dir, 'out.log'), 'utf8') };
}

const PAIR_YAML = 'project: pair\npath: /pair\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: 2\nsuites:\n    tests/:\n        summary: tests\n';

test('-shell -instance=2 opens the shell on instance 2, with the sync helpers, while instance 1 runs', { skip: tmuxSkip }, async () => {
  const dir = makeProject({
    'spread.yaml': PAIR_YAML,
    'tests/pair/task.yaml': `summary: one part by hand
instances: 2
execute: |
    SIGNAL human > /dev/null
    BARRIER human 2 60s
`,
  });
  const session = `spread-group-shell-${process.pid}`;
  try {
    startInTmux(session, dir, '-shell -instance=2');
    await waitScreen(session, /local:this-host \.\.\.\/tests\/pair# $/m, 'the shell prompt');
    tmux('send-keys', '-t', session, 'echo "part $SPREAD_INSTANCE of $SPREAD_INSTANCES"', 'Enter');
    await waitScreen(session, /^part 2 of 2$/m, 'the instance variables');
    tmux('send-keys', '-t', session, 'echo "seq $(SIGNAL human)"', 'Enter');
    await waitScreen(session, /^seq 2$/m, 'the signal from the shell');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    const { status, out } = await finished(dir);
    assert.equal(status, '0', out);
    assert.match(out, /Starting shell instead of executing local:this-host:tests\/pair instance 2\/2\.\.\./);
    assert.doesNotMatch(out, /Starting shell instead of executing local:this-host:tests\/pair instance 1\/2/);
    assert.match(out, /Successful tasks: 1\n/, 'instance 1 got past its barrier thanks to the shell\'s SIGNAL');
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});

test('-debug -instance=2: instance 1 fails, the shell opens on instance 2 before its restore', { skip: tmuxSkip }, async () => {
  const dir = makeProject({
    'spread.yaml': PAIR_YAML,
    'tests/pair/task.yaml': 'summary: one part fails\ninstances: 2\nexecute: |\n    if [ $SPREAD_INSTANCE = 1 ]; then echo broken; exit 1; fi\n    touch survivor\n',
  });
  const session = `spread-group-debug-${process.pid}`;
  try {
    startInTmux(session, dir, '-debug -instance=2');
    await waitScreen(session, /local:this-host \.\.\.\/tests\/pair# $/m, 'the shell prompt');
    tmux('send-keys', '-t', session, 'test -e survivor && echo "on instance $SPREAD_INSTANCE, not yet restored"', 'Enter');
    await waitScreen(session, /^on instance 2, not yet restored$/m, 'the shell on instance 2');
    tmux('send-keys', '-t', session, 'exit', 'Enter');
    const { status, out } = await finished(dir);
    assert.equal(status, '1', out);
    assert.match(out, /Error executing local:this-host:tests\/pair instance 1\/2 /);
    assert.match(out, /Starting shell to debug local:this-host:tests\/pair instance 2\/2 \(another instance failed\)\.\.\./);
    assert.doesNotMatch(out, /Starting shell to debug\.\.\./, 'no shell on instance 1');
    assert.match(out, /Failed tasks: 1\n/);
  } finally {
    try { tmux('kill-session', '-t', session); } catch { /* gone */ }
    removeProject(dir);
  }
});
