/**
 * The agent's reply stream, split into markers and each script's output:
 * markers found wherever the chunks break, a G marker in the middle of a
 * script's output leaving that output whole, output outside S..E dropped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentParser } from '../../src/remote/ssh-agent.js';

const TOKEN = 'spread-agent-0123456789abcdef';

function parse(stream: string, chunkSize: number): { markers: string[]; output: Map<number, string> } {
  const markers: string[] = [];
  const output = new Map<number, string>();
  const parser = new AgentParser(TOKEN, (m) => markers.push(`${m.kind} ${m.values.join(' ')}`), (n, b) => output.set(n, (output.get(n) ?? '') + b.toString('latin1')));
  const bytes = Buffer.from(stream, 'latin1');
  for (let at = 0; at < bytes.length; at += chunkSize) parser.push(bytes.subarray(at, at + chunkSize));
  return { markers, output };
}

test('markers split anywhere; G in the middle of a script\'s output keeps it whole; stray output is dropped', () => {
  const stream = `${TOKEN} R 41\nnoise before\n${TOKEN} S 1 77\nhalf a li${TOKEN} G 1 78\nne\nspread-agent-0 looks like a token\n${TOKEN} E 1 0\nleft behind\n` +
    `${TOKEN} S 2 80\n${TOKEN} G 2 81\n\xff\xfe bytes\n${TOKEN} E 2 lost\n`;
  for (const size of [1, 2, 3, 7, 16, 1000]) {
    const { markers, output } = parse(stream, size);
    assert.deepEqual(markers, ['R 41', 'S 1 77', 'G 1 78', 'E 1 0', 'S 2 80', 'G 2 81', 'E 2 NaN'], `chunks of ${size}`);
    assert.equal(output.get(1), 'half a line\nspread-agent-0 looks like a token\n', `chunks of ${size}`);
    assert.equal(output.get(2), '\xff\xfe bytes\n', `chunks of ${size}`);
    assert.equal(output.size, 2, `chunks of ${size}`);
  }
});
