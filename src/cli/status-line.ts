/**
 * A status line at the bottom of a terminal: log lines are written above
 * it (the line is cleared, the text written, the line drawn again), it is
 * redrawn every second for the clock, and hidden while a shell has the
 * terminal. Only used when stdout is a terminal.
 */
import type { ProgressState } from '../report/progress.js';
import { formatProgress } from '../report/progress.js';

const CLEAR = '\r\x1b[2K';

export class StatusLine {
  private state: ProgressState | undefined;
  private shown = false;
  private paused = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream, private readonly now: () => number = Date.now) {
    this.timer = setInterval(() => this.draw(), 1000);
    this.timer.unref();
  }

  /** Write log text above the status line. */
  write = (text: string | Uint8Array): void => {
    if (this.shown) this.out.write(CLEAR);
    this.out.write(text);
    this.shown = false;
    this.draw();
  };

  update = (state: ProgressState): void => {
    this.state = state;
    this.draw();
  };

  /** Hide the line while someone else uses the terminal. */
  pause(): void {
    this.erase();
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.draw();
  }

  /** Remove the line for good (the run is over). */
  close(): void {
    clearInterval(this.timer);
    this.erase();
    this.paused = true;
  }

  private erase(): void {
    if (this.shown) this.out.write(CLEAR);
    this.shown = false;
  }

  private draw(): void {
    if (this.paused || !this.state || this.state.total === 0) return;
    this.out.write(`${CLEAR}${formatProgress(this.state, this.now(), this.out.columns ?? 80)}`);
    this.shown = true;
  }
}
