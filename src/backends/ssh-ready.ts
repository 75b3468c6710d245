/**
 * Knowing when a fresh machine really answers SSH. An open port proves
 * little here: docker-proxy and slirp (qemu) accept connections before
 * anything listens inside and then reset them, and LXD's sshd re-executes
 * itself after spread reconfigures it. So allocation waits for sshd's own
 * banner (`SSH-2.0-...`), and connecting to a machine that was allocated a
 * moment ago retries on any error for a short while.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import type { Session } from '../remote/session.js';
import { parseAddress } from '../remote/shell-words.js';
import type { Machine } from './backend.js';
import { sshMachine, type SshMachineOptions } from './ssh-machine.js';



/** Connect once and wait for a line starting with `SSH-`; resolves with why not otherwise. */
export const probeBanner = (address: string, timeoutMs = 3000): Promise<string | undefined> =>
  new Promise((resolve) => {
    const { host, port } = parseAddress(address);
    const sock = net.connect({ host, port });
    let seen = '';
    const done = (why?: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('no SSH banner yet'), timeoutMs);
    sock.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      if (/^SSH-/m.test(seen)) done();
      else if (seen.length > 8192) done('not an SSH server');
    });
    sock.once('error', (e) => done(e.message));
    sock.once('end', () => done('connection closed before the SSH banner'));
  });

export interface WaitSshOptions {
  readonly signal?: AbortSignal;
  /** @default 120_000 */
  readonly timeoutMs?: number;
  /** Called about every 15 s while still waiting, with the last reason. */
  readonly onSlow?: (why: string) => void;
  /** Stops the wait early (a VM process that exited): return its reason. */
  readonly gone?: () => string | undefined;
}

/** Wait until sshd greets at address; rejects with the last reason after the timeout. */
export async function waitSshBanner(address: string, o: WaitSshOptions = {}): Promise<void> {
  const started = Date.now();
  const deadline = started + (o.timeoutMs ?? 120_000);
  let nextSlow = started + 15_000;
  for (;;) {
    const why = await probeBanner(address);
    if (why === undefined) return;
    const gone = o.gone?.();
    if (gone !== undefined) throw new Error(gone);
    if (o.signal?.aborted) throw new Error('interrupted');
    if (Date.now() > deadline) throw new Error(`SSH did not answer at ${address} within ${Math.round((Date.now() - started) / 1000)}s: ${why}`);
    if (Date.now() > nextSlow) {
      o.onSlow?.(why);
      nextSlow += 15_000;
    }
    await sleep(200);
  }
}

/** How long after allocation any dial error is taken as "not quite up yet". */
export const EARLY_DIAL_MS = 20_000;

/**
 * sshMachine whose connect() retries every 250 ms on any error until
 * `earlyUntil` (epoch ms) or the caller's signal gives up; after that a
 * failure is reported at once, as for any machine.
 */
export function readySshMachine(o: SshMachineOptions & { readonly earlyUntil: number }): Machine {
  const base = sshMachine(o);
  const connect = async (signal?: AbortSignal): Promise<Session> => {
    for (;;) {
      try {
        return await base.connect(signal);
      } catch (err) {
        if (Date.now() > o.earlyUntil || signal?.aborted) throw err;
      }
      await sleep(250);
    }
  };
  return { ...base, connect };
}
