/** Bounded byte output (src/output.ts) and the warn-timeout view of it (src/remote/run-script.ts). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { errorBytes, errorText } from '../src/events.js';
import {
  escapeBytes, joinOutputs, lastLines, outputBytes, outputOf, OutputBuffer, outputSize, outputText, trimOutput,
} from '../src/output.js';
import { WarnTracker } from '../src/remote/run-script.js';

const limits = { headBytes: 10, tailBytes: 20 };

test('small outputs are kept whole, byte for byte', () => {
  const data = randomBytes(30);
  const b = new OutputBuffer(limits);
  b.push(data.subarray(0, 7));
  b.push(data.subarray(7));
  const o = b.output();
  assert.equal(o.elided, 0);
  assert.deepEqual(outputBytes(o), data);
  assert.equal(outputSize(o), 30);
});

test('large outputs keep the head and the tail, count the middle, in any chunking', () => {
  const data = randomBytes(10_000);
  for (const chunk of [1, 3, 19, 20, 21, 4096, 10_000]) {
    const b = new OutputBuffer(limits);
    for (let i = 0; i < data.length; i += chunk) b.push(data.subarray(i, i + chunk));
    const o = b.output();
    assert.deepEqual(o.head, data.subarray(0, 10), `head, chunks of ${chunk}`);
    assert.deepEqual(o.tail, data.subarray(data.length - 20), `tail, chunks of ${chunk}`);
    assert.equal(o.elided, 10_000 - 30);
    assert.equal(b.size, 10_000);
  }
});

test('the marker names the elided bytes and where the full output is', () => {
  const o = outputOf('a'.repeat(10) + 'b'.repeat(100) + 'c'.repeat(20), limits);
  assert.equal(outputBytes(o).toString(), `${'a'.repeat(10)}\n(... 100 bytes elided ...)\n${'c'.repeat(20)}`);
  assert.equal(outputText(o, 'logs/x.log'), `${'a'.repeat(10)}\n(... 100 bytes elided, full output in logs/x.log ...)\n${'c'.repeat(20)}`);
});

test('joined outputs keep every part in order within the same bounds', () => {
  const parts = [outputOf('first'), outputOf('x'.repeat(100), limits), outputOf('last')];
  const o = joinOutputs(parts, '\n', limits);
  assert.equal(o.head.toString(), 'first\nxxxx');
  assert.equal(o.tail.toString(), `${'x'.repeat(15)}\nlast`);
  assert.equal(outputSize(o), 5 + 1 + 100 + 1 + 4);
});

test('trimming works at both ends, across the elision', () => {
  assert.equal(outputText(trimOutput(outputOf('  \n hi \n\n'))), 'hi');
  const o = trimOutput(outputOf(`\n\n${'a'.repeat(50)}  \n`, limits));
  assert.equal(o.head.toString(), 'a'.repeat(8));
  assert.equal(o.tail.toString(), 'a'.repeat(17));
});

test('text for reports: UTF-8 as is, any other byte as \\xNN', () => {
  assert.equal(escapeBytes(Buffer.from('héllo ✓')), 'héllo ✓');
  assert.equal(escapeBytes(Buffer.from([0x61, 0xe9, 0x62, 0xff, 0xfe])), 'a\\xe9b\\xff\\xfe');
  assert.equal(escapeBytes(Buffer.from([0xe2, 0x9c, 0x93, 0xe2, 0x9c])), '✓\\xe2\\x9c', 'a cut sequence');
  assert.equal(escapeBytes(Buffer.from([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80', 'no surrogates');
});

test('errors read as the original: one line as is, several framed, empty as the exit status', () => {
  assert.equal(errorText({ exitCode: 1 }, outputOf('boom')), 'boom');
  assert.equal(errorText({ exitCode: 1 }, outputOf('a\nb')), '\n-----\na\nb\n-----');
  assert.equal(errorText({ exitCode: 3 }, outputOf('')), 'Process exited with status 3');
  assert.equal(errorText({ message: 'went wrong' }, outputOf('a\nb')), 'went wrong');
  assert.deepEqual(errorBytes({ exitCode: 1 }, outputOf(Buffer.from([0xff, 0x0a, 0xfe]))), Buffer.from('\n-----\n\xff\n\xfe\n-----', 'latin1'));
});

test('the last 10 lines, with the count of those above past 13', () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `l${i + 1}`).join('\n');
  assert.equal(lastLines(Buffer.from(lines(13))).toString(), lines(13));
  assert.equal(lastLines(Buffer.from(lines(20))).toString(), `(... 9 lines above ...)\n${lines(20).split('\n').slice(10).join('\n')}`);
});

test('warn-timeout shows what is new since the last warning, as the original', () => {
  const w = new WarnTracker();
  assert.deepEqual(w.since(), Buffer.alloc(0), 'still empty');
  w.push(Buffer.from('first line\nsecond'));
  assert.equal(w.since()?.toString(), 'first line\nsecond');
  assert.equal(w.since()?.toString(), '(...)\nsecond', 'an unfinished line shows again (as in the original)');
  w.push(Buffer.from(' half\nthird\n'));
  assert.equal(w.since()?.toString(), '(...)\nsecond half\nthird');
  assert.equal(w.since(), undefined, 'unchanged');
  for (let i = 0; i < 100_000; i++) w.push(Buffer.from(`line ${i}\n`));
  const shown = w.since()!.toString().split('\n');
  assert.equal(shown[0], '(... 99990 lines above ...)', 'lines counted past the kept window');
  assert.deepEqual(shown.slice(1), Array.from({ length: 10 }, (_, i) => `line ${99_990 + i}`));
});
