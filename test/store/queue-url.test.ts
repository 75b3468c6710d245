/** -queue URLs: redis:// and rediss://, DB, RUN, lease and expiry, the password from the URL or the environment. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_EXPIRE_MS, DEFAULT_LEASE_MS, parseQueueUrl } from '../../src/store/queue-url.js';

test('the parts of a queue URL, with defaults', () => {
  assert.deepEqual(parseQueueUrl('redis://cache.internal/42'), {
    tls: false, host: 'cache.internal', port: 6379, db: 0, run: '42', leaseMs: DEFAULT_LEASE_MS, expireMs: DEFAULT_EXPIRE_MS, label: 'redis://cache.internal/42',
  });
  const full = parseQueueUrl('rediss://ci:p%40ss@192.0.2.5:6380/2/gh-123-1?lease=30s&expire=48h');
  assert.deepEqual({ ...full }, {
    tls: true, host: '192.0.2.5', port: 6380, db: 2, run: 'gh-123-1', username: 'ci', password: 'p@ss',
    leaseMs: 30_000, expireMs: 48 * 3_600_000, label: 'rediss://ci:***@192.0.2.5:6380/2/gh-123-1',
  });
  assert.equal(parseQueueUrl('redis://h/r', { SPREAD_QUEUE_PASSWORD: 'env-pw' }).password, 'env-pw');
  assert.equal(parseQueueUrl('redis://:url-pw@h/r', { SPREAD_QUEUE_PASSWORD: 'env-pw' }).password, 'url-pw', 'the URL wins');
  assert.equal(parseQueueUrl('redis://[::1]:7000/r').host, '::1');
});

test('bad queue URLs are refused with what is wrong, never showing the password', () => {
  const cases: [string, RegExp][] = [
    ['localhost:6379/run', /unsupported scheme "localhost"/],
    ['http://h/run', /unsupported scheme "http"/],
    ['redis://h', /no run name/],
    ['redis://h/x/y/z', /too many path parts/],
    ['redis://h/db/run', /database "db" is not a number/],
    ['redis://h/0/run name', /run name "run name"/],
    ['redis://:secret@h/0/run?lease=5', /lease=5 is not a duration of at least 1s in "redis:\/\/:\*\*\*@h\/0\/run"/],
    ['redis://h/run?lease=500ms', /lease=500ms/],
    ['redis://h/run?ttl=1h', /unknown parameter "ttl" \(lease, expire\)/],
    ['not a url', /invalid URL/],
  ];
  for (const [url, why] of cases) {
    assert.throws(() => parseQueueUrl(url), (err: Error) => why.test(err.message) && !err.message.includes('secret') && err.message.startsWith('-queue: '), url);
  }
});
