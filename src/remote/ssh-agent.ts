/**
 * The remote agent behind SshSession.exec: one long-lived bash per
 * connection that runs scripts sent over its stdin, so a script costs a few
 * fork/execs on the target instead of a new SSH channel and login shell
 * (Debian's bash sources ~/.bashrc for every ssh command, sudo -i a profile).
 *
 * Protocol (bash + coreutils only on the target):
 * - Request: a line with the script's byte length, then the bytes. bash's
 *   `read` consumes the pipe byte by byte, which is fine for one short line;
 *   the script body is read by `head -c N`, which never reads past N.
 * - Reply: marker lines `<token> R|S|E <number>` around the raw output. The
 *   token is random per agent and never appears on a command line, so output
 *   cannot fake it. `R pid` = ready, `S pgid` = script started (its process
 *   group, for kills), output follows verbatim, then `E status`.
 * - Each script is a fresh `/bin/bash FILE` with stdin from /dev/null,
 *   stdout and stderr into one pipe, in a process group of its own (`set -m`
 *   in the subshell: no setsid, which is util-linux, not coreutils). The pipe
 *   goes through `cat`, outside that group, so, as with one SSH session per
 *   script, the script ends when every holder of its output has closed it,
 *   and a kill of the group loses no output already written.
 */
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { OutputBuffer } from '../output.js';
import { ConnectionLostError, type ExecResult } from './session.js';

const agentScript = (token: string): string => `spread_agent() {
  local t=${token} d len st
  d=$(mktemp -d "\${TMPDIR:-/tmp}/spread-agent.XXXXXXXX") || return 1
  printf '%s R %s\\n' "$t" "$$"
  while read -r len; do
    [[ -d $d ]] || d=$(mktemp -d "\${TMPDIR:-/tmp}/spread-agent.XXXXXXXX") || return 1
    head -c "$len" > "$d/script" || return 1
    { set -m; ( printf '%s S %s\\n' "$t" "$BASHPID"; exec /bin/bash "$d/script" ) < /dev/null 2>&1 & wait $!; } | cat
    st=\${PIPESTATUS[0]}
    printf '%s E %s\\n' "$t" "$st"
  done
  rm -rf "$d"
}
spread_agent; exit
`;

type Marker = { kind: 'R' | 'S' | 'E'; value: number };

/** Splits the agent's stdout into markers and script output; holds back only bytes that could start a marker. */
export class AgentParser {
  private readonly token: Buffer;
  private pending: Buffer = Buffer.alloc(0);
  private inOutput = false;

  constructor(token: string, private readonly onMarker: (m: Marker) => void, private readonly onOutput: (b: Buffer) => void) {
    this.token = Buffer.from(token);
  }

  push(chunk: Buffer): void {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const at = buf.indexOf(this.token);
      if (at < 0) {
        const keep = this.partialTail(buf);
        if (this.inOutput && buf.length > keep) this.onOutput(buf.subarray(0, buf.length - keep));
        this.pending = buf.subarray(buf.length - keep);
        return;
      }
      if (this.inOutput && at > 0) this.onOutput(buf.subarray(0, at));
      this.inOutput = false;
      const eol = buf.indexOf(0x0a, at);
      if (eol < 0) {
        this.pending = buf.subarray(at);
        return;
      }
      const [kind, value] = buf.subarray(at + this.token.length, eol).toString('latin1').trim().split(' ');
      buf = buf.subarray(eol + 1);
      if (kind === 'R' || kind === 'S' || kind === 'E') {
        if (kind === 'S') this.inOutput = true;
        this.onMarker({ kind, value: Number(value) });
      }
    }
  }

  // The longest suffix of buf that is a prefix of the token.
  private partialTail(buf: Buffer): number {
    for (let k = Math.min(this.token.length - 1, buf.length); k > 0; k--) {
      if (buf.subarray(buf.length - k).equals(this.token.subarray(0, k))) return k;
    }
    return 0;
  }
}

interface Running {
  onStart(pgid: number): void;
  onOutput(bytes: Buffer): void;
  onEnd(status: number): void;
  onGone(err: Error): void;
}

