/**
 * The remote agent behind SshSession.exec: one long-lived bash per
 * connection that runs scripts sent over its stdin, so a script costs a few
 * fork/execs on the target instead of a new SSH channel and login shell
 * (Debian's bash sources ~/.bashrc for every ssh command, sudo -i a profile).
 * Written by hand in bash: the target may have nothing else (bash 4.3 on).
 *
 * It must be as robust as the original's fresh `/bin/bash` per script:
 *
 * - Request: a line with the script's byte length, then the bytes, read
 *   whole into memory (bash's `read -N`, no fork; the agent runs in the C
 *   locale so N counts bytes, and each script gets the caller's LC_ALL back)
 *   before anything runs: a script that stops early cannot leave bytes
 *   behind, and no file is written, so a full or read-only /tmp changes
 *   nothing. `read` drops NUL bytes, so the client sends none (bash ignores
 *   them in a script anyway).
 * - Each script runs as `/bin/bash -s` reading the script from a pipe of its
 *   own, as the original's `/bin/bash -` did (errors read `/bin/bash: line
 *   N: ...`), in a process group of its own (`set -m`; setsid is util-linux,
 *   not coreutils), stdout and stderr merged into one pipe drained by `cat`.
 *   W forks it directly (a fork costs ~0.3 ms of CPU on a small VM, and a
 *   run forks per script): the pipe it reads is a here-string where bash
 *   (5.1 on) makes one without a temp file, i.e. for scripts under 4 KiB
 *   (its pipe-size limit is at least that), else a `printf` of its own.
 * - A waiter (W) starts it, waits for it and writes its status to a status
 *   pipe; W and `cat` keep that pipe open, so the agent, reading it, learns
 *   the end only once the output is all out (every holder of the script's
 *   output pipe closed it, as with one SSH session per script), and learns
 *   it even when the script killed W (the status is then "lost").
 * - W is detached from the agent (double fork) and holds neither the
 *   channel nor the agent's stdin: nothing a script inherits or finds among
 *   its parents leads to them, so a process it leaves behind cannot steal
 *   the next script or write into the next output, and killing its parents
 *   never kills the agent. The script holds no descriptor of the channel.
 * - Reply: marker lines `<token> R|S|G|E ...` around the raw output. The
 *   token is random per agent and never on a command line, so output cannot
 *   fake it. `R pid` = ready; `S n wpgid` = W of script n started (its group,
 *   for kills), the script's output follows verbatim; `G n pgid` = the
 *   script's group, written by W once it forked the script, so it may come
 *   in the middle of that output (which goes on after it); `E n
 *   status|lost`. Output of a script the client gave up on is dropped by its
 *   number.
 * - Every agent process is named `spread-agent` (argv[0]). At start an agent
 *   removes what agents of dead connections left (processes named so whose
 *   session leader, the channel's shell, is gone or was orphaned by the
 *   server's connection process, with the script groups they ran) and the
 *   temp directories of earlier versions.
 */
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { OutputBuffer } from '../output.js';
import { ConnectionLostError, type ExecResult } from './session.js';

const NAME = 'spread-agent';

