/**
 * The small interface every backend implements (one file per backend in this
 * folder), and the machine handle it hands out. A backend knows how to obtain
 * and throw away machines; how to talk to one is the Session's business.
 */
import type { Backend as BackendConfig, Project, System } from '../project/types.js';
import type { Session } from '../remote/session.js';

/** Saved form of a machine, as written in `.spread-reuse.yaml` (the original's format). */
export interface ReuseEntry {
  readonly username?: string;
  readonly password: string;
  readonly address: string;
  /** Backend-specific data: lxd `{name}`, qemu `{pid}`, docker `{id}`, ... */
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface Machine {
  readonly system: System;
  /** Short name that tells machines apart: a container name, an address (reports, the HTML timeline). */
  readonly label: string;
  /**
   * How the log names the machine in parentheses after contexts, when that
   * differs from `label`: the original names an adhoc machine by its system
   * (`Executing adhoc:debian-12:tests/x (adhoc:debian-12)`). @default label
   */
  readonly logLabel?: string;
  /** `host:port` (or a description for machines reached without SSH). */
  readonly address: string;
  /** The login user; anything but root runs scripts through `sudo -i`. */
  readonly username: string;
  /**
   * Directory under which the project's remote path lives on this machine:
   * '' for real machines; the local backend gives each worker its own.
   */
  readonly root: string;
  /**
   * Whether `REBOOT` may reboot it. False for this host (local backend) and
   * for containers, where `reboot` would hit the host or cannot come back.
   */
  readonly canReboot: boolean;
  /** Open a session to run scripts on the machine. */
  connect(signal?: AbortSignal): Promise<Session>;
  /** Throw the machine away; idempotent. */
  discard(signal?: AbortSignal): Promise<void>;
  /** What to write in the reuse file so a later run can `reuse()` it. */
  reuseEntry(): ReuseEntry;
}

/** `backend:system (label)`, the way the original names a server in its log (just `backend:system` when that is its log label). */
export const machineName = (m: Pick<Machine, 'system' | 'label' | 'logLabel'>): string => {
  const system = `${m.system.backend}:${m.system.name}`;
  const label = m.logLabel ?? m.label;
  return label === system ? system : `${system} (${label})`;
};

/** Options shared by every backend, from the command line. */
export interface BackendContext {
  readonly project: Project;
  /** The `-pass` value: root password for machines this run allocates. */
  readonly password: string;
  /** Machines are kept after the run (`-reuse`): create them non-ephemeral. */
  readonly keep: boolean;
  /** Evaluated credentials and keys ($(HOST:...) and references expanded). */
  readonly credentials: (system: System) => { readonly username: string; readonly password: string };
  readonly key: (backend: BackendConfig) => string;
  /** Lines for the log (allocation progress, warnings). */
  readonly log: (message: string, level?: 'info' | 'verbose' | 'debug') => void;
  /** Stopping the run (Ctrl-C) aborts this. */
  readonly signal: AbortSignal;
}

export interface Backend {
  readonly config: BackendConfig;
  /** Obtain a fresh machine. Throw FatalError when retrying cannot help. */
  allocate(system: System, signal?: AbortSignal): Promise<Machine>;
  /** Rebuild a machine handle from a reuse-file entry. */
  reuse(entry: ReuseEntry, system: System): Promise<Machine>;
  /** Remove machines left behind by earlier runs, if the backend can tell them apart. */
  gc?(signal?: AbortSignal): Promise<void>;
}

export type BackendFactory = (config: BackendConfig, context: BackendContext) => Backend;

/** A recorded machine that no longer exists (its container or process is gone): its reuse entry is forgotten. */
export class MachineGoneError extends Error {
  override readonly name = 'MachineGoneError';
}

/** Retrying cannot help (a missing image, a FATAL from an adhoc script). */
export class FatalError extends Error {
  override readonly name = 'FatalError';
}
