/** Checks of the Session contract shared by every implementation (SSH, local). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Session } from '../../src/remote/session.js';
import { text } from './output.js';
import { packTarGz } from './tar-fixtures.js';

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

/**
 * upload with ifEmpty: extracts into a missing or empty directory only; a
 * directory holding anything, or a file in its place, is left as it was and
 * the upload resolves false, even when the content is larger than any pipe
 * or window in between, and the session goes on working. `base` is an
 * absolute directory the session may use (it is created).
 */
export async function checkUploadIfEmpty(session: Session, base: string): Promise<void> {
  const sh = async (script: string) => text((await session.exec({ script })).output);
  await sh(`rm -rf '${base}' && mkdir -p '${base}/empty' && echo file > '${base}/file'`);
  const small = () => packTarGz(new Map([['sub/hello.txt', Buffer.from('hello\n')]]));
  assert.equal(await session.upload(small(), `${base}/new/proj`, { ifEmpty: true }), true, 'a missing directory is created');
  assert.equal(await session.upload(small(), `${base}/empty`, { ifEmpty: true }), true, 'an empty one is filled');
  assert.equal(await sh(`cat '${base}/new/proj/sub/hello.txt' '${base}/empty/sub/hello.txt'`), 'hello\nhello\n');
  // Random bytes do not compress: megabytes the other side never reads.
  const big = packTarGz(new Map([['big.bin', randomBytes(4 << 20)], ['sub/hello.txt', Buffer.from('changed\n')]]));
  assert.equal(await session.upload(big, `${base}/new/proj`, { ifEmpty: true }), false, 'a directory holding something is left alone');
  assert.equal(await session.upload(small(), `${base}/file`, { ifEmpty: true }), false, 'so is a file in its place');
  assert.equal(await sh(`cat '${base}/new/proj/sub/hello.txt' '${base}/file'; ls '${base}/new/proj'`), 'hello\nfile\nsub\n');
  assert.equal(await session.upload(small(), `${base}/new/proj`), true, 'without ifEmpty it extracts over what is there');
  await sh(`rm -rf '${base}'`);
}
