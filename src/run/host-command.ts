/**
 * Runs a `$(HOST:...)` command: `/bin/bash -c` in spread's working directory
 * with spread's own environment, stdout without trailing newlines. A failure
 * reports stderr's lines joined by "; ", as the original does.
 */
import { spawn } from 'node:child_process';

export function runHostCommand(command: string, cwd: string = process.cwd()): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-c', command], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(Buffer.concat(out).toString('utf8').replace(/\n+$/, ''));
        return;
      }
      const stderr = Buffer.concat(err).toString('utf8').trim();
      reject(new Error(stderr !== '' ? stderr.split('\n').join('; ') : signal ? `signal: ${signal}` : `exit status ${code}`));
    });
  });
}