/** The agent itself, sent as the first bytes of its channel (exported for bench/agent-cost.ts). */
export const agentScript = (token: string): string => `exec -a ${NAME} /bin/bash -s
spread_sweep() {
  local p c st me
  rm -rf -- "\${TMPDIR:-/tmp}"/spread-agent.* /tmp/spread-agent.*
  read -r st < /proc/$BASHPID/stat && set -- \${st##*) } && me=$4
  for p in /proc/[0-9]*; do
    c=
    { read -r -d '' c < "$p/cmdline"; } 2> /dev/null
    [[ $c == ${NAME} ]] || continue
    read -r st < "$p/stat" || continue
    set -- \${st##*) }
    [[ $4 == "$me" ]] && continue
    if read -r st < "/proc/$4/stat"; then
      set -- \${st##*) }
      [[ $2 != 1 ]] && continue
    fi
    for c in $(cat "$p"/task/*/children); do kill -9 -- "-$c"; done
    kill -9 "\${p#/proc/}"
  done
}
spread_wait() {
  local st w=$BASHPID
  if [[ $spread_lc == set:* ]]; then export LC_ALL="\${spread_lc#set:}"; else unset LC_ALL; fi
  exec 5>&1
  exec 1> >(exec -a ${NAME} cat >&4 4>&-) 4>&-
  set -m
  printf '%s S %s %s\\n' "$t" "$n" "$w"
  if (( spread_here )) && [[ \${#s} -lt 4096 && $s == *$'\\n' ]]; then
    /bin/bash -s <<< "\${s%$'\\n'}" 2>&1 5>&- &
  else
    /bin/bash -s < <(printf '%s' "$s") 2>&1 5>&- &
  fi
  printf '%s G %s %s\\n' "$t" "$n" "$!"
  wait $!
  st=$?
  exec 1>&-
  printf '%s\\n' "$st" >&5
}
spread_agent() {
  local t=${token} len s n=0 st
  spread_lc=\${LC_ALL+set:$LC_ALL}
  spread_here=$(( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 ))
  export LC_ALL=C
  spread_sweep < /dev/null > /dev/null 2>&1 &
  exec 4>&1
  printf '%s R %s\\n' "$t" "$$"
  while read -r len; do
    IFS= read -r -N "$len" s || break
    n=$((n + 1))
    st=lost
    while read -r len; do st=$len; done < <(set -m; spread_wait < /dev/null 2> /dev/null &)
    printf '%s E %s %s\\n' "$t" "$n" "$st"
  done
}
spread_agent; exit
`;

type Marker = { readonly kind: 'R' | 'S' | 'G' | 'E'; readonly values: readonly number[] };

/** Splits the agent's stdout into markers and script output; holds back only bytes that could start a marker. */
export class AgentParser {
  private readonly token: Buffer;
  private pending: Buffer = Buffer.alloc(0);
  /** The script whose output is flowing (after its S marker), if any. */
  private current: number | undefined;

  constructor(token: string, private readonly onMarker: (m: Marker) => void, private readonly onOutput: (script: number, b: Buffer) => void) {
    this.token = Buffer.from(token);
  }

