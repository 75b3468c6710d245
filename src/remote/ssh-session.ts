/**
 * Session over a connected SSH client (ssh2; dialed by ssh-dial.ts).
 *
 * - Scripts go through one long-lived agent per connection (ssh-agent.ts),
 *   one at a time, so a script costs no new channel or login shell.
 * - Every other operation (upload, download, kill, tty) gets a channel of its
 *   own running `[sudo -i ]/bin/bash -s`, with its command line sent as the
 *   first line of stdin. bash reads a pipe byte by byte, so whatever follows
 *   that line (an upload's tar stream) is left for the command. This keeps
 *   commands away from `sudo -i`'s re-quoting, which leaves `$` unescaped.
 * - Channels are capped per connection (OpenSSH's MaxSessions defaults to
 *   10) and queued; a refused open is retried, since sshd frees a slot only
 *   once the session's process is gone.
 * - Interactive runs (request.tty) use a PTY channel of their own, so they
 *   work while the agent is busy; the script is first stored in a temp file
 *   because a PTY would mangle it on its way through stdin.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Duplex, PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Client, ClientChannel, PseudoTtyOptions } from 'ssh2';
import { EMPTY_OUTPUT, OutputBuffer } from '../output.js';
import { Agent, AgentGoneError } from './ssh-agent.js';
import { STORE_STDIN } from './script.js';
import { globQuote, shellQuote } from './shell-words.js';
import type { SshDialOptions } from './ssh-dial.js';
import { ConnectionLostError, type ExecRequest, type ExecResult, type Session, type TtyStreams, type UploadOptions } from './session.js';


/** The upload command's status when the directory holds something (UploadOptions.ifEmpty). */
const NOT_EMPTY = 99;


const isOpenRefused = (err: unknown): boolean => err instanceof Error && /Channel open failure/i.test(err.message);

/** The promise's value, or undefined as soon as the signal aborts. */
const untilAborted = <T>(p: Promise<T>, signal?: AbortSignal): Promise<T | undefined> => {
  if (!signal) return p;
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
};


export class SshSession implements Session {
  private agent: Promise<Agent> | undefined;
  private execQueue: Promise<unknown> = Promise.resolve();
  private channels = 0;
  private readonly channelWaiters: (() => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];
  private lost: ConnectionLostError | undefined;
  private closing = false;

  constructor(private readonly client: Client, readonly address: string, private readonly sudo: boolean,
    private readonly opts: SshDialOptions) {
    client.on('error', () => {});
    client.on('close', () => {
      this.lost ??= new ConnectionLostError(`connection to ${address} lost`);
      for (const wake of this.channelWaiters.splice(0)) wake();
      if (this.closing) return;
      for (const listener of this.closeListeners.splice(0)) listener();
    });
  }

