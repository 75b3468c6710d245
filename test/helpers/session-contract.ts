/** Checks of the Session contract shared by every implementation (SSH, local). */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Session } from '../../src/remote/session.js';
import { text } from './output.js';

/** A tty run gets a PTY of the requested size, the given input, and shows what it prints. */
export async function checkTty(session: Session): Promise<void> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let shown = '';
  stdout.on('data', (d: Buffer) => { shown += d.toString(); });
  const run = session.exec({ script: 'tty; stty size; read -r line; echo "got:$line"; exit 4', tty: { stdin, stdout, rows: 33, columns: 101 } });
  stdin.write('hello\n');
  const r = await run;
  assert.equal(r.exitCode, 4);
  assert.match(text(r.output), /\/dev\/pts\/\d+/);
  assert.match(text(r.output), /33 101/);
  assert.match(text(r.output), /got:hello/);
  assert.equal(shown, text(r.output));
}