  push(chunk: Buffer): void {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const at = buf.indexOf(this.token);
      if (at < 0) {
        const keep = this.partialTail(buf);
        if (this.current !== undefined && buf.length > keep) this.onOutput(this.current, buf.subarray(0, buf.length - keep));
        this.pending = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      if (this.current !== undefined && at > 0) this.onOutput(this.current, buf.subarray(0, at));
      const eol = buf.indexOf(0x0a, at);
      if (eol < 0) {
        this.pending = Buffer.from(buf.subarray(at));
        return;
      }
      const [kind, ...values] = buf.subarray(at + this.token.length, eol).toString('latin1').trim().split(' ');
      buf = buf.subarray(eol + 1);
      // G comes from the waiter in the middle of the script's output: that output goes on.
      if (kind !== 'G') this.current = undefined;
      if (kind === 'R' || kind === 'S' || kind === 'G' || kind === 'E') {
        const numbers = values.map(Number);
        if (kind === 'S') this.current = numbers[0];
        this.onMarker({ kind, values: numbers });
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

/** The agent ended before the script started: nothing ran, so it is safe to send it to a new agent. */
export class AgentGoneError extends Error {
  override readonly name = 'AgentGoneError';
}

interface Running {
  readonly n: number;
  /** The waiter started (its process group, which holds the output's cat too). */
  onStart(wpgid: number): void;
  /** The script started, leading a process group of its own. */
  onGroup(pgid: number): void;
  onOutput(bytes: Buffer): void;
  onEnd(status: number): void;
  onGone(err: Error): void;
}

export interface AgentRunOptions {
  readonly onOutput?: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
  /** Sends SIGKILL to process groups on the target (over another channel). */
  readonly kill: (pgids: readonly number[]) => Promise<void>;
  /** After a kill, how long to wait for the end marker before giving up on the script's output. */
  readonly killGraceMs: number;
}

/** One agent on one exec channel; runs one script at a time (the caller queues). */
export class Agent {
  private running: Running | undefined;
  private exitStatus: string | undefined;
  private stderrTail = '';
  private gone: Error | undefined;
  private sent = 0;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private constructor(private readonly channel: ClientChannel, token: string) {
    const parser = new AgentParser(token, (m) => this.onMarker(m), (n, b) => { if (this.running?.n === n) this.running.onOutput(b); });
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
    const token = `${NAME}-${randomBytes(16).toString('hex')}`;
    const agent = new Agent(channel, token);
    const ready = new Promise<void>((resolve, reject) => { agent.readyWaiters = { resolve, reject }; });
    channel.write(agentScript(token));
    await ready;
    return agent;
  }

  get alive(): boolean {
    return this.gone === undefined && this.exitStatus === undefined;
  }

  /** End the agent (its stdin closes and it exits). */
  close(): void {
    this.channel.end();
  }

  /** Drop the agent without waiting: used when it stopped answering. */
  discard(): void {
    this.gone ??= new Error('remote agent discarded');
    this.channel.close();
  }

  run(script: string, opts: AgentRunOptions): Promise<ExecResult> {
    if (!this.alive) return Promise.reject(new AgentGoneError(`remote agent ended (${this.exitStatus ?? 'closed'})`));
    const n = ++this.sent;
    return new Promise<ExecResult>((resolve, reject) => {
      const output = new OutputBuffer();
      // [script's group, waiter's group], once both are known; the waiter's alone before.
      let groups: readonly number[] | undefined;
      let waiter: number | undefined;
      let killed = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = (result: { exitCode: number } | { error: Error } | { broken: string }) => {
        if (this.running !== running) return;
        this.running = undefined;
        clearTimeout(graceTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (killed) resolve({ exitCode: 'exitCode' in result && !Number.isNaN(result.exitCode) ? result.exitCode : 137, output: output.output(), killed });
        else if ('error' in result) reject(result.error);
        else if ('broken' in result) resolve({ exitCode: 137, output: output.output(), killed, broken: result.broken });
        else resolve({ exitCode: result.exitCode, output: output.output(), killed });
      };
      const onAbort = () => {
        if (killed) return;
        killed = true;
        if (groups) opts.kill(groups.slice(0, 1)).catch(() => {});
        graceTimer = setTimeout(() => {
          // The output pipe is held by something outside the script's group (or the script never reported
          // its group): end the waiter and its cat, after which the agent reports the end.
          const all = groups ?? (waiter === undefined ? undefined : [waiter]);
          if (!all) return giveUp();
          opts.kill(all).catch(() => {});
          graceTimer = setTimeout(giveUp, opts.killGraceMs);
        }, opts.killGraceMs);
      };
      // The agent does not answer at all: drop it (the session starts another).
      const giveUp = () => {
        this.discard();
        finish({ exitCode: 137 });
      };
      const running: Running = {
        n,
        onStart: (wpgid) => {
          waiter = wpgid;
        },
        onGroup: (pgid) => {
          groups = [pgid, waiter ?? pgid];
          if (killed) opts.kill(groups.slice(0, 1)).catch(() => {});
        },
        onOutput: (bytes) => {
          output.push(bytes);
          opts.onOutput?.(bytes);
        },
        onEnd: (status) => {
          // A waiter killed by the script itself: its status is lost.
          if (Number.isNaN(status)) finish({ broken: 'remote agent killed while running the script (its status is lost)' });
          else finish({ exitCode: status });
        },
        onGone: (error) => {
          if (error instanceof ConnectionLostError) finish({ error });
          else if (waiter === undefined) finish({ error: new AgentGoneError(error.message) });
          else finish({ broken: `remote agent killed while running the script (${this.exitStatus ?? 'closed'})` });
        },
      };
      this.running = running;
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      const body = Buffer.from(script.includes('\0') ? script.replaceAll('\0', '') : script, 'utf8');
      this.channel.write(Buffer.concat([Buffer.from(`${body.length}\n`), body]));
    });
  }

  private onMarker(m: Marker): void {
    const [n, a] = m.values;
    if (m.kind === 'R') {
      this.readyWaiters?.resolve();
      this.readyWaiters = undefined;
    } else if (this.running?.n !== n) {
      // A script the client gave up on.
    } else if (m.kind === 'S') {
      this.running.onStart(a!);
    } else if (m.kind === 'G') {
      this.running.onGroup(a!);
    } else {
      this.running.onEnd(a!);
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
