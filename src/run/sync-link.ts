/**
 * How the sync helpers on a machine reach the runner's sync service: over
 * the machine's own SSH connection. The first task script of a
 * multi-machine job on a session asks sshd for a reverse forward (a port
 * on the machine's loopback, see Session.forwardIn); each connection made
 * there comes back to this process and is served by sync/wire.ts. No port
 * is opened on this host or to the network. The helpers find the port and
 * their instance's token in SPREAD_SYNC_PORT and SPREAD_SYNC_TOKEN, set
 * for each script (a reboot or a reconnect gives a new session, and so a
 * new forward).
 */
import { randomBytes } from 'node:crypto';
import { outputText } from '../output.js';
import type { Env } from '../project/types.js';
import type { Session } from '../remote/session.js';
import type { SyncService } from '../sync/sync.js';
import { serveSync } from '../sync/wire.js';
import type { Caller } from '../sync/wire.js';

export class SyncEndpoint {
  private readonly callers = new Map<string, Caller>();
  private readonly forwards = new WeakMap<Session, Promise<number>>();

  constructor(readonly service: SyncService) {}

  /** Calls made with `token` go to what `caller` says, until `forget`. */
  register(token: string, caller: Caller): void {
    this.callers.set(token, caller);
  }

  forget(token: string): void {
    this.callers.delete(token);
  }

  /** The variables the helpers need in a script on `session`; rejects when the session cannot forward. */
  async env(session: Session, token: string): Promise<Env> {
    let port = this.forwards.get(session);
    if (!port) {
      port = this.open(session);
      this.forwards.set(session, port);
      port.catch(() => this.forwards.delete(session));
    }
    return [['SPREAD_SYNC_PORT', String(await port)], ['SPREAD_SYNC_TOKEN', token]];
  }

  /**
   * A forward the helpers reach at 127.0.0.1. sshd picks the port on the
   * first loopback address it binds (often ::1) and binds the others to the
   * same number only if it is free there too, silently skipping one where
   * it is not: so each new forward is tried once from the machine, and
   * asked for again if 127.0.0.1 does not answer with this process's reply.
   */
  private async open(session: Session): Promise<number> {
    if (!session.forwardIn) throw new Error(`cannot reach spread's sync service from ${session.address}: its connection cannot forward ports`);
    let port = 0;
    for (let attempt = 1; attempt <= 5; attempt++) {
      port = await session.forwardIn((stream) => serveSync(stream, this.service, (t) => this.callers.get(t)));
      if (await this.answers(session, port)) return port;
    }
    throw new Error(`cannot reach spread's sync service from ${session.address}: the ports sshd forwarded (the last 127.0.0.1:${port}) do not answer there`);
  }

  private async answers(session: Session, port: number): Promise<boolean> {
    const nonce = randomBytes(16).toString('hex');
    const group = `probe/${nonce}`;
    this.callers.set(nonce, { group });
    try {
      const r = await session.exec({
        script: `exec 3<> /dev/tcp/127.0.0.1/${port} && printf '%s signal probe\\n' ${nonce} >&3 && IFS= read -r line <&3 && echo "$line"`,
        signal: AbortSignal.timeout(10_000),
      });
      return r.exitCode === 0 && outputText(r.output).trim().endsWith('ok 1');
    } catch {
      return false;
    } finally {
      this.callers.delete(nonce);
      await this.service.clear(group).catch(() => {});
    }
  }
}
