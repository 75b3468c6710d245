/**
 * A real redis-server for tests: a free loopback port, a private directory,
 * no persistence, stopped (and its directory removed) by `stop()` or when
 * the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

export async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'spread-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
      ...(options.password ? ['--requirepass', options.password] : [])];
    const c = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    live.add(c);
    exited = new Promise((resolve) => c.once('exit', () => {
      live.delete(c);
      resolve();
    }));
    const deadline = Date.now() + 10_000;
    // With a password, PING answers -NOAUTH: wait for the port to accept connections instead.
    const ready = options.password ? () => new Promise<boolean>((resolve) => {
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
    port, url: `redis://127.0.0.1:${port}`, start, kill,
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
