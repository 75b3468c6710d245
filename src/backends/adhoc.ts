/**
 * adhoc: machines obtained by the project's own `allocate` script, which
 * reports the SSH address with `ADDRESS host[:port]`, and thrown away by its
 * `discard` script (spec §7). ERROR in allocate means "try again", FATAL
 * means "stop". Timeouts come from the backend only.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend as BackendConfig, Env, System } from '../project/types.js';
import { readAddress, outputError } from '../remote/markers.js';
import { runLocalScript } from '../remote/local-script.js';
import { escapeBytes, lateOutput } from '../output.js';
import { parseAddress } from '../remote/shell-words.js';
import { resolveTimeouts } from '../project/timeouts.js';
import { FatalError } from './backend.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';
import { sshMachine } from './ssh-machine.js';

const PORT_WAIT_MS = 5 * 60_000;

export function adhocBackend(config: BackendConfig, ctx: BackendContext): Backend {
  const timeouts = resolveTimeouts(config.warnTimeout, config.killTimeout);
  const label = (system: System) => `${config.name}:${system.name}`;

  const run = async (script: string, system: System, address: string): Promise<string> => {
    const { username, password } = ctx.credentials(system);
    const env: [string, string][] = [
      ['SPREAD_BACKEND', config.name], ['SPREAD_SYSTEM', system.name],
      ['SPREAD_SYSTEM_USERNAME', username], ['SPREAD_SYSTEM_PASSWORD', password],
      ['SPREAD_SYSTEM_ADDRESS', address],
    ];
    if (password === '') env.push(['SPREAD_PASSWORD', ctx.password]);
    const end = await runLocalScript({
      script, cwd: ctx.project.dir, env: env as Env, ...timeouts, signal: ctx.signal,
      onWarn: (output) => ctx.log(`WARNING: ${label(system)} ${address ? 'discard' : 'allocate'} script running late. ${escapeBytes(lateOutput(output))}`),
    });
    ctx.log(`Output of ${label(system)} ${address ? 'discard' : 'allocate'} script:\n-----\n${end.output}\n-----`, 'debug');
    if (end.kind === 'fatal') throw new FatalError(end.message);
    if (end.kind === 'error') throw new Error(end.message);
    if (end.kind === 'failed') throw new Error(outputError(end.output, `exit status ${end.exitCode}`));
    return end.output;
  };

  const machineFor = (system: System, address: string, credentials: { username: string; password: string }): Machine =>
    // The log names it by its system, as the original names adhoc machines; reports tell machines apart by address.
    sshMachine({
      system, label: address, logLabel: label(system), address, ...credentials,
      data: { backend: config.name, system: system.name, address },
      discard: async () => {
        if (config.discard.trim() !== '') await run(config.discard, system, address);
      },
    });

  return {
    config,
    async allocate(system) {
      const output = await run(config.allocate, system, '');
      const address = readAddress(output) ?? '';
      if (address === '' || /\s/.test(address)) {
        throw new Error(`backend ${JSON.stringify(config.name)} allocate script must report the machine with ADDRESS <host[:port]>, got: ${JSON.stringify(address)}`);
      }
      const { username, password } = ctx.credentials(system);
      const machine = machineFor(system, address, { username, password: password || ctx.password });
      ctx.log(`Waiting for ${label(system)} to make SSH available at ${address}...`);
      try {
        await waitPortUp(address, ctx.signal, (err) => ctx.log(`Cannot connect to ${label(system)}: ${err}`));
      } catch (err) {
        await machine.discard().catch(() => {});
        throw new Error(`cannot connect to ${label(system)} at ${address}: ${(err as Error).message}`);
      }
      ctx.log(`Allocated ${label(system)}.`);
      return machine;
    },
    async reuse(entry: ReuseEntry, system) {
      return machineFor(system, entry.address, { username: entry.username ?? '', password: entry.password });
    },
  };
}

/** Wait until something listens at host[:port] (22 by default). */
export async function waitPortUp(address: string, signal: AbortSignal, relog: (err: string) => void): Promise<void> {
  const { host, port } = parseAddress(address);
  const deadline = Date.now() + PORT_WAIT_MS;
  let lastLog = Date.now();
  for (;;) {
    const err = await tryConnect(host, port);
    if (err === undefined) return;
    if (signal.aborted) throw new Error('interrupted');
    if (Date.now() > deadline) throw new Error(err);
    if (Date.now() - lastLog > 15_000) {
      relog(err);
      lastLog = Date.now();
    }
    await sleep(1000);
  }
}


const tryConnect = (host: string, port: number): Promise<string | undefined> =>
  new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (err?: string) => {
      sock.destroy();
      resolve(err);
    };
    sock.setTimeout(5000, () => done('timeout'));
    sock.once('connect', () => done());
    sock.once('error', (e) => done(e.message));
  });
