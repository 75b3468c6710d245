/**
 * One script on one session, with the original's timing rules (spec §5.4):
 * a warning every warn-timeout showing the output produced since the last
 * one, and a kill at kill-timeout. The result reads the marker protocol.
 */
import type { Output } from '../output.js';
import { countNewlines, joinOutputs, lastLines, outputOf, OutputBuffer, trimBytes } from '../output.js';
import { cleanBytes, readMarker } from './markers.js';
import type { Session } from './session.js';

export type ScriptEnd =
  | { readonly kind: 'ok'; readonly output: Output }
  /** REBOOT [key]: the caller reboots the machine and runs the script again. */
  | { readonly kind: 'reboot'; readonly key: string; readonly output: Output }
  /** ERROR msg, or a script whose end is unknown (its agent died): fail with just the message. */
  | { readonly kind: 'error'; readonly message: string; readonly output: Output }
  /** Non-zero exit, or killed (`stopped` says why). */
  | { readonly kind: 'failed'; readonly exitCode: number; readonly output: Output; readonly stopped?: 'kill-timeout' | 'interrupted' };

export interface RunScriptOptions {
  readonly session: Session;
  readonly script: string;
  readonly warnMs: number;
  readonly killMs: number;
  /** Called at each warn-timeout: the new output, empty if still empty, `undefined` if unchanged. */
  readonly onWarn?: (output: Buffer | undefined) => void;
  readonly onOutput?: (chunk: Buffer) => void;
  /** Aborting kills the script (a second Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** Longer than a timer can wait: as good as no timeout. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const timerFits = (ms: number): boolean => Number.isFinite(ms) && ms <= MAX_TIMER_MS;

/**
 * The warn and kill clocks of a running script (spec §5.4), for remote and
 * local scripts alike: `onWarn` every warnMs, `onKill` once at killMs.
 * Returns the function that stops both.
 */
export function startScriptTimers(o: {
  readonly warnMs: number;
  readonly killMs: number;
  readonly onWarn?: (() => void) | undefined;
  readonly onKill: () => void;
}): () => void {
  const kill = timerFits(o.killMs) ? setTimeout(o.onKill, o.killMs) : undefined;
  const warn = o.onWarn && timerFits(o.warnMs) ? setInterval(o.onWarn, o.warnMs) : undefined;
  return () => {
    clearTimeout(kill);
    clearInterval(warn);
  };
}

export async function runScript(o: RunScriptOptions): Promise<ScriptEnd> {
  let stopped: 'kill-timeout' | 'interrupted' | undefined;
  const kill = new AbortController();
  const stop = (why: 'kill-timeout' | 'interrupted') => {
    stopped ??= why;
    kill.abort();
  };
  const onInterrupt = () => stop('interrupted');
  if (o.signal?.aborted) onInterrupt();
  o.signal?.addEventListener('abort', onInterrupt, { once: true });
  const warnings = new WarnTracker();
  const onWarn = o.onWarn && (() => o.onWarn!(warnings.since()));
  const stopTimers = startScriptTimers({ warnMs: o.warnMs, killMs: o.killMs, onWarn, onKill: () => stop('kill-timeout') });
  let result;
  try {
    result = await o.session.exec({
      script: o.script,
      signal: kill.signal,
      onOutput: (chunk) => {
        warnings.push(chunk);
        o.onOutput?.(chunk);
      },
    });
  } finally {
    stopTimers();
    o.signal?.removeEventListener('abort', onInterrupt);
  }
  if (stopped) {
    const note = stopped === 'kill-timeout' ? '<kill-timeout reached>' : '<interrupted>';
    return { kind: 'failed', exitCode: result.exitCode, output: cleanBytes(joinOutputs([cleanBytes(result.output), outputOf(note)])), stopped };
  }
  if (result.broken !== undefined) return { kind: 'error', message: result.broken, output: cleanBytes(result.output) };
  return endOf(result.exitCode, result.output);
}

/** Classify a finished script from its exit status and raw output. */
export function endOf(exitCode: number, raw: Output): ScriptEnd {
  const output = cleanBytes(raw);
  const marker = readMarker(exitCode, output);
  if (marker?.name === 'REBOOT') return { kind: 'reboot', key: marker.value, output };
  if (marker?.name === 'ERROR') return { kind: 'error', message: marker.value, output };
  if (exitCode === 0) return { kind: 'ok', output };
  return { kind: 'failed', exitCode, output };
}

const WINDOW_BYTES = 64 * 1024;
const UNCHANGED = Buffer.from('(...)');

/**
 * The output since the previous warning, as the original shows it: all of
 * it the first time, then `(...)` and the lines from the last incomplete
 * one on, cut to the last 10 lines. Keeps only the last 64 KiB (and counts
 * lines), so a script printing gigabytes costs nothing more.
 */
export class WarnTracker {
  private readonly window = new OutputBuffer({ headBytes: 0, tailBytes: WINDOW_BYTES });
  private size = 0;
  private newlines = 0;
  private lastNewline = -1;
  // At the previous warning: the last newline before it, and how many newlines there were.
  private newlineBefore = -1;
  private newlinesBefore = 0;

  push(chunk: Buffer): void {
    this.window.push(chunk);
    const nl = chunk.lastIndexOf(0x0a);
    if (nl >= 0) {
      this.lastNewline = this.size + nl;
      this.newlines += countNewlines(chunk);
    }
    this.size += chunk.length;
  }

  since(): Buffer | undefined {
    const continued = this.newlineBefore > 1;
    const start = continued ? this.newlineBefore : 0;
    const linesBefore = continued ? this.newlinesBefore - 1 : 0;
    this.newlineBefore = this.lastNewline;
    this.newlinesBefore = this.newlines;
    const window = this.window.output();
    const kept = window.elided === 0 ? window.head : window.tail;
    const keptStart = this.size - kept.length;
    const section = start >= keptStart ? kept.subarray(start - keptStart) : kept;
    const dropped = this.newlines - linesBefore - countNewlines(section);
    const text = trimBytes(continued ? Buffer.concat([UNCHANGED, section]) : section);
    if (text.equals(UNCHANGED)) return undefined;
    return lastLines(text, dropped + countNewlines(text));
  }
}
