/**
 * The shared cloud helper: timing hook parsing, redaction, the original's
 * instance names and image terms, the halt-timeout rule, and the request
 * client's retries (5xx and Google's INTERNAL), 401 renewal, throttle and
 * errors, against a plain HTTP server on loopback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import PQueue from 'p-queue';
import {
  ApiError, cloudClient, cloudTiming, containsTerms, DEFAULT_TIMING, instanceName, isExpired, isInstanceName, redact, redactJson,
  toTerms, UnreachableError,
} from '../../src/backends/cloud-request.js';
import { closedPort } from '../helpers/fake-api.js';

test('SPREAD_CLOUD_TIMING overrides the original\'s waits; a bad entry is an error', () => {
  assert.deepEqual(cloudTiming(undefined), DEFAULT_TIMING);
  const t = cloudTiming('poll=50ms, boot=3s,ssh=1m');
  assert.equal(t.pollMs, 50);
  assert.equal(t.bootMs, 3000);
  assert.equal(t.sshMs, 60_000);
  assert.equal(t.provisionMs, 180_000);
  assert.throws(() => cloudTiming('poll=fast'), /invalid SPREAD_CLOUD_TIMING entry "poll=fast"/);
  assert.throws(() => cloudTiming('speed=1s'), /invalid SPREAD_CLOUD_TIMING/);
});

test('redaction blanks secret values anywhere and secret fields of JSON bodies', () => {
  assert.equal(redact('pass s3cr3t-pw in "s3cr3t-pw"', ['s3cr3t-pw', '']), 'pass *** in "***"');
  const body = { auth: { password: { user: { name: 'bob', password: 'hunter22' } } }, server: { user_data: 'ZWNobw==', metadata: { password: 'hunter22' } } };
  const text = redactJson(body, []);
  assert.doesNotMatch(text, /hunter22|ZWNobw==/);
  assert.match(text, /"name":"bob"/);
  assert.match(redactJson({ items: [{ key: 'startup-script', value: 'echo root:pw-123456 | chpasswd' }] }, ['pw-123456']), /echo root:\*\*\* \| chpasswd/);
});

test('instance names follow Go\'s Jan021504.000000 layout in UTC and never repeat', () => {
  const at = Date.UTC(2024, 5, 11, 14, 33, 0, 170);
  const name = instanceName(at);
  assert.match(name, /^jun111433-\d{6}$/);
  const names = new Set(Array.from({ length: 200 }, () => instanceName(at)));
  assert.equal(names.size, 200);
  assert.ok(isInstanceName('jun111433-170067'));
  for (const bad of ['my-vm', 'jun111433', 'xyz111433-170067', 'jun321433-170067', 'jun112433-170067', 'jun111433-17006']) assert.ok(!isInstanceName(bad), bad);
});

test('terms: words and version numbers in order', () => {
  assert.deepEqual(toTerms('Canonical, Ubuntu, 22.04 LTS, amd64'), ['canonical', 'ubuntu', '22.04', 'lts', 'amd', '64']);
  assert.ok(containsTerms(toTerms('Ubuntu 22.04 LTS amd64'), toTerms('ubuntu-22.04-64')));
  assert.ok(!containsTerms(toTerms('22.04 Ubuntu'), toTerms('ubuntu-22.04')), 'order matters');
});

test('halt-timeout: the backend\'s, or the instance\'s own label; a bad label is warned about and ignored', () => {
  const warnings: string[] = [];
  const warn = (w: string) => warnings.push(w);
  const HOUR = 3600_000;
  const now = 10 * HOUR;
  assert.equal(isExpired({ nowMs: now, createdMs: now - 2 * HOUR, haltMs: HOUR, warn }), true);
  assert.equal(isExpired({ nowMs: now, createdMs: now - 2 * HOUR, haltMs: 0, warn }), false, '0 means never');
  assert.equal(isExpired({ nowMs: now, createdMs: now - 2 * HOUR, haltMs: HOUR, label: '3h', warn }), false);
  assert.equal(isExpired({ nowMs: now, createdMs: now - 10 * 60_000, haltMs: HOUR, label: '5m', warn }), true);
  assert.equal(isExpired({ nowMs: now, createdMs: now - 2 * HOUR, haltMs: 0, label: '1h', warn }), true, 'a label applies without a backend halt-timeout');
  assert.equal(isExpired({ nowMs: now, createdMs: now - 2 * HOUR, haltMs: HOUR, label: 'soon', warn }), true);
  assert.deepEqual(warnings, ['bad halt-timeout label "soon"']);
});

/** A plain HTTP server answering from a script of responses, recording what it got. */
async function scripted(answers: ((req: http.IncomingMessage, body: string) => [number, unknown])[]) {
  const seen: { method: string; url: string; auth: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: String(req.headers['authorization'] ?? ''), body });
      const next = answers.shift() ?? (() => [500, { error: 'script ran out' }] as [number, unknown]);
      const [status, out] = next(req, body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const options = (logs: string[]) => ({
  api: 'test', log: (m: string) => void logs.push(m), secrets: () => ['tok-secret'],
  errorMessage: (status: number, body: unknown) => `${status}: ${(body as { error?: { message?: string } }).error?.message ?? ''}`,
  isTransient: (_: number, body: unknown) => (body as { error?: { status?: string } } | undefined)?.error?.status === 'INTERNAL',
  throttle: new PQueue({ interval: 10, intervalCap: 1 }),
  timing: { retryStepMs: 1 },
});

test('the client retries 5xx and INTERNAL answers, renews credentials once on 401, and redacts its log', async () => {
  let token = 'tok-secret';
  let renewals = 0;
  const s = await scripted([
    () => [503, { error: { message: 'unavailable' } }],
    () => [200, { error: { code: 500, status: 'INTERNAL', message: 'internal' } }],
    () => [401, { error: { message: 'expired token' } }],
    (req) => [200, { ok: true, auth: req.headers['authorization'] }],
  ]);
  const logs: string[] = [];
  try {
    const client = cloudClient({
      ...options(logs),
      authorize: async () => ({ authorization: `Bearer ${token}` }),
      reauthorize: async () => { renewals++; token = 'tok-renewed'; return true; },
    });
    const body = await client.json<{ ok: boolean; auth: string }>({ method: 'POST', url: `${s.url}/x`, body: { password: 'tok-secret', name: 'n' } });
    assert.deepEqual(body, { ok: true, auth: 'Bearer tok-renewed' });
    assert.equal(s.seen.length, 4);
    assert.equal(renewals, 1);
    assert.ok(s.seen.every((r) => JSON.parse(r.body).password === 'tok-secret'), 'the secret is sent');
    assert.ok(logs.length > 0 && logs.every((l) => !l.includes('tok-secret')), `no secret logged: ${logs.join('\n')}`);
  } finally {
    await s.close();
  }
});

test('the client gives up on 5xx after 10 attempts, fails at once on 4xx and on a refused connection', async () => {
  const s = await scripted([
    ...Array.from({ length: 10 }, () => (): [number, unknown] => [500, { error: { message: 'still broken' } }]),
    () => [404, { error: { message: 'no such thing' } }],
  ]);
  try {
    const client = cloudClient(options([]));
    await assert.rejects(client.request({ url: `${s.url}/a` }), (e: unknown) => e instanceof ApiError && e.status === 500 && /still broken/.test(e.message));
    assert.equal(s.seen.length, 10);
    await assert.rejects(client.request({ url: `${s.url}/b` }), (e: unknown) => e instanceof ApiError && e.status === 404);
    assert.equal(s.seen.length, 11);
    const port = await closedPort();
    await assert.rejects(client.request({ url: `http://127.0.0.1:${port}/c` }), (e: unknown) => e instanceof UnreachableError && /cannot reach the test API at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/.test((e as Error).message));
  } finally {
    await s.close();
  }
});
