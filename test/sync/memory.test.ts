/**
 * The in-process sync service and its wire protocol: sequence numbers,
 * barriers, topics read from the start, timeouts that say what they waited
 * for, a failed group ending every wait at once, and groups kept apart.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { MemorySync } from '../../src/sync/memory.js';
import { serveSync } from '../../src/sync/wire.js';

const FOREVER = { timeoutMs: Infinity };

test('signal counts per state and group; a barrier resolves once the count is reached', async () => {
  const sync = new MemorySync();
  assert.equal(await sync.signal('g', 'ready'), 1);
  assert.equal(await sync.signal('g', 'ready'), 2);
  assert.equal(await sync.signal('other', 'ready'), 1, 'groups are apart');
  assert.equal(await sync.signal('g', 'done'), 1, 'states are apart');
  let passed = false;
  const waiting = sync.barrier('g', 'ready', 3, FOREVER).then(() => { passed = true; });
  await sync.barrier('g', 'ready', 2, FOREVER);
  await new Promise((r) => setImmediate(r));
  assert.equal(passed, false);
  await sync.signal('g', 'ready');
  await waiting;
  assert.equal(passed, true);
});

test('topics keep every message in order; read waits for the count and always starts from the first', async () => {
  const sync = new MemorySync();
  const later = sync.read('g', 'news', 2, FOREVER);
  assert.equal(await sync.publish('g', 'news', 'one'), 1);
  assert.equal(await sync.publish('g', 'news', 'two words'), 2);
  assert.deepEqual(await later, ['one', 'two words']);
  assert.deepEqual(await sync.read('g', 'news', 1, FOREVER), ['one']);
});

test('a wait that times out says what it waited for', async () => {
  const sync = new MemorySync();
  await sync.signal('g', 'ready');
  await assert.rejects(sync.barrier('g', 'ready', 3, { timeoutMs: 10 }), { name: 'SyncError', message: 'timed out after 10ms waiting for 3 instances in state ready (1 so far)' });
  await assert.rejects(sync.read('g', 'news', 1, { timeoutMs: 10 }), { message: 'timed out after 10ms waiting for 1 message on topic news (0 so far)' });
});

test('a failed group ends every wait at once, and later calls, with the first reason', async () => {
  const sync = new MemorySync();
  const waits = [sync.barrier('g', 'x', 2, FOREVER), sync.read('g', 't', 1, FOREVER)];
  await sync.fail('g', 'instance 2 failed executing');
  await sync.fail('g', 'a second reason');
  for (const w of waits) await assert.rejects(w, { message: 'instance 2 failed executing' });
  await assert.rejects(sync.signal('g', 'x'), { message: 'instance 2 failed executing' });
  assert.equal(await sync.signal('fresh', 'x'), 1, 'other groups go on');
  await sync.clear('g');
  assert.equal(await sync.signal('g', 'x'), 1, 'a cleared group starts afresh');
  const pending = sync.barrier('h', 'x', 1, FOREVER);
  await sync.close();
  await assert.rejects(pending, { message: /closed/ });
});

/** One request over a real socket, as the bash helpers send it. */
async function call(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`${line}\n`));
    let out = '';
    sock.on('data', (d) => { out += d.toString(); });
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

test('the wire protocol: tokens name the group, answers are ok/err lines, a hung-up wait is cancelled', async () => {
  const sync = new MemorySync();
  const failed: string[] = [];
  const server = net.createServer((s) => serveSync(s, sync, (t) => (t === 'tok' ? { group: 'g', onWaitFailed: (m) => failed.push(m) } : undefined)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    assert.equal(await call(port, 'tok signal up'), 'ok 1\n');
    assert.equal(await call(port, 'tok barrier up 1 5s'), 'ok\n');
    assert.equal(await call(port, 'tok publish news hello there'), 'ok 1\n');
    assert.equal(await call(port, 'tok read news 1 5s'), 'ok 1\nhello there\n');
    assert.equal(await call(port, 'nope signal up'), 'err not a running instance of a multi-machine task (unknown token)\n');
    assert.equal(await call(port, 'tok barrier up 2 20ms'), 'err timed out after 20ms waiting for 2 instances in state up (1 so far)\n');
    assert.deepEqual(failed, ['timed out after 20ms waiting for 2 instances in state up (1 so far)']);
    assert.match(await call(port, 'tok barrier up zero 5s'), /^err invalid count "zero"/);
    assert.match(await call(port, 'tok barrier up 2 soon'), /^err invalid timeout "soon"/);
    assert.match(await call(port, 'tok signal bad/name'), /^err invalid state name "bad\/name"/);
    assert.match(await call(port, 'tok publish news'), /^err missing message/);
    // A caller that hangs up (its script was killed) stops waiting.
    const sock = net.connect(port, '127.0.0.1', () => sock.end('tok barrier never 5 -1\n'));
    await new Promise((r) => sock.on('close', r));
    assert.equal(await call(port, 'tok signal up'), 'ok 2\n');
  } finally {
    server.close();
    await sync.close();
  }
});
