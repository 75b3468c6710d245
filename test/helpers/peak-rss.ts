/** Running spread while watching its memory: the peak RSS (VmHWM) polled from /proc until it exits. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { baseEnv, SPREAD_BIN } from './fixture.js';
import type { SpreadBytesResult } from './fixture.js';

/** The peak is the high-water mark the kernel keeps, read every 20 ms: exact but for the last few ms. */
export function runSpreadWithPeak(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<SpreadBytesResult & { peakKb: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SPREAD_BIN, ...args], { cwd, env: { ...baseEnv(), ...env } });
    const out: Buffer[] = [];
    let err = '';
    let peakKb = 0;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch { /* gone */ }
    }, 20);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err, peakKb });
    });
  });
}
