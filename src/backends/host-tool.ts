/**
 * Running an engine's command-line client (docker, podman, lxc, flock) from a
 * backend: argv in, exit status and both outputs back, never a shell. A
 * missing program is its own error type, because backends turn it into a
 * one-line "install it" message instead of a spawn trace.
 */
import { spawn } from 'node:child_process';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ToolOptions {
  /** Written to the program's stdin, which is then closed (stdin is /dev/null otherwise). */
  readonly input?: string;
  /** Aborting kills the program (SIGKILL) and rejects. */
  readonly signal?: AbortSignal;
  /** Kill the program after this long and reject. @default 120_000 */
  readonly timeoutMs?: number;
}

/** The program itself is not there (ENOENT). */
export class ToolMissingError extends Error {
  override readonly name = 'ToolMissingError';
  constructor(readonly program: string) {
    super(`${program}: command not found`);
  }
}

/** Split an `engine:` setting into argv: a command with optional leading arguments. */
export const splitCommand = (text: string, fallback: string): string[] => {
  const words = text.trim().split(/\s+/).filter((w) => w !== '');
  return words.length > 0 ? words : [fallback];
};

export function runTool(argv: readonly string[], o: ToolOptions = {}): Promise<ToolResult> {
  const [program, ...args] = argv;
  if (program === undefined) return Promise.reject(new Error('runTool: empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let failure: Error | undefined;
    const stop = (why: Error) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const onAbort = () => stop(new Error(`${program} ${args[0] ?? ''} interrupted`));
    const timer = setTimeout(() => stop(new Error(`${program} ${args[0] ?? ''} timed out`)), o.timeoutMs ?? 120_000);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted) onAbort();
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.stdin?.on('error', () => {}); // the program may exit without reading it
    child.stdin?.end(o.input);
    child.on('error', (e: NodeJS.ErrnoException) => {
      failure ??= e.code === 'ENOENT' ? new ToolMissingError(program) : e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      resolve({ code: code ?? (signal ? 128 + 9 : 255), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/** The last non-empty line of a program's complaint, for one-line errors. */
export const lastLine = (text: string): string =>
  text.trim().split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? '';

/** `Error: x` (Go CLIs) without the prefix. */
export const toolError = (r: ToolResult): string =>
  (lastLine(r.stderr) || lastLine(r.stdout) || `exit status ${r.code}`).replace(/^Error:\s*/i, '');

/** The socket or host a Go client failed to dial (`dial unix /x.sock: connect: ...`), as a URL. */
export const serverAddressIn = (stderr: string): string | undefined => {
  const m = /dial (unix|tcp) (\S+?): connect/.exec(stderr);
  return m ? `${m[1]}://${m[2]}` : undefined;
};
