/**
 * local: jobs run on this machine, with no SSH, as the user running spread.
 * Each worker gets a directory of its own under which the project's remote
 * path is mapped (`path: /home/test` becomes `<worker dir>/home/test`, and
 * SPREAD_PATH says so), so workers never share files. Meant for trying
 * spread out and for projects whose tasks are safe to run on the host.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { localSession } from '../remote/local-session.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';

let counter = 0;

export function localBackend(config: BackendConfig, ctx: BackendContext): Backend {
  const base = config.location || join(tmpdir(), `spread-local-${ctx.project.name}`);

  const machineAt = (system: System, dir: string): Machine => ({
    system,
    label: dir.slice(dir.lastIndexOf('/') + 1),
    address: dir,
    username: 'root',
    root: dir,
    // `reboot` here would reboot the host.
    canReboot: false,
    connect: async () => localSession({ root: dir, label: dir }),
    discard: async () => rmSync(dir, { recursive: true, force: true }),
    reuseEntry: (): ReuseEntry => ({ password: '', address: dir, data: { dir } }),
  });

  return {
    config,
    async allocate(system) {
      const dir = join(base, `${system.name}-${process.pid}-${++counter}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      ctx.log(`Allocated ${config.name}:${system.name} in ${dir}.`);
      return machineAt(system, dir);
    },
    async reuse(entry, system) {
      if (!existsSync(entry.address)) throw new Error(`directory ${entry.address} is gone`);
      return machineAt(system, entry.address);
    },
  };
}
