/**
 * Failing fast where retrying cannot help (a refused password), and still
 * retrying where it can (a port forwarder that resets connections until its
 * target is up), against a real sshd behind a TCP proxy that counts the SSH
 * dials it sees.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { adhocBackend, adhocPool } from '../helpers/adhoc.js';
import { makeProject, removeProject, runSpread, stripTime } from '../helpers/fixture.js';
import { sshdSkip, startSshd } from '../helpers/sshd.js';
import type { SshdTarget } from '../helpers/sshd.js';

const skip = sshdSkip();
const PASS = 'connect-errors-pw';
let target: SshdTarget | undefined;

before(async () => {
  if (!skip) target = await startSshd({ host: '127.0.0.5', rootPassword: PASS });
});
after(async () => {
  await target?.stop();
});

/** A proxy to the target: the first `resets` SSH dials are cut before a byte is answered, like docker-proxy before sshd is up. */
async function proxy(to: SshdTarget, resets: number): Promise<{ address: string; dials: () => number; close: () => void }> {
  let dials = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.once('data', (first) => {
      dials++;
      if (dials <= resets) return void client.resetAndDestroy();
      const upstream = net.connect({ host: to.host, port: to.port });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.write(first);
      client.pipe(upstream).pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    dials: () => dials,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const files = {
  'spread.yaml': `project: connect
path: /home/connect
backends:
${adhocBackend('adhoc', '- ubuntu-16.04')}suites:
    tests/:
        summary: tests
`,
  'tests/t/task.yaml': 'summary: t\nexecute: echo ran\n',
};

test('a refused password fails at the first dial, in one line, and the job is an error in the reports', { skip }, async () => {
  const p = await proxy(target!, 0);
  const dir = makeProject(files);
  const pool = adhocPool([{ ...target!, address: p.address }]);
  try {
    const r = await runSpread(['-pass=not-the-password', '-json=out.json'], dir, pool.env);
    assert.equal(r.code, 1, r.stdout);
    const why = `cannot connect to ${p.address}: cannot authenticate as root: password refused`;
    const lines = stripTime(r.stdout).split('\n').filter((l) => l.includes('password refused'));
    assert.deepEqual(lines, [`Discarding adhoc:ubuntu-16.04, cannot connect: ${why}`]);
    assert.equal(p.dials(), 1, 'no retry');
    assert.deepEqual(pool.discarded(), [p.address], 'the machine is still discarded');
    const report = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { jobs: { status: string; reason: string }[] };
    assert.deepEqual(report.jobs.map((j) => [j.status, j.reason]), [['error', `not run: cannot connect to adhoc:ubuntu-16.04: ${why}`]]);
  } finally {
    p.close();
    pool.remove();
    removeProject(dir);
  }
});

test('connections reset before the server speaks are retried until it answers', { skip }, async () => {
  const p = await proxy(target!, 3);
  const dir = makeProject(files);
  const pool = adhocPool([{ ...target!, address: p.address }]);
  try {
    const r = await runSpread([`-pass=${PASS}`], dir, pool.env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Successful tasks: 1\n/);
    assert.ok(p.dials() >= 4, `the resets were retried (${p.dials()} dials)`);
  } finally {
    p.close();
    pool.remove();
    removeProject(dir);
  }
});
