/**
 * How a run is stopped from outside: SIGINT (Ctrl-C), SIGTERM (what CI
 * systems send on cancel, before SIGKILL after a grace period) and SIGHUP (a
 * closed terminal) all mean the same. The first asks the run to stop (no new
 * job; running scripts, restores and discards go on, reports are written);
 * the second kills running scripts and skips restores, and the run then ends
 * within its bound (STOP_GRACE_MS). A lost stdout (EPIPE: `spread | head`)
 * counts as a first signal.
 */
import { STOP_GRACE_MS } from '../run/runner.js';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopCause = (typeof STOP_SIGNALS)[number] | 'EPIPE';

/** Exit status of a run whose output was cut (EPIPE), as a shell reports a process killed by SIGPIPE. */
export const EPIPE_STATUS = 141;

export class Stopper {
  /** Aborted on the first request: no new jobs. */
  readonly stopping = new AbortController();
  /** Aborted on the second: kill running scripts. */
  readonly abort = new AbortController();
  /** What asked first, if anything did. */
  cause: StopCause | undefined;
  /** The output is gone: a cut run whatever else happens. */
  outputLost = false;
  private requests = 0;
  private readonly handlers = new Map<string, () => void>();

  /** Where the stop messages go (the run's log once it has one). */
  say: (message: string) => void = () => {};

  constructor(readonly graceMs = STOP_GRACE_MS) {}

  request(cause: StopCause): void {
    if (cause === 'EPIPE') {
      // A reader that went away is not a person asking twice: it only ever stops the run once.
      this.outputLost = true;
      if (this.requests > 0) return;
    }
    this.requests++;
    const what = cause === 'SIGINT' ? 'Interrupted' : cause === 'EPIPE' ? 'Output closed' : `Received ${cause}`;
    if (this.requests === 1) {
      this.cause = cause;
      this.say(`${what}: finishing running jobs, restoring and discarding (Ctrl-C again to kill running scripts)...`);
      this.stopping.abort();
    } else if (this.requests === 2) {
      this.say(`${what} again: killing running scripts, discarding machines (spread ends within ${Math.round(this.graceMs / 1000)}s)...`);
      this.abort.abort();
    }
  }

  /** Take over SIGINT, SIGTERM and SIGHUP until `dispose`. */
  listen(): this {
    for (const signal of STOP_SIGNALS) {
      const handler = () => this.request(signal);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    return this;
  }

  dispose(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    this.handlers.clear();
  }
}
