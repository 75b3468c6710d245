import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import { sshdSkip, startSshd, sudoSkip, type SshdTarget } from './sshd.js';

// Plain ssh2 here, so the helper is checked independently of src/remote.
const connect = (t: SshdTarget, username: string, password: string): Promise<Client> =>
  new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({ host: t.host, port: t.port, username, password, readyTimeout: 10_000 });
  });

const run = (c: Client, cmd: string): Promise<{ code: number | null; out: string }> =>
  new Promise((resolve, reject) => {
    c.exec(cmd, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => { out += d.toString(); });
      ch.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      ch.on('exit', (c2: number | null) => { code = c2; });
      ch.on('close', () => resolve({ code, out }));
    });
  });

const closed = (c: Client): Promise<void> => new Promise((resolve) => c.once('close', () => resolve()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('test sshd', { skip: sshdSkip() }, () => {
  const targets: SshdTarget[] = [];
  after(async () => { await Promise.all(targets.map((t) => t.stop())); });
  const start = async (opts?: Parameters<typeof startSshd>[0]) => {
    const t = await startSshd(opts);
    targets.push(t);
    return t;
  };

  test('root logs in with the test password only, in a private /tmp', async () => {
    const shadowBefore = readFileSync('/etc/shadow', 'utf8');
    const t = await start();
    assert.match(t.address, /^127\.0\.0\.1:\d+$/);
    await assert.rejects(connect(t, 'root', 'wrong-password'), /authentication/i);
    const c = await connect(t, 'root', t.rootPassword);
    const marker = `/tmp/sshd-test-${process.pid}-${Date.now()}`;
    const r = await run(c, `id -u; touch ${marker}; ls -A /tmp`);
    c.end();
    assert.equal(r.code, 0);
    assert.deepEqual(r.out.trim().split('\n'), ['0', marker.slice(5)]);
    assert.equal(existsSync(marker), false, 'the file must not appear in the host /tmp');
    assert.equal(readFileSync('/etc/shadow', 'utf8'), shadowBefore, 'the host /etc/shadow must not change');
  });

  test('the spread user exists only inside and has passwordless sudo', { skip: sudoSkip() }, async () => {
    const t = await start({ host: '127.0.0.2' });
    const c = await connect(t, t.user, t.userPassword);
    const r = await run(c, 'id -un; sudo -n -i id -u');
    c.end();
    assert.deepEqual(r.out.trim().split('\n'), ['spread', '0']);
    const hostHasUser = readFileSync('/etc/passwd', 'utf8').split('\n').some((l) => l.startsWith('spread:'));
    assert.equal(hostHasUser, false);
  });

  test('slow login: .bashrc sleeps and logs each ssh command', async () => {
    const t = await start({ slowLogin: true, maxSessions: 3 });
    const c = await connect(t, 'root', t.rootPassword);
    const began = Date.now();
    await run(c, 'true');
    assert.ok(Date.now() - began >= 100, 'a command pays for the slow .bashrc');
    await run(c, 'true');
    c.end();
    assert.equal((await t.run('cat /root/.bashrc.log')).trim().split('\n').length, 2);
    assert.match(await t.run('cat /run/spread-sshd/sshd_config'), /^MaxSessions 3$/m);
  });

  test('four targets start in parallel on distinct addresses', async () => {
    const four = await Promise.all([start(), start(), start({ host: '127.0.0.3' }), start()]);
    assert.equal(new Set(four.map((t) => t.address)).size, 4);
    const ids = await Promise.all(four.map(async (t) => {
      const c = await connect(t, 'root', t.rootPassword);
      const r = await run(c, 'cat /run/spread-sshd/sshd.pid; echo ok');
      c.end();
      return r.out;
    }));
    for (const out of ids) assert.match(out, /ok\n$/);
  });

  test('killConnections drops sessions, the listener stays; restart keeps serving', async () => {
    const t = await start();
    const c = await connect(t, 'root', t.rootPassword);
    const gone = closed(c);
    await t.killConnections();
    await gone;
    const c2 = await connect(t, 'root', t.rootPassword);
    await t.restart();
    assert.equal((await run(c2, 'echo still')).out, 'still\n', 'restart keeps open connections');
    c2.end();
    const c3 = await connect(t, 'root', t.rootPassword);
    assert.equal((await run(c3, 'echo new')).out, 'new\n');
    c3.end();
  });

  test('reboot: sessions end, processes die, sshd returns with a new boot id', async () => {
    const t = await start({ rebootable: true });
    const before = t.bootId();
    const c = await connect(t, 'root', t.rootPassword);
    assert.equal((await run(c, 'cat /proc/sys/kernel/random/boot_id')).out.trim(), before);
    await run(c, 'nohup sleep 1000 > /dev/null 2>&1 & echo $! > /tmp/sleeper');
    const gone = closed(c);
    const r = await run(c, 'reboot');
    assert.equal(r.code, 0);
    await gone;
    let after = before;
    for (let i = 0; i < 100 && after === before; i++) { await sleep(50); after = t.bootId(); }
    assert.notEqual(after, before);
    let c2: Client | undefined;
    for (let i = 0; i < 100 && !c2; i++) c2 = await connect(t, 'root', t.rootPassword).catch(async () => { await sleep(50); return undefined; });
    assert.ok(c2, 'sshd is back after the reboot');
    const r2 = await run(c2, 'cat /proc/sys/kernel/random/boot_id; test -e /proc/$(cat /tmp/sleeper) && echo alive || echo dead');
    c2.end();
    assert.deepEqual(r2.out.trim().split('\n'), [after, 'dead']);
    assert.notEqual(after, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), 'the host boot id is untouched');
  });

  test('a target that is not rebootable refuses to reboot', async () => {
    const t = await start();
    const c = await connect(t, 'root', t.rootPassword);
    const r = await run(c, 'reboot 2>&1; echo $?');
    c.end();
    assert.match(r.out, /not rebootable\n1\n$/);
  });

  test('stop ends everything for good', async () => {
    const t = await start();
    await t.stop();
    await t.stop();
    // The port may already serve a parallel test's sshd, but never with these credentials.
    await assert.rejects(connect(t, 'root', t.rootPassword));
    await assert.rejects(t.run('true'));
  });
});
