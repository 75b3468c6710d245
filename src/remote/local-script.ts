/**
 * Scripts that run on this host rather than on a machine (spec §4.5 "Local
 * scripts"): adhoc allocate/discard and repack. `/bin/bash -eu -` with the
 * wrapped script on stdin, in the project directory, with spread's own
 * environment plus the given variables, stdout and stderr merged, and the
 * same warn/kill timing as remote scripts. Extra pipes can be passed as
 * fds 3, 4, ... (repack reads the tar on fd 3 and writes the new one on 4).
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Env } from '../project/types.js';
import { cleanOutput, readMarker } from './markers.js';
import { startScriptTimers, WarnTracker } from './run-script.js';
import { renderLocalScript } from './script.js';

export interface LocalScriptOptions {
  readonly script: string;
  readonly cwd: string;
  readonly env: Env;
  readonly warnMs: number;
  readonly killMs: number;
  readonly onWarn?: (output: Buffer | undefined) => void;
  /** Stopping (Ctrl-C) kills the script; its output then ends with `<interrupted>`. */
  readonly signal?: AbortSignal;
  /** Environment the script starts from. @default this process's environment */
  readonly hostEnv?: NodeJS.ProcessEnv;
  /** How many extra pipes to open as fds 3, 4, ...; `onSpawn` gets their streams. */
  readonly extraFds?: number;
  readonly onSpawn?: (fds: (Readable | Writable)[]) => void;
}

export type LocalScriptEnd =
  | { readonly kind: 'ok'; readonly output: string }
  | { readonly kind: 'error'; readonly message: string; readonly output: string }
  | { readonly kind: 'fatal'; readonly message: string; readonly output: string }
  | { readonly kind: 'failed'; readonly exitCode: number; readonly output: string };

export function runLocalScript(o: LocalScriptOptions): Promise<LocalScriptEnd> {
  const extra = o.extraFds ?? 0;
  // The outer bash merges stderr into stdout at the fd, so the output keeps its order.
  const child = spawn('/bin/bash', ['-c', 'exec /bin/bash -eu - 2>&1'], {
    cwd: o.cwd,
    env: o.hostEnv ?? process.env,
    stdio: ['pipe', 'pipe', 'ignore', ...Array.from({ length: extra }, () => 'pipe' as const)],
    detached: true,
  });
  o.onSpawn?.(child.stdio.slice(3) as (Readable | Writable)[]);
  let output = '';
  const warnings = new WarnTracker();
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    output += s;
    warnings.push(Buffer.from(s));
  });
  child.stdin!.on('error', () => {});
  child.stdin!.end(renderLocalScript({ script: o.script, env: o.env }));

  let note = '';
  const killGroup = (why: string) => {
    note ||= why;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const onAbort = () => killGroup('<interrupted>');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const onWarn = o.onWarn && (() => o.onWarn!(warnings.since()));
  const stopTimers = startScriptTimers({ warnMs: o.warnMs, killMs: o.killMs, onWarn, onKill: () => killGroup('<kill-timeout reached>') });

  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      stopTimers();
      o.signal?.removeEventListener('abort', onAbort);
      const exitCode = code ?? (signal ? 128 + 9 : 1);
      if (note) {
        resolve({ kind: 'failed', exitCode, output: `${cleanOutput(output)}\n${note}`.trim() });
        return;
      }
      const text = cleanOutput(output);
      const marker = readMarker(exitCode, text);
      if (marker?.name === 'ERROR') resolve({ kind: 'error', message: marker.value, output: text });
      else if (marker?.name === 'FATAL') resolve({ kind: 'fatal', message: marker.value, output: text });
      else if (exitCode === 0) resolve({ kind: 'ok', output: text });
      else resolve({ kind: 'failed', exitCode, output: text });
    });
  });
}
