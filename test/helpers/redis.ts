/**
 * A real redis-server for tests: a free loopback port, a private directory,
 * no persistence, stopped (and its directory removed) by `stop()` or when
 * the test process exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { freePort } from './sshd.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

/** For `test(name, { skip: redisSkip() })`: a reason off CI, never on CI (there a missing tool must fail). */
export const redisSkip = (): string | false =>
  !existsSync(REDIS_SERVER) && process.env['CI'] !== 'true' ? `the shared-queue tests need ${REDIS_SERVER} (Debian package redis-server)` : false;

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** SIGKILL, as a crashed or unreachable server; `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export { freePort };

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
    sock.once('error', () => done(false));
  });

/** Files of a test CA and of a server certificate it signed for 127.0.0.1. */
export interface TestTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA and a server certificate for 127.0.0.1 in `dir`, made with the openssl command. */
export function makeTestTls(dir: string): TestTls {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=spread test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.crt'));
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

export async function startRedis(options: { password?: string; tls?: TestTls } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'spread-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    const tls = options.tls;
    const args = [...(tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no'] : ['--port', String(port)]),
      '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
      ...(options.password ? ['--requirepass', options.password] : [])];
    const c = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    live.add(c);
    exited = new Promise((resolve) => c.once('exit', () => {
      live.delete(c);
      resolve();
    }));
    const deadline = Date.now() + 10_000;
    // With a password, PING answers -NOAUTH (and TLS does not speak plain text): wait for the port to accept connections instead.
    const ready = options.password || tls ? () => new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    }) : () => answers(port);
    while (!(await ready())) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    child?.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port, url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`, start, kill,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One server for the tests of a file: started before them (unless the file
 * skips Redis tests), stopped after. Returns the server, once started.
 */
export function redisForFile(): () => RedisServer {
  let server: RedisServer | undefined;
  before(async () => {
    if (!redisSkip()) server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  return () => server!;
}
