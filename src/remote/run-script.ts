/**
 * One script on one session, with the original's timing rules (spec §5.4):
 * a warning every warn-timeout showing the output produced since the last
 * one, and a kill at kill-timeout. The result reads the marker protocol.
 */
import { cleanOutput, readMarker } from './markers.js';
import type { Session } from './session.js';

export type ScriptEnd =
  | { readonly kind: 'ok'; readonly output: string }
  /** REBOOT [key]: the caller reboots the machine and runs the script again. */
  | { readonly kind: 'reboot'; readonly key: string; readonly output: string }
  /** ERROR msg: fail with just the message. */
  | { readonly kind: 'error'; readonly message: string; readonly output: string }
  /** Non-zero exit, or killed (`stopped` says why). */
  | { readonly kind: 'failed'; readonly exitCode: number; readonly output: string; readonly stopped?: 'kill-timeout' | 'interrupted' };

export interface RunScriptOptions {
  readonly session: Session;
  readonly script: string;
  readonly warnMs: number;
  readonly killMs: number;
  /** Called at each warn-timeout: the new output, `''` if still empty, `undefined` if unchanged. */
  readonly onWarn?: (output: string | undefined) => void;
  readonly onOutput?: (chunk: string) => void;
  /** Aborting kills the script (a second Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** Longer than a timer can wait: as good as no timeout. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const timerFits = (ms: number): boolean => Number.isFinite(ms) && ms <= MAX_TIMER_MS;

/**
 * The warn and kill clocks of a running script (spec §5.4), for remote and
 * local scripts alike: `onWarn` every warnMs with the output since the last
 * warning, `onKill` once at killMs. Returns the function that stops both.
 */
export function startScriptTimers(o: {
  readonly warnMs: number;
  readonly killMs: number;
  readonly output: () => string;
  readonly onWarn?: ((output: string | undefined) => void) | undefined;
  readonly onKill: () => void;
}): () => void {
  const kill = timerFits(o.killMs) ? setTimeout(o.onKill, o.killMs) : undefined;
  const warnings = new WarnTracker();
  const warn = o.onWarn && timerFits(o.warnMs) ? setInterval(() => o.onWarn!(warnings.since(o.output())), o.warnMs) : undefined;
  return () => {
    clearTimeout(kill);
    clearInterval(warn);
  };
}

export async function runScript(o: RunScriptOptions): Promise<ScriptEnd> {
  let output = '';
  let stopped: 'kill-timeout' | 'interrupted' | undefined;
  const kill = new AbortController();
  const stop = (why: 'kill-timeout' | 'interrupted') => {
    stopped ??= why;
    kill.abort();
  };
  const onInterrupt = () => stop('interrupted');
  if (o.signal?.aborted) onInterrupt();
  o.signal?.addEventListener('abort', onInterrupt, { once: true });
  const stopTimers = startScriptTimers({ warnMs: o.warnMs, killMs: o.killMs, output: () => output, onWarn: o.onWarn, onKill: () => stop('kill-timeout') });
  let exitCode: number;
  try {
    const result = await o.session.exec({
      script: o.script,
      signal: kill.signal,
      onOutput: (chunk) => {
        output += chunk;
        o.onOutput?.(chunk);
      },
    });
    output = result.output;
    exitCode = result.exitCode;
  } finally {
    stopTimers();
    o.signal?.removeEventListener('abort', onInterrupt);
  }
  if (stopped) {
    const note = stopped === 'kill-timeout' ? '<kill-timeout reached>' : '<interrupted>';
    return { kind: 'failed', exitCode, output: `${cleanOutput(output)}\n${note}`.trim(), stopped };
  }
  return endOf(exitCode, output);
}

/** Classify a finished script from its exit status and raw output. */
export function endOf(exitCode: number, raw: string): ScriptEnd {
  const output = cleanOutput(raw);
  const marker = readMarker(exitCode, output);
  if (marker?.name === 'REBOOT') return { kind: 'reboot', key: marker.value, output };
  if (marker?.name === 'ERROR') return { kind: 'error', message: marker.value, output };
  if (exitCode === 0) return { kind: 'ok', output };
  return { kind: 'failed', exitCode, output };
}


/**
 * The output since the previous warning, as the original shows it: all of
 * it the first time, then `(...)` and the lines from the last incomplete
 * one on, cut to the last 10 lines.
 */
export class WarnTracker {
  private offset = 0;

  since(output: string): string | undefined {
    let section = output;
    for (let i = this.offset - 1; i > 1; i--) {
      if (output[i] === '\n') {
        section = `(...)${output.slice(i)}`;
        break;
      }
    }
    this.offset = output.length;
    section = section.trim();
    if (section === '(...)') return undefined;
    return tail(section);
  }
}

/** The last 10 lines, noting how many are above when there are more than 13. */
export function tail(text: string): string {
  const newlines: number[] = [];
  for (let i = text.length - 1; i >= 0 && newlines.length < 13; i--) if (text[i] === '\n') newlines.push(i);
  if (newlines.length < 13) return text;
  const total = text.split('\n').length - 1;
  return `(... ${total - 10} lines above ...)\n${text.slice(newlines[9]! + 1)}`;
}
