/** Busy time of the whole machine so far (all CPUs, ms), from /proc/stat: what a bench's processes and everything they start cost together. */
import { readFileSync } from 'node:fs';

export function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 10;
}