  onClose(listener: () => void): void {
    if (this.lost && !this.closing) listener();
    else this.closeListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.lost) return;
    const gone = new Promise<void>((resolve) => this.client.once('close', () => resolve()));
    this.agent?.then((a) => a.close(), () => {});
    this.client.end();
    // Wait a little for a clean goodbye, without the timer keeping spread alive afterwards.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise<void>((resolve) => { timer = setTimeout(resolve, 2_000); })]);
    clearTimeout(timer);
    this.client.destroy();
  }

  exec(request: ExecRequest): Promise<ExecResult> {
    if (request.tty) return this.execTty(request, request.tty);
    const turn = this.execQueue.then(() => this.execAgent(request));
    this.execQueue = turn.catch(() => {});
    return turn;
  }

  private async execAgent(request: ExecRequest): Promise<ExecResult> {
    const notRun: ExecResult = { exitCode: 137, output: EMPTY_OUTPUT, killed: true };
    if (request.signal?.aborted) return notRun;
    for (let attempt = 1; ; attempt++) {
      // A login that hangs must not outlive the caller's kill timeout.
      const agent = await untilAborted(this.getAgent(), request.signal);
      if (!agent || request.signal?.aborted) return notRun;
      try {
        return await agent.run(request.script, {
          onOutput: request.onOutput, signal: request.signal,
          kill: (pgids) => this.command(`kill -9 -- ${pgids.map((g) => `-${g}`).join(' ')}`, { priority: true }).then(() => {}),
          killGraceMs: this.opts.killGraceMs ?? 5_000,
        });
      } catch (err) {
        // The agent was gone before the script started (a previous script killed it): nothing ran, try a new one.
        if (!(err instanceof AgentGoneError) || attempt >= 2) throw err;
      }
    }
  }

  /** Its login (slow on images with heavy profiles) then overlaps the upload's; a failure shows at the first script. */
  startAgent(): void {
    this.getAgent().catch(() => {});
  }

  // A new agent when there is none or the last one died (a script may kill it).
  private async getAgent(): Promise<Agent> {
    const current = this.agent && (await this.agent.catch(() => undefined));
    if (current?.alive) return current;
    this.agent = this.openChannel().then((ch) => Agent.start(ch));
    return this.agent;
  }

  // sshd listens on the machine's loopback (GatewayPorts is off by default) and sends connections back over this one.
  forwardIn(onConnection: (stream: Duplex) => void): Promise<number> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise((resolve, reject) => {
      const ask = (cb: (err: Error | undefined, port: number) => void) => {
        try {
          this.client.forwardIn('127.0.0.1', 0, cb);
        } catch (err) {
          cb(err as Error, 0);
        }
      };
      ask((err, port) => {
        if (err) {
          reject(new Error(`cannot forward a port on ${this.address} back to spread: ${err.message} (sshd must allow it: AllowTcpForwarding yes)`));
          return;
        }
        // Each forward answers its own port only (a session asks for one).
        this.client.on('tcp connection', (info, accept) => {
          if (info.destPort === port) onConnection(accept());
        });
        resolve(port);
      });
    });
  }

  async upload(tarGz: Readable, dir: string, opts: UploadOptions = {}): Promise<boolean> {
    const d = shellQuote(dir);
    // One line: bash has read all of it before tar reads the rest of stdin.
    const check = opts.ifEmpty
      ? `if test -e ${d}; then l=$(ls -A ${d} 2>&1) || { printf 'cannot check if %s is empty: %s\\n' ${d} "$l"; exit 1; }; test -z "$l" || exit ${NOT_EMPTY}; fi; `
      : '';
    const { code, output } = await this.command(`${check}mkdir -p ${d} && cd ${d} && exec /bin/tar xz 2>&1`, { stdin: tarGz });
    if (opts.ifEmpty && code === NOT_EMPTY) {
      tarGz.resume(); // unread: drained here, so whatever produces it finishes
      return false;
    }
    if (code !== 0) throw new Error(`cannot extract project content into ${dir} on ${this.address}: ${output.trim() || `status ${code}`}`);
    return true;
  }

  async download(dir: string, paths: readonly string[]): Promise<Readable> {
    const out = new PassThrough();
    if (paths.length === 0) {
      out.end(Buffer.alloc(1024)); // an empty tar archive: two zero blocks
      return out;
    }
    const args = paths.map(globQuote).join(' ');
    const ch = await this.openChannel();
    ch.end(`cd ${shellQuote(dir)} && exec /bin/tar cz --sort=name --ignore-failed-read -- ${args}\n`);
    const gunzip = createGunzip();
    let stderr = '';
    let status: number | undefined;
    let unzipped = false;
    let unzipError: Error | undefined;
    // End the stream only once tar's status is known, so a failure never looks like a short archive.
    const settle = () => {
      if (status === undefined || (status === 0 && !unzipped && !unzipError)) return;
      if (status !== 0) {
        const why = stderr.trim() || `status ${status}`;
        out.destroy(new Error(`cannot fetch ${paths.join(' ')} from ${dir} on ${this.address}: ${why}`));
      }
      else if (unzipError) out.destroy(unzipError);
      else out.end();
    };
    ch.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    ch.on('exit', (code: number | null) => { status = code ?? 255; settle(); });
    ch.on('close', () => {
      if (status === undefined) out.destroy(this.lost ?? new ConnectionLostError(`connection to ${this.address} lost during download`));
    });
    // Keep draining so tar can exit: its status explains a broken stream better than zlib does.
    gunzip.on('error', (e) => { unzipError = e; ch.unpipe(gunzip); ch.resume(); settle(); });
    gunzip.on('end', () => { unzipped = true; settle(); });
    ch.pipe(gunzip).pipe(out, { end: false });
    return out;
  }

  /** Run one command line as root on a channel of its own; stdin (if any) follows the line. */
  private async command(line: string, o: { stdin?: Readable; priority?: boolean } = {}): Promise<{ code: number; output: string }> {
    const ch = await this.openChannel(o);
    return new Promise((resolve, reject) => {
      let output = '';
      let code: number | undefined;
      ch.on('data', (d: Buffer) => { output += d.toString(); });
      ch.stderr.on('data', (d: Buffer) => { output += d.toString(); });
      ch.on('exit', (c: number | null) => { code = c ?? 255; });
      ch.on('close', () => (code === undefined
        ? reject(this.lost ?? new ConnectionLostError(`connection to ${this.address} lost`))
        : resolve({ code, output })));
      if (!o.stdin) {
        ch.end(`${line}\n`);
        return;
      }
      ch.write(`${line}\n`);
      o.stdin.once('error', (e) => { ch.close(); reject(e); });
      o.stdin.pipe(ch);
    });
  }

  private async openChannel(o: { pty?: PseudoTtyOptions; command?: string; priority?: boolean } = {}): Promise<ClientChannel> {
    if (!o.priority) await this.acquireChannel();
    let held = !o.priority;
    const release = () => { if (held) { held = false; this.releaseChannel(); } };
    const command = o.command ?? (this.sudo ? 'sudo -i /bin/bash -s' : '/bin/bash -s');
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.lost) throw this.lost;
        try {
          const ch = await new Promise<ClientChannel>((resolve, reject) => {
            const cb = (err: Error | undefined, c: ClientChannel) => (err ? reject(err) : resolve(c));
            if (o.pty) this.client.exec(command, { pty: o.pty }, cb);
            else this.client.exec(command, cb);
          });
          ch.once('close', release);
          return ch;
        } catch (err) {
          if (this.lost) throw this.lost;
          if (err instanceof Error && /Not connected/i.test(err.message)) {
            throw new ConnectionLostError(`connection to ${this.address} lost`);
          }
          if (!isOpenRefused(err) || attempt >= 50) throw err;
          await sleep(Math.min(20 * attempt, 200));
        }
      }
    } catch (err) {
      release();
      throw err;
    }
  }

  private async acquireChannel(): Promise<void> {
    const max = this.opts.maxChannels ?? 6;
    while (this.channels >= max && !this.lost) await new Promise<void>((r) => this.channelWaiters.push(r));
    if (this.lost) throw this.lost;
    this.channels++;
  }

  private releaseChannel(): void {
    this.channels--;
    this.channelWaiters.shift()?.();
  }

  // Store the script in a temp file first (a PTY would mangle it), then run it on a PTY channel.
  private async execTty(request: ExecRequest, tty: TtyStreams): Promise<ExecResult> {
    const stored = await this.command(`${STORE_STDIN}; spread_store tty`,
      { stdin: Readable.from([`rm -f -- "$0"; ${request.script}`]) });
    const file = stored.output.trim().split('\n').pop() ?? '';
    if (stored.code !== 0 || !/^\/\S*\/spread-tty\.\w+$/.test(file)) {
      throw new Error(`cannot store interactive script on ${this.address}: ${stored.output.trim()}`);
    }
    const ch = await this.openChannel({
      command: `${this.sudo ? 'sudo -i ' : ''}/bin/bash ${file}`,
      pty: { rows: tty.rows ?? 24, cols: tty.columns ?? 80, term: this.opts.term ?? 'xterm-256color' },
    });
    return runOnTty(ch, tty, request, () => this.lost);
  }
}

