import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { localSession } from '../../src/remote/local-session.js';
import type { Session } from '../../src/remote/session.js';
import { packTarGz, readTar, sampleFiles, sha256 } from '../helpers/tar-fixtures.js';
import { checkTty, checkUploadIfEmpty } from '../helpers/session-contract.js';
import { plain, text } from '../helpers/output.js';
import { outputBytes } from '../../src/output.js';

const waitForOutput = (text: string) => {
  let seen = '';
  let wake: () => void = () => {};
  const shown = new Promise<void>((r) => { wake = r; });
  return { shown, onOutput: (chunk: Buffer) => { seen += chunk.toString(); if (seen.includes(text)) wake(); } };
};

// Gone, or a zombie waiting for its reaper: either way no longer running.
const isRunning = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
};

describe('local session', () => {
  let root: string;
  let s: Session;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'local-session-test-'));
    s = localSession({ root, label: 'local worker 1' });
  });
  after(async () => {
    await s.close();
    await rm(root, { recursive: true, force: true });
  });

  test('output, exit status, start directory, stdin from /dev/null', async () => {
    assert.equal(s.address, 'local worker 1');
    assert.deepEqual(plain(await s.exec({ script: 'echo hello; pwd; read -r x; echo "read=$?"; exit 5' })),
      { exitCode: 5, output: `hello\n${root}\nread=1\n`, killed: false });
  });

  test('stdout and stderr merged in order', async () => {
    const chunks: string[] = [];
    const r = await s.exec({ script: 'for i in $(seq 1 300); do echo out$i; echo err$i >&2; done', onOutput: (c) => chunks.push(c.toString()) });
    const expected = Array.from({ length: 300 }, (_, i) => `out${i + 1}\nerr${i + 1}\n`).join('');
    assert.equal(text(r.output), expected);
    assert.equal(chunks.join(''), expected);
  });

  test('a 100 KB script and binary-ish output', async () => {
    const payload = 'y'.repeat(99) + '\n';
    const r = await s.exec({ script: `cat <<'EOF' | sha256sum\n${payload.repeat(1000)}EOF\n` });
    assert.equal(text(r.output), `${sha256(payload.repeat(1000))}  -\n`);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const bin = await s.exec({ script: `for i in $(seq 1 400); do printf "$(printf '\\\\%03o' {0..255})"; done` });
    assert.deepEqual(outputBytes(bin.output), Buffer.concat(Array(400).fill(bytes)), 'the exact bytes');
  });

  test('aborting kills the whole process group', async () => {
    const ac = new AbortController();
    const w = waitForOutput('started');
    const run = s.exec({ script: `sleep 1000 & echo $! > bg.pid; echo started; sleep 1000`, signal: ac.signal, onOutput: w.onOutput });
    await w.shown;
    ac.abort();
    const r = await run;
    assert.deepEqual(plain(r), { exitCode: 137, output: 'started\n', killed: true });
    const pid = Number(await readFile(join(root, 'bg.pid'), 'utf8'));
    for (let i = 0; i < 50 && isRunning(pid); i++) await new Promise((res) => setTimeout(res, 50));
    assert.equal(isRunning(pid), false);
    assert.equal(text((await s.exec({ script: 'echo next' })).output), 'next\n');
  });

  test('a killed script whose output is held by a daemon does not hang', async () => {
    const quick = localSession({ root, label: 'quick', killGraceMs: 200 });
    const ac = new AbortController();
    const w = waitForOutput('started');
    // Announce only once the daemon is in its own session (it has exec'd sleep), out of the group's reach.
    const script = 'setsid sleep 1000 & p=$!; echo $p > daemon.pid; until [ "$(cat /proc/$p/comm)" = sleep ]; do :; done; echo started; sleep 1000';
    const run = quick.exec({ script, signal: ac.signal, onOutput: w.onOutput });
    await w.shown;
    ac.abort();
    assert.equal((await run).killed, true);
    const daemon = Number(await readFile(join(root, 'daemon.pid'), 'utf8'));
    assert.equal(isRunning(daemon), true, 'the daemon outlived the kill and still holds the output pipe');
    process.kill(daemon, 'SIGKILL');
    assert.equal(text((await quick.exec({ script: 'echo alive' })).output), 'alive\n');
    await quick.close();
  });

  test('scripts of a session run one at a time', async () => {
    await Promise.all([
      s.exec({ script: 'echo a >> order; sleep 0.3; echo b >> order' }),
      s.exec({ script: 'echo c >> order' }),
    ]);
    assert.equal(await readFile(join(root, 'order'), 'utf8'), 'a\nb\nc\n');
  });

  test('upload then download: bytes equal, globs, relative dirs, missing paths ignored', async () => {
    const files = sampleFiles();
    await s.upload(packTarGz(files), 'proj dir');
    assert.ok(existsSync(join(root, 'proj dir', 'sub', 'dir', 'deep.txt')));
    const got = await readTar(await s.download(join(root, 'proj dir'), ['*.bin', 'a b.txt', 'sub/dir', 'missing']));
    assert.deepEqual([...got.keys()].sort(), ['a b.txt', 'data.bin', 'other.bin', 'sub/dir/deep.txt']);
    for (const [name, data] of got) assert.ok(data.equals(files.get(name)!), name);
    assert.equal((await readTar(await s.download('proj dir', []))).size, 0);
    await assert.rejects(readTar(await s.download('no/such/dir', ['x'])), /cannot fetch x from no\/such\/dir/);
    await assert.rejects(s.upload(PassThrough.from(['not gzip']), 'bad'), /cannot extract project content/);
  });

  test('upload with ifEmpty: only into a missing or empty directory', () => checkUploadIfEmpty(s, join(root, 'if-empty')));

  test('tty: the script gets a PTY of the requested size and the given input', () => checkTty(s));

  test('close kills what runs; the session then refuses work', async () => {
    const t = localSession({ root, label: 'closing' });
    const w = waitForOutput('started');
    const run = t.exec({ script: 'echo started; sleep 1000', onOutput: w.onOutput });
    await w.shown;
    await t.close();
    assert.equal((await run).exitCode, 137);
    await assert.rejects(t.exec({ script: 'true' }), /closed/);
  });
});
