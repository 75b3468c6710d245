/**
 * Driving spread through a real terminal: tmux runs it, tests read the
 * screen and type into it (shells opened by -debug, -shell...).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SPREAD_BIN } from './fixture.js';

/** For `test(name, { skip: tmuxSkip }, ...)`: a reason off CI, never on CI. */
export const tmuxSkip = ((): string | false => {
  try {
    execFileSync('tmux', ['-V']);
    return false;
  } catch {
    return process.env['CI'] === 'true' ? false : 'tmux is not installed';
  }
})();

export const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
export const screen = (session: string): string => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session);

export async function waitScreen(session: string, re: RegExp, what: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = screen(session);
    if (re.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Start spread in a tmux session; output also goes to out.log, the exit status to status. */
export function startInTmux(session: string, dir: string, args: string[], env: NodeJS.ProcessEnv): void {
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join('\n');
  writeFileSync(join(dir, 'run.sh'), `${exports}\ncd '${dir}'\n'${process.execPath}' '${SPREAD_BIN}' ${args.join(' ')} 2>&1 | tee out.log\necho "\${PIPESTATUS[0]}" > status\nsleep 600\n`);
  tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', `bash '${join(dir, 'run.sh')}'`);
}

/** Wait for the spread started by startInTmux to end: its exit status and output. */
export async function finished(dir: string): Promise<{ status: number; out: string }> {
  const deadline = Date.now() + 30_000;
  while (!existsSync(join(dir, 'status'))) {
    if (Date.now() > deadline) throw new Error('spread did not finish');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 100));
  return { status: Number(readFileSync(join(dir, 'status'), 'utf8').trim()), out: readFileSync(join(dir, 'out.log'), 'utf8') };
}

export function killSession(session: string): void {
  try {
    tmux('kill-session', '-t', session);
  } catch {
    // Gone already.
  }
}
