/**
 * Runs `$(HOST:...)` commands on this host in spread's working directory with
 * spread's own environment; stdout without trailing newlines, and on failure
 * stderr's lines joined by "; " (as the original reports them).
 *
 * Why one long-lived bash rather than a spawn per command: Node forks its
 * whole (large) heap for every spawn, so 67 commands in a snapd-sized project
 * cost half a second; one bash, started at the first command, forks cheaply
 * for all the others (and a project without commands starts none).
 * Each command still runs in a fresh subshell with stdin from /dev/null and
 * no trace of the driver (its variables are unset, its arguments shifted).
 *
 * The commands' output (secrets, often: keys and tokens fetched this way)
 * goes through a private directory (mode 0700, from mkdtemp) that exists
 * only once a command runs: each file is removed as soon as it is read, and
 * the directory when the shell closes, when spread exits, and, should spread
 * die without exiting (SIGKILL), by the driver itself when its stdin closes.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DRIVER = `
IFS= read -r -d '' __spread_dir || exit 0
__spread_cleanup() { kill $(jobs -p) 2>/dev/null; rm -rf "$__spread_dir"; }
trap '__spread_cleanup; exit 130' INT TERM HUP
while IFS= read -r -d '' __spread_id && IFS= read -r -d '' __spread_cmd; do
  {
    ( set -- "$__spread_cmd"; unset __spread_cmd __spread_id __spread_dir; trap - INT TERM HUP; eval "shift; $1" ) </dev/null >"$__spread_dir/$__spread_id.out" 2>"$__spread_dir/$__spread_id.err"
    printf '%s %s\\n' "$__spread_id" "$?"
  } &
done
__spread_cleanup
`;

/** Directories of live shells, removed if spread exits without closing them. */
const liveDirs = new Set<string>();
let exitHook = false;
const removeLiveDirs = (): void => {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
};

type Pending = { resolve: (out: string) => void; reject: (err: Error) => void };

export class HostShell {
  /** The driver, started at the first command. */
  private child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  /** The private output directory, made at the first command. */
  private dir: string | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private buffered = '';
  private closed = false;

  constructor(private readonly cwd: string = process.cwd()) {}

  private start(): ChildProcessByStdio<Writable, Readable, null> {
    const child = spawn('/bin/bash', ['-c', DRIVER], { cwd: this.cwd, stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.onData(chunk));
    child.on('close', () => this.fail(new Error('the host shell exited')));
    child.on('error', (err) => this.fail(err));
    this.dir = mkdtempSync(join(tmpdir(), 'spread-host-'));
    liveDirs.add(this.dir);
    if (!exitHook) process.on('exit', removeLiveDirs);
    exitHook = true;
    child.stdin.write(`${this.dir}\0`);
    return child;
  }

  run(command: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('the host shell is closed'));
    this.child ??= this.start();
    const id = this.nextId++;
    this.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child!.stdin.write(`${id}\0${command}\0`);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.child?.stdin.end();
    this.removeDir();
  }

  private removeDir(): void {
    if (this.dir === undefined) return;
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const [id, rc] = this.buffered.slice(0, nl).split(' ').map(Number) as [number, number];
      this.buffered = this.buffered.slice(nl + 1);
      this.finish(id, rc);
    }
  }

  private finish(id: number, rc: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    const file = (ext: string): string => join(this.dir!, `${id}.${ext}`);
    const out = readFileSync(file('out'), 'utf8');
    const stderr = rc === 0 ? '' : readFileSync(file('err'), 'utf8').trim();
    rmSync(file('out'), { force: true });
    rmSync(file('err'), { force: true });
    if (rc === 0) {
      p.resolve(out.replace(/\n+$/, ''));
    } else {
      p.reject(new Error(stderr !== '' ? stderr.split('\n').join('; ') : `exit status ${rc}`));
    }
    if (this.pending.size === 0) this.unref();
  }

  private fail(err: Error): void {
    this.closed = true;
    this.removeDir();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  // The shell must not keep spread alive while nothing is pending.
  private ref(): void {
    this.child?.ref();
    (this.child?.stdout as unknown as { ref(): void } | undefined)?.ref();
  }

  private unref(): void {
    this.child?.unref();
    (this.child?.stdout as unknown as { unref(): void } | undefined)?.unref();
    (this.child?.stdin as unknown as { unref(): void } | undefined)?.unref();
  }
}

let shared: HostShell | undefined;

/** The shared host shell (cwd = spread's); its bash starts at the first command. */
export function startHostShell(cwd: string = process.cwd()): HostShell {
  shared ??= new HostShell(cwd);
  return shared;
}

/** Run one command in a fresh `/bin/bash -c` (for callers outside the shared shell's cwd). */
export function runHostCommand(command: string, cwd: string = process.cwd()): Promise<string> {
  if (cwd === process.cwd()) return startHostShell(cwd).run(command);
  const shell = new HostShell(cwd);
  return shell.run(command).finally(() => shell.close());
}
