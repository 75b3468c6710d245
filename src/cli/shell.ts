/**
 * Interactive shells for -debug, -shell, -shell-before and -shell-after: a
 * real PTY on the machine (over SSH, or a local PTY for the local backend)
 * in the script's directory with the script's exact environment and the
 * original's prompt. One shell at a time owns the terminal; log lines from
 * other workers wait until it closes, so they never garble the session.
 */
import type { OpenShell } from '../run/level-script.js';
import { renderShell } from '../remote/script.js';

/** Holds console output while a shell has the terminal. */
export class TerminalGate {
  private held: (string | Uint8Array)[] | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly out: (text: string | Uint8Array) => void,
    /** Told when a shell takes the terminal and when it gives it back (a status line hides meanwhile). */
    private readonly hooks: { hold?: () => void; release?: () => void } = {},
  ) {}

  write = (text: string | Uint8Array): void => {
    if (this.held) this.held.push(text);
    else this.out(text);
  };

  /** Run `use` with the terminal to itself; waits for any shell before it. */
  exclusive<T>(use: () => Promise<T>): Promise<T> {
    const turn = this.queue.then(async () => {
      this.held = [];
      this.hooks.hold?.();
      try {
        return await use();
      } finally {
        const held = this.held;
        this.held = undefined;
        this.hooks.release?.();
        for (const text of held) this.out(text);
      }
    });
    this.queue = turn.then(() => undefined, () => undefined);
    return turn;
  }
}

export function interactiveShell(gate: TerminalGate, stdin: NodeJS.ReadStream, stdout: NodeJS.WriteStream): OpenShell {
  return ({ link, dir, env, sync }) =>
    gate.exclusive(async () => {
      await link.session.exec({
        script: renderShell({ dir, env, sudo: link.sudo, ...(sync ? { sync } : {}) }),
        tty: { stdin, stdout, columns: stdout.columns ?? 80, rows: stdout.rows ?? 24 },
      });
    });
}
