/**
 * `-logs=DIR`: every script's full output, byte for byte as it arrived, in
 * one file per job and per level (log-names.ts), each run of a script
 * between a header naming it and a trailer with its time and result. This
 * is the only place output is kept whole: everywhere else it is bounded.
 * Files are written as the chunks arrive (synchronously, so memory stays
 * flat however much a task prints) and truncated the first time a run
 * writes them.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Reporter, ScriptRef, Verb } from '../events.js';
import { outputBytes } from '../output.js';
import { timestamp } from './console.js';
import { logPath } from './log-names.js';

export interface LogsOptions {
  /** The directory (created if missing). */
  readonly dir: string;
  /** Told once per file that cannot be written (the run goes on). */
  readonly warn: (message: string) => void;
}

const TITLE: Record<Verb, string> = { preparing: 'Preparing', executing: 'Executing', restoring: 'Restoring' };

export function logsReporter(o: LogsOptions): Reporter {
  try {
    mkdirSync(o.dir, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create the -logs directory ${o.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const written = new Set<string>();
  const open = new Map<string, number>();
  const broken = new Set<string>();
  const pathOf = (ref: ScriptRef): string => join(o.dir, logPath(ref));

  const write = (path: string, data: string | Uint8Array): void => {
    if (broken.has(path)) return;
    try {
      let fd = open.get(path);
      if (fd === undefined) {
        mkdirSync(dirname(path), { recursive: true });
        fd = openSync(path, written.has(path) ? 'a' : 'w');
        written.add(path);
        open.set(path, fd);
      }
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
    } catch (err) {
      broken.add(path);
      close(path);
      o.warn(`cannot write ${path}: ${(err as Error).message}`);
    }
  };
  const close = (path: string): void => {
    const fd = open.get(path);
    if (fd === undefined) return;
    open.delete(path);
    try {
      closeSync(fd);
    } catch {
      // Already reported by the failing write, if any.
    }
  };
  const line = (e: { readonly at: number }, text: string): string => `== ${timestamp(e.at)} ${text}\n`;

  return {
    'script-start': (e) => {
      const seq = e.sequence ? ` (${e.sequence.index}/${e.sequence.total})` : '';
      write(pathOf(e), line(e, `${TITLE[e.verb]} ${e.context} (${e.label ?? e.machine})${seq}...`));
    },
    'script-output': (e) => write(pathOf(e), e.chunk),
    reboot: (e) => write(pathOf(e), line(e, e.phase === 'requested' ? 'Rebooting as requested...' : 'Reboot is taking a while...')),
    'script-end': (e) => {
      const path = pathOf(e);
      const seconds = (e.durationMs / 1000).toFixed(3);
      const why = !e.error ? '' : 'message' in e.error ? `: ${e.error.message}` : `: exit status ${e.error.exitCode}`;
      write(path, `\n${line(e, e.ok ? `Done in ${seconds}s.` : `Error ${e.verb} ${e.context} after ${seconds}s${why}`)}`);
      close(path);
    },
    'debug-output': (e) => {
      const path = pathOf(e);
      write(path, line(e, `Debug output for ${e.context} (${e.label ?? e.machine}):`));
      write(path, outputBytes(e.output));
      write(path, `\n${e.error ? line(e, 'message' in e.error ? `Error debugging: ${e.error.message}` : `Error debugging: exit status ${e.error.exitCode}`) : ''}`);
      close(path);
    },
    'run-end': () => {
      for (const path of [...open.keys()]) close(path);
    },
  };
}
