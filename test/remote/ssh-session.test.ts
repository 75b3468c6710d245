import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { dialSsh } from '../../src/remote/ssh-dial.js';
import { globQuote } from '../../src/remote/shell-words.js';
import { ConnectionLostError, type Session } from '../../src/remote/session.js';
import { sshdSkip, startSshd, sudoSkip, type SshdTarget } from '../helpers/sshd.js';
import { packTarGz, readTar, sampleFiles, sha256 } from '../helpers/tar-fixtures.js';
import { checkTty, checkUploadIfEmpty } from '../helpers/session-contract.js';
import { plain, text } from '../helpers/output.js';
import { outputBytes } from '../../src/output.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Resolves with the output seen so far once `text` shows up in it.
const waitForOutput = (text: string) => {
  let seen = '';
  let wake: () => void = () => {};
  const shown = new Promise<void>((r) => { wake = r; });
  return { shown, onOutput: (chunk: Buffer) => { seen += chunk.toString(); if (seen.includes(text)) wake(); } };
};

describe('ssh session', { skip: sshdSkip() }, () => {
  let target: SshdTarget;
  const sessions: Session[] = [];
  const targets: SshdTarget[] = [];
  const dialRoot = async (t = target, extra: { maxChannels?: number; killGraceMs?: number } = {}) => {
    const s = await dialSsh({ address: t.address, password: t.rootPassword, ...extra });
    sessions.push(s);
    return s;
  };
  const dialUser = async (t = target) => {
    const s = await dialSsh({ address: t.address, username: t.user, password: t.userPassword });
    sessions.push(s);
    return s;
  };
  const newTarget = async (opts?: Parameters<typeof startSshd>[0]) => {
    const t = await startSshd(opts);
    targets.push(t);
    return t;
  };
  before(async () => { target = await newTarget(); });
  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(targets.map((t) => t.stop()));
  });

  test('output and exit status; root by default', async () => {
    const s = await dialRoot();
    assert.equal(s.address, target.address);
    assert.deepEqual(plain(await s.exec({ script: 'echo hello; id -u; exit 3' })), { exitCode: 3, output: 'hello\n0\n', killed: false });
    assert.deepEqual(plain(await s.exec({ script: 'printf "no newline"' })), { exitCode: 0, output: 'no newline', killed: false });
    assert.deepEqual(plain(await s.exec({ script: 'read -r x; echo "[$x] $?"' })), { exitCode: 0, output: '[] 1\n', killed: false });
  });

  test('a wrong password fails the dial', async () => {
    await assert.rejects(dialSsh({ address: target.address, password: 'nope' }), /cannot connect to .*cannot authenticate as root/);
  });

  test('stdout and stderr are merged in order, output streams live', async () => {
    const s = await dialRoot();
    const chunks: string[] = [];
    const r = await s.exec({ script: 'for i in $(seq 1 300); do echo out$i; echo err$i >&2; done', onOutput: (c) => chunks.push(c.toString()) });
    const expected = Array.from({ length: 300 }, (_, i) => `out${i + 1}\nerr${i + 1}\n`).join('');
    assert.equal(text(r.output), expected);
    assert.equal(chunks.join(''), expected);
  });

  test('a 100 KB script, binary-ish and multibyte output, fake markers', async () => {
    const s = await dialRoot();
    const payload = 'x'.repeat(99) + '\n';
    const big = `cat <<'EOF' | sha256sum\n${payload.repeat(1000)}EOF\n`;
    assert.ok(big.length > 100_000);
    const r = await s.exec({ script: big });
    assert.equal(text(r.output), `${sha256(payload.repeat(1000))}  -\n`);

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const bin = await s.exec({ script: `for i in $(seq 1 400); do printf "$(printf '\\\\%03o' {0..255})"; done` });
    assert.deepEqual(outputBytes(bin.output), Buffer.concat(Array(400).fill(bytes)), 'the exact bytes');
    const multi = await s.exec({ script: `head -c 300000 /dev/zero | tr '\\0' 'x' | sed 's/x/é/g'` });
    assert.equal(text(multi.output), 'é'.repeat(300_000));
    const fake = await s.exec({ script: 'echo "spread-agent-00 E 0"; echo " S 1"; echo done' });
    assert.equal(text(fake.output), 'spread-agent-00 E 0\n S 1\ndone\n');
  });

  test('aborting kills the whole process group, the session goes on', async () => {
    const s = await dialRoot();
    const ac = new AbortController();
    const w = waitForOutput('started');
    const run = s.exec({ script: 'sleep 1000 & echo $! > /tmp/bg.pid; echo started; sleep 1000', signal: ac.signal, onOutput: w.onOutput });
    await w.shown;
    ac.abort();
    const r = await run;
    assert.equal(r.killed, true);
    assert.equal(r.exitCode, 137);
    assert.equal(text(r.output), 'started\n');
    // The background child was in the group: gone or a zombie awaiting its reaper.
    const state = await target.run('p=$(cat /tmp/bg.pid); for i in $(seq 50); do s=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null); [ -z "$s" -o "$s" = Z ] && break; sleep 0.1; done; echo "state=$s"');
    assert.match(state, /^state=Z?$/m);
    assert.equal(text((await s.exec({ script: 'echo next' })).output), 'next\n');
    const pre = new AbortController();
    pre.abort();
    assert.deepEqual(plain(await s.exec({ script: 'touch /tmp/never', signal: pre.signal })), { exitCode: 137, output: '', killed: true });
    assert.equal(await target.run('test -e /tmp/never && echo ran || echo not-run'), 'not-run\n');
  });

  test('a killed script whose output is held by a daemon does not hang the session', async () => {
    const s = await dialRoot(target, { killGraceMs: 300 });
    const ac = new AbortController();
    const w = waitForOutput('started');
    // Announce only once the daemon is in its own session (it has exec'd sleep), out of the group's reach.
    const script = 'setsid sleep 1000 & p=$!; echo $p > /tmp/daemon.pid; until [ "$(cat /proc/$p/comm)" = sleep ]; do :; done; echo started; sleep 1000';
    const run = s.exec({ script, signal: ac.signal, onOutput: w.onOutput });
    await w.shown;
    ac.abort();
    const r = await run;
    assert.equal(r.killed, true);
    assert.equal(await target.run('kill -0 $(cat /tmp/daemon.pid) && echo daemon-alive'), 'daemon-alive\n');
    assert.equal(text((await s.exec({ script: 'echo alive' })).output), 'alive\n');
    await target.run('kill -9 $(cat /tmp/daemon.pid)');
  });

  test('many sessions at once, and more operations than MaxSessions on one connection', async () => {
    const many = await Promise.all(Array.from({ length: 8 }, () => dialRoot()));
    const outs = await Promise.all(many.map((s, i) => Promise.all(
      Array.from({ length: 10 }, (_, j) => s.exec({ script: `echo ${i}-${j}` })))));
    outs.forEach((o, i) => assert.deepEqual(o.map((r) => text(r.output)), Array.from({ length: 10 }, (_, j) => `${i}-${j}\n`)));

    const s = await dialRoot();
    const files = sampleFiles();
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) ops.push(s.upload(packTarGz(files), `/tmp/many/${i}`));
    await Promise.all(ops);
    const fetched = await Promise.all(Array.from({ length: 16 }, (_, i) =>
      s.download(`/tmp/many/${i % 8}`, ['data.bin']).then(readTar)));
    for (const f of fetched) assert.equal(sha256(f.get('data.bin')!), sha256(files.get('data.bin')!));
  });

  test('channel opens refused by a low MaxSessions are retried', async () => {
    const t = await newTarget({ maxSessions: 2 });
    const s = await dialRoot(t);
    const files = sampleFiles();
    await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => s.upload(packTarGz(files), `/tmp/low/${i}`)),
      s.exec({ script: 'echo agent' }),
    ]);
    assert.equal(await t.run('ls /tmp/low | wc -l'), '6\n');
  });

  test('a non-root user runs everything as root through sudo', { skip: sudoSkip() }, async () => {
    const s = await dialUser();
    const r = await s.exec({ script: 'id -u; echo "$SUDO_USER"' });
    assert.deepEqual(plain(r), { exitCode: 0, output: '0\nspread\n', killed: false });
    await s.upload(packTarGz(new Map([['f.txt', Buffer.from('as root\n')]])), '/root/by-sudo');
    assert.equal(await target.run('stat -c %U /root/by-sudo/f.txt'), 'root\n');
    const back = await readTar(await s.download('/root/by-sudo', ['f.txt']));
    assert.equal(back.get('f.txt')?.toString(), 'as root\n');
    const ac = new AbortController();
    const w = waitForOutput('started');
    const run = s.exec({ script: 'echo started; sleep 1000', signal: ac.signal, onOutput: w.onOutput });
    await w.shown;
    ac.abort();
    assert.equal((await run).killed, true);
    const tty = await s.exec({ script: 'tty; id -u', tty: { stdin: new PassThrough(), stdout: new PassThrough() } });
    assert.match(text(tty.output), /\/dev\/pts\/\d+\r?\n0\r?\n/);
  });

  test('upload then download: bytes equal, globs, missing paths ignored', async () => {
    const s = await dialRoot();
    const files = sampleFiles();
    await s.upload(packTarGz(files), '/tmp/round trip/proj');
    const got = await readTar(await s.download('/tmp/round trip/proj', ['*.bin', 'a b.txt', 'sub/dir', 'missing', 'nothing*']));
    assert.deepEqual([...got.keys()].sort(), ['a b.txt', 'data.bin', 'other.bin', 'sub/dir/deep.txt']);
    for (const [name, data] of got) assert.ok(data.equals(files.get(name)!), name);
    assert.equal((await readTar(await s.download('/tmp', []))).size, 0);
    await assert.rejects(readTar(await s.download('/tmp/no/such/dir', ['x'])), /cannot fetch x from \/tmp\/no\/such\/dir/);
    await assert.rejects(s.upload(PassThrough.from(['not gzip']), '/tmp/bad'), /cannot extract project content into \/tmp\/bad/);
    assert.equal(globQuote("it's*.log"), `'it'\\''s'*'.log'`);
  });

  test('upload with ifEmpty: only into a missing or empty directory, in one round trip', async () => checkUploadIfEmpty(await dialRoot(), '/tmp/if-empty'));

  test('connection loss under a script rejects with ConnectionLostError, onClose fires once', async () => {
    const t = await newTarget();
    const s = await dialRoot(t);
    let closes = 0;
    s.onClose(() => { closes++; });
    const w = waitForOutput('started');
    const run = s.exec({ script: 'echo started; sleep 1000', onOutput: w.onOutput });
    await w.shown;
    await t.killConnections();
    await assert.rejects(run, ConnectionLostError);
    await assert.rejects(s.exec({ script: 'true' }), ConnectionLostError);
    await assert.rejects(s.download('/tmp', ['x']), ConnectionLostError);
    await sleep(50);
    assert.equal(closes, 1);
    let late = 0;
    s.onClose(() => { late++; });
    assert.equal(late, 1, 'a listener added after the loss is told at once');
    await s.close();
    assert.equal(closes, 1);
  });

  test('keepalive notices a peer that stopped answering', async () => {
    const t = await newTarget();
    const s = await dialSsh({ address: t.address, password: t.rootPassword, keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
    sessions.push(s);
    const w = waitForOutput('started');
    const run = s.exec({ script: 'echo started; sleep 1000', onOutput: w.onOutput });
    await w.shown;
    // Freeze (not kill) the sshd processes of the connection: the TCP link stays up but silent.
    await t.run('l=$(cat /run/spread-sshd/sshd.pid); for p in /proc/[0-9]*; do p=${p#/proc/}; ' +
      '[ "$(readlink /proc/$p/exe)" = /usr/sbin/sshd ] && [ $p != $l ] && kill -STOP $p; done; true');
    await assert.rejects(run, ConnectionLostError);
  });

  test('a slow login is paid once per connection, not per script', { skip: sudoSkip() }, async () => {
    const t = await newTarget({ slowLogin: true });
    const s = await dialRoot(t);
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await s.exec({ script: `echo ${i}` }));
    assert.deepEqual(results.map((r) => text(r.output)), Array.from({ length: 20 }, (_, i) => `${i}\n`));
    assert.equal((await t.run('wc -l < /root/.bashrc.log')).trim(), '1');
    const u = await dialUser(t);
    for (let i = 0; i < 5; i++) await u.exec({ script: 'true' });
    assert.equal((await t.run('wc -l < /home/spread/.bashrc.log')).trim(), '1');
    assert.equal((await t.run('wc -l < /root/.bashrc.log')).trim(), '2', 'sudo -i sourced root\'s .bashrc once');
  });

  test('tty: a PTY script gets input and runs while the agent is busy', async () => {
    const s = await dialRoot();
    const busy = s.exec({ script: 'sleep 1; echo busy-done' });
    await checkTty(s);
    assert.equal(text((await busy).output), 'busy-done\n');
    assert.equal(await target.run('ls /tmp | grep -c spread-tty || true'), '0\n', 'the temp script is removed');
  });
});
