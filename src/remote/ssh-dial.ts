/**
 * Dialing an SSH server (ssh2): TCP connect, handshake and password
 * authentication, with no host-key check, as spread does; what answers is
 * told apart (a forwarder whose target is not up yet, something that is not
 * SSH, a refused password) so the caller knows whether retrying can help.
 * The connected session is ssh-session.ts.
 */
import net from 'node:net';
import { Client } from 'ssh2';
import type { Session } from './session.js';
import { parseAddress } from './shell-words.js';
import { SshSession } from './ssh-session.js';

export interface SshDialOptions {
  /** `host:port`, `host` (port 22) or `[v6addr]:port`. */
  readonly address: string;
  /** Login user; anyone but root runs every command through `sudo -i` (passwordless). @default 'root' */
  readonly username?: string;
  readonly password: string;
  /** Covers TCP connect, handshake and authentication. @default 10_000 */
  readonly dialTimeoutMs?: number;
  /** Aborting stops the dial. */
  readonly signal?: AbortSignal;
  /** A dead peer is noticed after about interval × (count + 1). @default 5_000 */
  readonly keepaliveIntervalMs?: number;
  /** @default 3 */
  readonly keepaliveCountMax?: number;
  /** Channels open at once on the connection, the agent's included; the rest wait. @default 6 */
  readonly maxChannels?: number;
  /** After a kill, how long to wait for the script's end before replacing the agent. @default 5_000 */
  readonly killGraceMs?: number;
  /** TERM for interactive (tty) runs. @default 'xterm-256color' */
  readonly term?: string;
  /** Start the remote agent right away, beside whatever comes first (the upload): for sessions that will run scripts. */
  readonly startAgent?: boolean;
}

/**
 * A dial that retrying cannot help: the password or user was refused, the
 * two sides share no key exchange or host key algorithm, or what answered
 * is not an SSH server. Its message is one line, ready for the log.
 */
export class DialRefusedError extends Error {
  override readonly name = 'DialRefusedError';
}

/**
 * Connect and authenticate; rejects with a DialRefusedError when retrying
 * cannot help, else a plain Error (the caller decides whether to retry).
 */
export async function dialSsh(opts: SshDialOptions): Promise<Session> {
  const { host, port } = parseAddress(opts.address);
  const username = opts.username || 'root';
  const timeoutMs = opts.dialTimeoutMs ?? 10_000;
  const started = Date.now();
  const client = new Client();
  const fail = (why: string) => new Error(`cannot connect to ${opts.address}: ${why}`);

  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port });
    const done = (err?: Error) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) { s.destroy(); reject(err); } else resolve(s);
    };
    const onAbort = () => done(fail('dial aborted'));
    const timer = setTimeout(() => done(fail(`timeout after ${timeoutMs} ms`)), timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => done());
    s.once('error', (e) => done(fail(e.message)));
  });
  sock.setNoDelay(true);

  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      opts.signal?.removeEventListener('abort', onAbort);
      client.off('ready', onReady).off('error', onError);
      sock.emit = emit;
      if (!err) return resolve();
      client.on('error', () => {});
      sock.destroy();
      reject(err);
    };
    const onAbort = () => settle(fail('dial aborted'));
    const onReady = () => settle();
    // What the server said first: a peer that closes before saying anything
    // may be a port forwarder whose target is not up yet (worth a retry);
    // one that said something other than SSH- is not an SSH server.
    // The bytes are read off ssh2's own 'data' events (a listener of ours
    // would start the flow before ssh2 listens), for the first KiB only.
    let greeting = '';
    const emit = sock.emit;
    sock.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'data') {
        greeting += (args[0] as Buffer).toString('latin1');
        if (greeting.length > 1024 || /^SSH-/m.test(greeting)) sock.emit = emit;
      }
      return (emit as (event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
    };
    const refused = (why: string) => new DialRefusedError(`cannot connect to ${opts.address}: ${why}`);
    const onError = (e: Error & { level?: string }) => {
      if (e.level === 'client-authentication') return settle(refused(`cannot authenticate as ${username}: password refused`));
      if (e.level === 'handshake') return settle(refused(e.message));
      if (greeting !== '' && !/^SSH-/m.test(greeting)) {
        return settle(refused(`not an SSH server (it said ${JSON.stringify(greeting.split(/\r?\n/)[0]!.slice(0, 60))})`));
      }
      settle(fail(e.message));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('ready', onReady).on('error', onError);
    client.connect({
      sock, username, password: opts.password,
      readyTimeout: Math.max(1, timeoutMs - (Date.now() - started)),
      hostVerifier: () => true,
      keepaliveInterval: opts.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 3,
      tryKeyboard: false,
    });
  });
  const session = new SshSession(client, opts.address, username !== 'root', opts);
  if (opts.startAgent) session.startAgent();
  return session;
}
