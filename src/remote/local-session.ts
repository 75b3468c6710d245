/**
 * Session on this machine, for the "local" backend: no SSH, scripts run as
 * the user running spread (root is up to the caller), with the same contract
 * as ssh-session.ts: a fresh /bin/bash per script in its own process group,
 * stdin from /dev/null, stdout and stderr merged into one pipe, one script at
 * a time, and completion once every holder of the output pipe has closed it.
 *
 * The script goes to `/bin/bash -s` on a pipe of its own, as the original
 * feeds it (errors read `/bin/bash: line N: ...`), so no file is needed.
 *
 * Interactive runs use `script -qfec` (util-linux) for a PTY: no native
 * module needed, and the caller's streams are relayed as given (with raw
 * mode on a local TTY meanwhile). Window size is set once at start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { constants as osConstants } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import { EMPTY_OUTPUT, OutputBuffer } from '../output.js';
import type { ExecRequest, ExecResult, Session, TtyStreams } from './session.js';
import { globQuote, shellQuote } from './shell-words.js';

export interface LocalSessionOptions {
  /** Where scripts start (like a login's home directory); relative `dir` arguments resolve against it. */
  readonly root: string;
  /** The session's address for logs, e.g. `local worker 2`. */
  readonly label: string;
  /** After a kill, how long to wait for the output pipe to close before giving up on it. @default 5_000 */
  readonly killGraceMs?: number;
}


const statusOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 255);

const killGroup = (child: ChildProcess): void => {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch { /* already gone */ }
};