export interface AgentRunOptions {
  readonly onOutput?: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
  /** Sends SIGKILL to a process group on the target (over another channel). */
  readonly kill: (pgid: number) => Promise<void>;
  /** After a kill, how long to wait for the end marker before giving up on the agent. */
  readonly killGraceMs: number;
}

/** One agent on one exec channel; runs one script at a time (the caller queues). */
export class Agent {
  private running: Running | undefined;
  private exitStatus: string | undefined;
  private stderrTail = '';
  private gone: Error | undefined;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private constructor(private readonly channel: ClientChannel, token: string) {
    const parser = new AgentParser(token, (m) => this.onMarker(m), (b) => this.running?.onOutput(b));
    channel.on('data', (d: Buffer) => parser.push(d));
    channel.stderr.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-2000); });
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exitStatus = code === null ? `signal ${signal}` : `status ${code}`;
    });
    channel.on('close', () => this.onClose());
    channel.on('error', () => {});
  }

  /** Start the agent on a fresh channel running `bash -s` as root; resolves once it is ready. */
  static async start(channel: ClientChannel): Promise<Agent> {
    const token = `spread-agent-${randomBytes(16).toString('hex')}`;
    const agent = new Agent(channel, token);
    const ready = new Promise<void>((resolve, reject) => { agent.readyWaiters = { resolve, reject }; });
    channel.write(agentScript(token));
    await ready;
    return agent;
  }

  get alive(): boolean {
    return this.gone === undefined;
  }

  /** End the agent (its stdin closes, it removes its temp dir and exits). */
  close(): void {
    this.channel.end();
  }

  /** Drop the agent without waiting: used when a killed script's output pipe stays open. */
  discard(): void {
    this.gone ??= new Error('remote agent discarded');
    this.channel.close();
  }

  run(script: string, opts: AgentRunOptions): Promise<ExecResult> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<ExecResult>((resolve, reject) => {
      const output = new OutputBuffer();
      let pgid: number | undefined;
      let killed = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const emit = (bytes: Buffer) => {
        output.push(bytes);
        opts.onOutput?.(bytes);
      };
      const finish = (result: { exitCode: number } | { error: Error }) => {
        if (this.running !== running) return;
        this.running = undefined;
        clearTimeout(graceTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        if ('error' in result && !killed) reject(result.error);
        else resolve({ exitCode: 'exitCode' in result ? result.exitCode : 137, output: output.output(), killed });
      };
      const sendKill = () => { if (pgid !== undefined) opts.kill(pgid).catch(() => {}); };
      const onAbort = () => {
        if (killed) return;
        killed = true;
        sendKill();
        graceTimer = setTimeout(() => {
          this.discard();
          finish({ exitCode: 137 });
        }, opts.killGraceMs);
      };
      const running: Running = {
        onStart: (id) => { pgid = id; if (killed) sendKill(); },
        onOutput: emit,
        onEnd: (status) => finish({ exitCode: status }),
        onGone: (error) => finish({ error }),
      };
      this.running = running;
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      const body = Buffer.from(script, 'utf8');
      this.channel.write(Buffer.concat([Buffer.from(`${body.length}\n`), body]));
    });
  }

  private onMarker(m: Marker): void {
    if (m.kind === 'R') {
      this.readyWaiters?.resolve();
      this.readyWaiters = undefined;
    } else if (m.kind === 'S') {
      this.running?.onStart(m.value);
    } else {
      this.running?.onEnd(m.value);
    }
  }

  // A channel that ends without an exit status went down with the connection.
  private onClose(): void {
    const stderr = this.stderrTail.trim();
    const error = this.exitStatus === undefined
      ? new ConnectionLostError('connection lost while running a script')
      : new Error(`remote agent ended unexpectedly (${this.exitStatus})${stderr ? `: ${stderr}` : ''}`);
    this.gone ??= error;
    this.readyWaiters?.reject(this.exitStatus === undefined ? error
      : new Error(`cannot start the remote script runner${stderr ? `: ${stderr}` : ` (${this.exitStatus})`}`));
    this.readyWaiters = undefined;
    this.running?.onGone(this.gone);
  }
}
