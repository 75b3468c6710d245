/**
 * The remote agent against hostile scripts, on real sshd machines: whatever
 * a script does to the processes around it, it fails alone, the next script
 * runs as if nothing had happened, and no agent process or file is left on
 * the machine once the session is closed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { renderShell } from '../../src/remote/script.js';
import { dialSsh } from '../../src/remote/ssh-dial.js';
import { ConnectionLostError, type Session } from '../../src/remote/session.js';
import { agentProcesses, leftovers, waitFor } from '../helpers/agent.js';
import { text } from '../helpers/output.js';
import { sshdSkip, startSshd, type SshdTarget } from '../helpers/sshd.js';

describe('remote agent under hostile scripts', { skip: sshdSkip() }, () => {
  const targets: SshdTarget[] = [];
  const sessions: Session[] = [];
  let target: SshdTarget;
  const dial = async (t = target) => {
    const s = await dialSsh({ address: t.address, password: t.rootPassword, killGraceMs: 500 });
    sessions.push(s);
    return s;
  };
  /** Closes the session and waits until its agent is gone from the machine. */
  const closeClean = async (s: Session, t = target) => {
    await s.close();
    await waitFor('agent processes and files after close', () => leftovers(t), (l) => l === '');
  };
  before(async () => { targets.push((target = await startSshd())); });
  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(targets.map((t) => t.stop()));
  });

  test('errors name /bin/bash and the script line, as with the original\'s fresh shell', async () => {
    const s = await dial();
    const r = await s.exec({ script: 'echo ok\nno-such-command-here\n' });
    assert.equal(r.exitCode, 127);
    assert.equal(text(r.output), 'ok\n/bin/bash: line 2: no-such-command-here: command not found\n');
    assert.equal(text((await s.exec({ script: 'echo "$0"' })).output), '/bin/bash\n');
    await closeClean(s);
  });

  test('a script reads as under a fresh `/bin/bash -s`, whichever pipe feeds it (small or large, with or without a last newline)', async () => {
    const s = await dial();
    // Syntax errors at the end of the input, line continuations and $LINENO see every byte, the last newline included.
    const pad = `: ${'x'.repeat(5000)}\n`;
    const cases = ['if true; then\n  echo in\n', 'if true; then\n  echo in', 'echo "$LINENO"\n\n', 'echo "$LINENO"', 'echo a \\\n', 'echo a \\'];
    for (const body of [...cases, ...cases.map((c) => pad + c)]) {
      const fresh = spawnSync('/bin/bash', ['-s'], { input: body, env: {} });
      const r = await s.exec({ script: body });
      const label = JSON.stringify(body.slice(-30));
      assert.equal(text(r.output), `${fresh.stdout}${fresh.stderr}`, label);
      assert.equal(r.exitCode, fresh.status, label);
    }
    await closeClean(s);
  });

  test('scripts are read by their byte count whatever they hold (multibyte text, NUL); the locale is the caller\'s', async () => {
    const s = await dial();
    const r = await s.exec({ script: `printf '%s\\n' 'café ✓ ${'é'.repeat(5000)}' | head -c 12; echo\necho "[\${LC_ALL-unset}]"` });
    assert.equal(text(r.output), 'café ✓ é\n[unset]\n');
    assert.equal(text((await s.exec({ script: 'echo "a\0b"' })).output), 'ab\n', 'a NUL is dropped, as bash drops it');
    assert.equal(text((await s.exec({ script: 'echo next' })).output), 'next\n', 'and the agent is still in step');
    await closeClean(s);
  });

  test('a script that kills its parents fails alone; the agent lives on', async () => {
    const s = await dial();
    await s.exec({ script: 'true' });
    const [agent] = await agentProcesses(target);
    // Every ancestor up to (not including) the namespace's init: with the original, the shell that runs the script.
    const r = await s.exec({ script: 'p=$PPID; while [ "$p" -gt 1 ]; do n=$(awk \'/^PPid/{print $2}\' /proc/$p/status); kill -9 $p; p=$n; done; echo after' });
    assert.match(r.broken ?? '', /^remote agent killed while running the script/);
    assert.equal(text(r.output), 'after\n', 'its output is kept');
    assert.equal(text((await s.exec({ script: 'echo fresh; exit 4' })).output), 'fresh\n');
    assert.equal((await s.exec({ script: 'exit 4' })).exitCode, 4);
    assert.deepEqual(await waitFor('agent processes', () => agentProcesses(target), (p) => p.length === 1), [agent], 'the same agent, nothing else');
    await closeClean(s);
  });

  test('a script that kills every agent process fails alone; the next script gets a new agent', async () => {
    const s = await dial();
    const [before] = await agentProcesses(target);
    const killer = 'for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline)" in spread-agent*) kill -9 ${p#/proc/};; esac; done 2>/dev/null; sleep 0.2; echo after';
    const r = await s.exec({ script: killer });
    assert.match(r.broken ?? '', /^remote agent killed while running the script/);
    assert.equal(text((await s.exec({ script: 'echo fresh' })).output), 'fresh\n');
    const [now] = await waitFor('agent processes', () => agentProcesses(target), (p) => p.length === 1);
    assert.notEqual(now, before, 'a new agent');
    await closeClean(s);
  });

  test('a process left reading its parents\' stdin steals nothing from the next script', async () => {
    const s = await dial();
    // As with the original's fresh shell, a thief on the script's own stdin would get the rest of that script only.
    const thief = `p=$PPID
while [ "$p" -gt 1 ]; do
  setsid cat /proc/$p/fd/0 > /tmp/stolen.$p 2>/dev/null < /dev/null &
  p=$(awk '/^PPid/{print $2}' /proc/$p/status)
done
echo planted`;
    assert.equal(text((await s.exec({ script: thief })).output), 'planted\n');
    const next = await s.exec({ script: 'export SECRET_X=hunter2\necho "got $SECRET_X"\n' });
    assert.equal(text(next.output), 'got hunter2\n');
    assert.equal(next.exitCode, 0);
    assert.equal(await target.run('cat /tmp/stolen.*'), '', 'nothing was read from any stdin');
    await target.run('pkill -9 -x cat; rm -f /tmp/stolen.*; true');
    await closeClean(s);
  });

  test('a full or read-only /tmp changes nothing: no file is needed to run a script', async () => {
    const t = await startSshd();
    targets.push(t);
    await t.run('mount -t tmpfs -o size=16k tmpfs /tmp && (head -c 1M /dev/zero > /tmp/fill 2>/dev/null || true) && ! (echo x > /tmp/x) 2>/dev/null');
    const full = await dial(t);
    assert.equal(text((await full.exec({ script: 'echo "full $((1 + 1))"; printf "%s\\n" "$(seq 3)"' })).output), 'full 2\n1\n2\n3\n');
    assert.equal((await full.exec({ script: 'exit 3' })).exitCode, 3);
    // The -debug/-shell shell stores its script and rc file elsewhere.
    const stdin = new PassThrough();
    const shell = full.exec({ script: renderShell({ dir: '/', env: [['SPREAD_SYSTEM', 'sys-1']] }), tty: { stdin, stdout: new PassThrough() } });
    stdin.write('echo "in $SPREAD_SYSTEM"; exit 3\n');
    const tty = await shell;
    assert.equal(tty.exitCode, 3);
    assert.match(text(tty.output), /\rin sys-1\r?\n/);
    await closeClean(full, t);
    await t.run('umount /tmp && mount -t tmpfs -o ro tmpfs /tmp');
    const readOnly = await dial(t);
    assert.equal(text((await readOnly.exec({ script: 'touch /tmp/y 2>/dev/null || echo "read-only"' })).output), 'read-only\n');
    await closeClean(readOnly, t);
    await t.run('umount /tmp');
  });

  test('what a dropped connection left is removed by the next connection', async () => {
    const t = await startSshd();
    targets.push(t);
    // An earlier version's temp directory, too.
    await t.run('mkdir /tmp/spread-agent.Ab12Cd34 && echo x > /tmp/spread-agent.Ab12Cd34/script');
    const s = await dial(t);
    let started!: () => void;
    const shown = new Promise<void>((r) => { started = r; });
    const run = s.exec({ script: 'echo started; exec sleep 1000', onOutput: () => started() });
    await shown;
    await t.killConnections();
    await assert.rejects(run, ConnectionLostError);
    assert.ok((await agentProcesses(t)).length >= 2, 'the old agent and the waiter are still there');
    const again = await dial(t);
    assert.equal(text((await again.exec({ script: 'echo new' })).output), 'new\n');
    await waitFor('leftovers of the dropped connection', async () =>
      `${(await agentProcesses(t)).length} ${(await t.run('pgrep -x sleep || true')).trim()} ${(await t.run('ls -d /tmp/spread-agent* 2>/dev/null || true')).trim()}`,
    (v) => v === '1  ');
    await closeClean(again, t);
  });
});