export function localSession(opts: LocalSessionOptions): Session {
  const root = resolvePath(opts.root);
  const killGraceMs = opts.killGraceMs ?? 5_000;
  let queue: Promise<unknown> = Promise.resolve();
  let scratch: Promise<string> | undefined;
  let closed = false;
  const running = new Set<ChildProcess>();
  const servers: net.Server[] = [];

  // An interactive script is run from a file: a PTY would mangle it on its way through stdin.
  const ttyFile = async (script: string): Promise<string> => {
    scratch ??= mkdtemp(join(tmpdir(), 'spread-local-'));
    const file = join(await scratch, `tty-${Date.now()}`);
    await writeFile(file, `rm -f -- "$0"; ${script}`);
    return file;
  };

  // Run a child to completion: output merged in order, the group killed on abort.
  const runChild = (child: ChildProcess, request: ExecRequest, relay?: TtyStreams): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      running.add(child);
      const output = new OutputBuffer();
      let killed = false;
      let exited: number | undefined;
      let timer: NodeJS.Timeout | undefined;
      const emit = (bytes: Buffer) => {
        output.push(bytes);
        request.onOutput?.(bytes);
      };
      const finish = () => {
        if (!running.delete(child)) return;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        resolve({ exitCode: exited ?? 137, output: output.output(), killed });
      };
      const onAbort = () => {
        killed = true;
        killGroup(child);
      };
      child.stdout?.on('data', (d: Buffer) => {
        emit(d);
        relay?.stdout.write(d);
      });
      child.once('error', (e) => { running.delete(child); reject(e); });
      child.once('exit', (code, signal) => {
        exited = statusOf(code, signal);
        // A killed script's output pipe may be held by a daemon it started: do not wait forever.
        if (killed) timer = setTimeout(finish, killGraceMs);
      });
      child.once('close', finish);
      if (request.signal?.aborted) onAbort();
      else request.signal?.addEventListener('abort', onAbort, { once: true });
    });

  const execPlain = async (request: ExecRequest): Promise<ExecResult> => {
    if (request.signal?.aborted) return { exitCode: 137, output: EMPTY_OUTPUT, killed: true };
    const child = spawn('/bin/bash', ['-c', 'exec /bin/bash -s 2>&1'],
      { cwd: root, detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    // A script that stops early leaves the rest unread: its EPIPE is of no interest.
    child.stdin!.on('error', () => {});
    child.stdin!.end(request.script);
    return runChild(child, request);
  };

  const execTty = async (request: ExecRequest, tty: TtyStreams): Promise<ExecResult> => {
    const copy = await ttyFile(request.script);
    const size = `stty rows ${tty.rows ?? 24} cols ${tty.columns ?? 80} 2>/dev/null; `;
    const child = spawn('script', ['-qfec', `${size}exec /bin/bash ${shellQuote(copy)}`, '/dev/null'],
      { cwd: root, detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    const stdin = tty.stdin as NodeJS.ReadStream;
    const wasRaw = stdin.isTTY ? stdin.isRaw : undefined;
    if (stdin.isTTY) stdin.setRawMode(true);
    const onInput = (d: Buffer | string) => child.stdin?.write(d);
    stdin.on('data', onInput);
    stdin.resume();
    child.stdin?.on('error', () => {});
    try {
      return await runChild(child, request, tty);
    } finally {
      stdin.off('data', onInput);
      stdin.pause();
      if (wasRaw !== undefined) stdin.setRawMode(wasRaw);
    }
  };

  const run = (argv: string[], stdin?: Readable): Promise<{ code: number; output: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: root, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
      child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code: statusOf(code, signal), output }));
      if (stdin && child.stdin) {
        stdin.once('error', (e) => { child.kill('SIGKILL'); reject(e); });
        child.stdin.on('error', () => {});
        stdin.pipe(child.stdin);
      }
    });

  const ensureOpen = () => {
    if (closed) throw new Error(`session ${opts.label} is closed`);
  };

  return {
    address: opts.label,
    exec(request) {
      if (closed) return Promise.reject(new Error(`session ${opts.label} is closed`));
      const turn = queue.then(() => (request.tty ? execTty(request, request.tty) : execPlain(request)));
      queue = turn.catch(() => {});
      return turn;
    },
    async upload(tarGz, dir, o = {}) {
      ensureOpen();
      const target = resolvePath(root, dir);
      if (o.ifEmpty && !(await missingOrEmpty(target))) {
        tarGz.resume(); // unread: drained here, so whatever produces it finishes
        return false;
      }
      await mkdir(target, { recursive: true });
      const { code, output } = await run(['tar', 'xzf', '-', '-C', target], tarGz);
      if (code !== 0) throw new Error(`cannot extract project content into ${target}: ${output.trim() || `status ${code}`}`);
      return true;
    },
    async download(dir, paths) {
      ensureOpen();
      const out = new PassThrough();
      if (paths.length === 0) {
        out.end(Buffer.alloc(1024)); // an empty tar archive: two zero blocks
        return out;
      }
      const args = paths.map(globQuote).join(' ');
      const cmd = `cd ${shellQuote(resolvePath(root, dir))} && exec tar c --sort=name --ignore-failed-read -- ${args}`;
      const child = spawn('/bin/bash', ['-c', cmd], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.stdout.pipe(out, { end: false });
      child.once('error', (e) => out.destroy(e));
      // End only after tar's status is known, so a failure never looks like a short archive.
      child.once('close', (code, signal) => {
        const status = statusOf(code, signal);
        if (status === 0) out.end();
        else out.destroy(new Error(`cannot fetch ${paths.join(' ')} from ${dir}: ${stderr.trim() || `status ${status}`}`));
      });
      return out;
    },
    onClose() {
      // Nothing to lose: there is no connection.
    },
    // This machine is the runner's: a listener on its loopback is all a forward needs.
    async forwardIn(onConnection) {
      if (closed) throw new Error(`session ${opts.label} is closed`);
      const server = net.createServer(onConnection);
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
      servers.push(server);
      return (server.address() as net.AddressInfo).port;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const server of servers) server.close();
      for (const child of running) killGroup(child);
      const dir = await scratch?.catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** As `ls -A` sees it: a missing directory is empty, a file is not. */
async function missingOrEmpty(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw new Error(`cannot check if ${dir} is empty: ${(err as Error).message}`);
  }
}