/** Relay a PTY channel to local streams until it closes; raw mode on a local TTY meanwhile. */
const runOnTty = (ch: ClientChannel, tty: TtyStreams, request: ExecRequest, lost: () => Error | undefined): Promise<ExecResult> =>
  new Promise((resolve, reject) => {
    const stdin = tty.stdin as NodeJS.ReadStream;
    const stdout = tty.stdout as NodeJS.WriteStream;
    const wasRaw = stdin.isTTY ? stdin.isRaw : undefined;
    if (stdin.isTTY) stdin.setRawMode(true);
    const output = new OutputBuffer();
    let code: number | undefined;
    let killed = false;
    const onInput = (d: Buffer | string) => ch.write(d);
    const onResize = () => ch.setWindow(stdout.rows, stdout.columns, 0, 0);
    const onAbort = () => { killed = true; ch.signal('KILL'); ch.close(); };
    stdin.on('data', onInput);
    stdin.resume();
    if (stdout.isTTY) stdout.on('resize', onResize);
    request.signal?.addEventListener('abort', onAbort, { once: true });
    ch.on('data', (d: Buffer) => {
      output.push(d);
      request.onOutput?.(d);
      tty.stdout.write(d);
    });
    ch.on('exit', (c: number | null) => { code = c ?? 255; });
    ch.on('close', () => {
      stdin.off('data', onInput);
      stdin.pause();
      if (wasRaw !== undefined) stdin.setRawMode(wasRaw);
      if (stdout.isTTY) stdout.off('resize', onResize);
      request.signal?.removeEventListener('abort', onAbort);
      const error = lost();
      if (code === undefined && !killed) reject(error ?? new ConnectionLostError('connection lost during an interactive script'));
      else resolve({ exitCode: code ?? 137, output: output.output(), killed });
    });
    if (request.signal?.aborted) onAbort();
  });
