/** What the remote agent leaves on a test machine, and waiting on conditions there. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SshdTarget } from './sshd.js';

/** Polls `read` until `check` holds (a condition, not a delay); fails with the last value after 30 s. */
export async function waitFor<T>(what: string, read: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** `pid sid cmdline` of every process named like the agent's. */
export const agentProcesses = async (t: SshdTarget): Promise<string[]> =>
  (await t.run(`for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null) || continue; ` +
    `case "$c" in spread-agent*) echo "\${p#/proc/} $(cut -d' ' -f6 $p/stat) $c";; esac; done`)).split('\n').filter(Boolean);

/** Agent processes and agent files in /tmp, one per line; '' when there are none. */
export const leftovers = async (t: SshdTarget): Promise<string> => {
  const procs = await agentProcesses(t);
  const files = (await t.run('ls -d /tmp/spread-agent* 2>/dev/null || true')).trim();
  return [...procs, files].filter(Boolean).join('\n');
};

/** Waits until the machine has no agent process or file left (spread has exited: its sessions are closed). */
export const assertNothingLeft = async (t: SshdTarget): Promise<void> => {
  await waitFor(`agent leftovers on ${t.address}`, () => leftovers(t), (l) => l === '');
};
