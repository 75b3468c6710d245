/** A machine reached over SSH with a password: what most backends hand out. */
import type { System } from '../project/types.js';
import { dialSsh } from '../remote/ssh-dial.js';
import type { Machine, ReuseEntry } from './backend.js';

export interface SshMachineOptions {
  readonly system: System;
  readonly label: string;
  /** See Machine.logLabel. */
  readonly logLabel?: string;
  readonly address: string;
  readonly username: string;
  readonly password: string;
  readonly data?: Readonly<Record<string, unknown>>;
  readonly discard: (signal?: AbortSignal) => Promise<void>;
  /** @default true */
  readonly canReboot?: boolean;
}

export function sshMachine(o: SshMachineOptions): Machine {
  let discarded: Promise<void> | undefined;
  const username = o.username || 'root';
  return {
    system: o.system,
    label: o.label,
    ...(o.logLabel !== undefined ? { logLabel: o.logLabel } : {}),
    address: o.address,
    username,
    root: '',
    canReboot: o.canReboot ?? true,
    connect: (signal) => dialSsh({ address: o.address, username, password: o.password, signal, startAgent: true }),
    discard: (signal) => (discarded ??= o.discard(signal)),
    reuseEntry: (): ReuseEntry => ({
      ...(username !== 'root' ? { username } : {}),
      password: o.password,
      address: o.address,
      ...(o.data ? { data: o.data } : {}),
    }),
  };
}
