/**
 * The project model: readonly data mirroring spread.yaml and task.yaml, one
 * interface per cascade level (project -> backend -> system -> suite -> task),
 * plus the Job that points at one of each. Nothing here does I/O.
 */

/** Where a value was written, for error messages: `file:line:column`. */
export interface Where {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  /** Set when the value written here was used elsewhere, through an alias or merge key. */
  readonly via?: Via;
}

/** Where an alias (`*name`) or merge key (`<<: *name`) brought a value written at an anchor. */
export interface Via {
  readonly line: number;
  readonly column: number;
  /** As written: `*name` or `<<: *name`. */
  readonly written: string;
}

/**
 * An environment: ordered key/value pairs. Keys may carry a variant suffix
 * (`FOO/a,b`). Treated as immutable; per-script values such as SPREAD_REBOOT
 * are layered on at render time, never written into a job's environment.
 */
export type Env = readonly (readonly [key: string, value: string])[];

/**
 * A duration in milliseconds as written in `warn-timeout`/`kill-timeout`/
 * `halt-timeout`. 0 means "not set here" (the next level decides);
 * `Infinity` means "no timeout" (`-1` or `-1ns`).
 */
export type TimeoutMs = number;

/** The script slots shared by project, backend and suite. */
export interface LevelScripts {
  readonly prepare: string;
  readonly restore: string;
  readonly debug: string;
}

export interface EachScripts {
  readonly prepareEach: string;
  readonly restoreEach: string;
  readonly debugEach: string;
}

export interface Timeouts {
  readonly warnTimeout: TimeoutMs;
  readonly killTimeout: TimeoutMs;
}

/** What every level below the project has: its environment, variants and selection rules. */
export interface Selection {
  readonly env: Env;
  readonly variants: readonly string[];
  /** Unset when the level does not say (the next level outward decides). */
  readonly priority?: number;
  readonly manual: boolean;
}

export interface Project extends LevelScripts, EachScripts, Timeouts {
  readonly name: string;
  /** Absolute path of spread.yaml (or .spread.yaml). */
  readonly file: string;
  /**
   * Absolute project root: the directory holding the project file, joined
   * with `reroot:` when set. Suites, the content sent to machines, the
   * repack script's working directory and the reuse file all live here.
   */
  readonly dir: string;
  /** `reroot:` as written ("" when unset). */
  readonly reroot: string;
  /** Remote `path` as written (may hold `$(HOST:...)`); see `remotePath` on expanded jobs. */
  readonly path: string;
  readonly env: Env;
  /** Backends in declaration order. */
  readonly backends: readonly Backend[];
  /** Suites in declaration order. */
  readonly suites: readonly Suite[];
  readonly repack: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly rename: readonly string[];
  readonly where: Where;
}

export type BackendType = string;

export interface Backend extends LevelScripts, EachScripts, Timeouts, Selection {
  readonly name: string;
  readonly type: BackendType;
  readonly key: string;
  readonly location: string;
  readonly plan: string;
  /** Bytes; -1 is `preserve-size`, 0 unset. */
  readonly storage: number;
  /** Bytes; 0 unset. */
  readonly memory: number;
  readonly haltTimeout: TimeoutMs;
  /** openstack: the Keystone URL; google: the Compute Engine API base URL (default the public one). */
  readonly endpoint: string;
  /** openstack: the user name to authenticate as. */
  readonly account: string;
  /** openstack: network names for systems that name none. */
  readonly networks: readonly string[];
  /** openstack: security group names for systems that name none. */
  readonly groups: readonly string[];
  readonly allocate: string;
  readonly discard: string;
  /** Systems in declaration order (a repeated name keeps the last definition). */
  readonly systems: readonly System[];
  /** Backend-specific options not known to the original (docker/podman/...). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly where: Where;
}

export interface System extends Selection {
  readonly name: string;
  /** Name of the backend that declares this system. */
  readonly backend: string;
  readonly image: string;
  readonly kernel: string;
  readonly username: string;
  readonly password: string;
  readonly workers: number;
  readonly storage: number;
  readonly plan: string;
  readonly secureBoot: boolean;
  readonly cpuFamily: string;
  readonly bios: string;
  /** openstack networks: the system's own list, else the backend's (a non-empty list never merges). */
  readonly networks: readonly string[];
  /** openstack security groups: the system's own list, else the backend's. */
  readonly groups: readonly string[];
  /** Backend-specific options not known to the original. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly where: Where;
}

export interface Suite extends LevelScripts, EachScripts, Timeouts, Selection {
  /** As written, with the trailing slash: `tests/main/`. */
  readonly name: string;
  readonly summary: string;
  readonly systems: readonly string[];
  readonly backends: readonly string[];
  /** Tasks sorted by name. */
  readonly tasks: readonly Task[];
  readonly where: Where;
}

export interface Task extends Timeouts, Selection {
  /** Full name: suite name plus directory name, `tests/main/foo`. */
  readonly name: string;
  /** Suite name, `tests/main/`. */
  readonly suite: string;
  readonly summary: string;
  readonly details: string;
  readonly systems: readonly string[];
  readonly backends: readonly string[];
  readonly samples: number;
  readonly prepare: string;
  readonly restore: string;
  /** Not trimmed at load (the original trims it only when it runs). */
  readonly execute: string;
  readonly debug: string;
  readonly artifacts: readonly string[];
  /** Set for a multi-machine task (`instances:` of 2 or more): see docs/tasks.md. */
  readonly instances?: Instances;
  readonly where: Where;
}

/** `instances: N` or `instances: {role: count, ...}`: the task runs on N machines at once. */
export interface Instances {
  /** How many machines run the task together (2 or more). */
  readonly count: number;
  /** The role of each instance in order (`instances: {server: 1, client: 2}` gives server, client, client); empty for `instances: N`. */
  readonly roles: readonly string[];
  /** Where `instances:` is written. */
  readonly where: Where;
}

/**
 * One cell of the matrix. Points at its ancestors; its environment is
 * composed on demand (see env.ts `jobEnv`) so 60k jobs share their levels.
 */
export interface Job {
  /** `backend:system:suite/task[:variant][#sample]` */
  readonly name: string;
  readonly project: Project;
  readonly backend: Backend;
  readonly system: System;
  readonly suite: Suite;
  readonly task: Task;
  readonly variant: string;
  /** 1-based; 1 when the task has no samples. */
  readonly sample: number;
  readonly priority: number;
}

/** The levels a script can belong to, outermost first. */
export type Level = 'project' | 'backend' | 'suite' | 'task';
