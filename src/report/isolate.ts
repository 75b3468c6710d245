/**
 * A reporter that cannot hurt the run: an exception thrown (or a promise
 * rejected) by one of its handlers is passed to `onError` once, and the
 * reporter is not called again, so the console, the other reports and the
 * run itself go on.
 */
import type { EventType, Reporter } from '../events.js';

export function isolate(reporter: Reporter, onError: (err: Error) => void): Reporter {
  let broken = false;
  const fail = (err: unknown) => {
    if (broken) return;
    broken = true;
    onError(err instanceof Error ? err : new Error(String(err)));
  };
  const safe: Record<string, (e: never) => void | Promise<void>> = {};
  for (const [type, handler] of Object.entries(reporter) as [EventType | 'close', (e: unknown) => unknown][]) {
    if (typeof handler !== 'function') continue;
    safe[type] = (e: never) => {
      if (broken) return;
      try {
        const r = handler.call(reporter, e);
        if (r instanceof Promise) return r.then(() => undefined, fail);
      } catch (err) {
        fail(err);
      }
      return undefined;
    };
  }
  return safe as Reporter;
}
