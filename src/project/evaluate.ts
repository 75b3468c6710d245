/**
 * Host-side evaluation (spec §4.3): `$(HOST:cmd)` in environments, the remote
 * path and backend keys, and full `$VAR` expansion for system usernames and
 * passwords and the include/exclude/rename lists. Every distinct command runs
 * once (the cache of the original), all of them concurrently through an
 * injected runner, before any substitution happens; substitution is then
 * synchronous and deterministic.
 */
import { ConfigError } from './errors.js';
import { cleanPath } from './names.js';
import type { Backend, Env, Job, Project, System, Where } from './types.js';

/** Runs `cmd` with `/bin/bash -c` on this host; resolves stdout without trailing newlines. */
export type HostRunner = (command: string) => Promise<string>;

/** Everything about a project that depends on running commands on this host. */
export interface Evaluated {
  /** Cleaned absolute remote path. */
  readonly remotePath: string;
  /** The environment of a level with `$(HOST:...)` replaced. */
  env(level: Env): Env;
  /** Backend key, evaluated and trimmed. */
  key(backend: Backend): string;
  /** System credentials with references expanded. */
  credentials(system: System): { readonly username: string; readonly password: string };
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly rename: readonly string[];
}

const HOST_CMD = /\$\(HOST:.+?\)/g;
const VAR_REF = /\$(?:\(HOST:.+?\)|[a-zA-Z_][a-zA-Z0-9_]*|\{[a-zA-Z_][a-zA-Z0-9_]*\})/g;
const innerCommand = (ref: string): string => ref.slice('$(HOST:'.length, -1);

interface Level {
  readonly env: Env;
  readonly context: string;
  readonly where: Where;
}

type Outcome = { ok: true; out: string } | { ok: false; message: string };

/**
 * Evaluate for the given jobs (the whole matrix, before filtering, as the
 * original does): the environments of every level some job uses.
 */
export async function evaluateProject(project: Project, jobs: readonly Job[], run: HostRunner): Promise<Evaluated> {
  const levels = usedLevels(project, jobs);
  const texts: string[] = [project.path, ...project.include, ...project.exclude, ...project.rename];
  for (const level of levels) for (const [, v] of level.env) texts.push(v);
  for (const backend of project.backends) {
    texts.push(backend.key, ...backend.env.map(([, v]) => v));
    for (const s of backend.systems) texts.push(s.username, s.password);
  }
  const cache = await runAll(texts, run);

  const hostOnly = (value: string, context: string, where: Where): string =>
    value.replace(HOST_CMD, (ref) => outcome(cache, ref, context, where));

  const remotePath = cleanAbsolute(hostOnly(project.path, 'remote project path', project.where), project.where);
  const envs = new Map<Env, Env>();
  for (const level of levels) {
    envs.set(level.env, level.env.map(([k, v]) => [k, hostOnly(v, `${level.context} environment (${k})`, level.where)] as const));
  }

  const full = (value: string, scope: readonly Level[], context: string, where: Where): string => {
    const vars = new Map<string, string>();
    const expand = (text: string, ctx: string): string =>
      text.replace(VAR_REF, (ref) => (ref.startsWith('$(') ? outcome(cache, ref, ctx, where) : vars.get(ref.replace(/[${}]/g, '')) ?? ''));
    for (const level of scope) for (const [k, v] of level.env) vars.set(k, expand(v, `${level.context} environment (${k})`));
    return expand(value, context);
  };
  const projectLevel: Level = { env: project.env, context: 'project', where: project.where };
  const listOf = (values: readonly string[], what: string): string[] => values.map((v) => full(v, [projectLevel], what, project.where));

  const keys = new Map<Backend, string>();
  const creds = new Map<System, { username: string; password: string }>();
  for (const backend of project.backends) {
    const backendLevel: Level = { env: backend.env, context: `backend ${JSON.stringify(backend.name)}`, where: backend.where };
    keys.set(backend, hostOnly(backend.key, `${backend.name} backend key`, backend.where).trim());
    for (const system of backend.systems) {
      const label = `${backend.name}:${system.name}`;
      const username = system.username === '' ? '' : full(system.username, [projectLevel, backendLevel], `${label} username`, system.where);
      // Passwords may well contain `$`: expand only a value that is one reference.
      const whole = system.password.match(VAR_REF)?.[0] === system.password && system.password.search(VAR_REF) === 0;
      const password = whole ? full(system.password, [projectLevel, backendLevel], `${label} password`, system.where) : system.password;
      creds.set(system, { username, password });
    }
  }

  return {
    remotePath,
    env: (level) => envs.get(level) ?? level,
    key: (backend) => keys.get(backend) ?? backend.key,
    credentials: (system) => creds.get(system) ?? { username: system.username, password: system.password },
    include: listOf(project.include, 'include list'),
    exclude: listOf(project.exclude, 'exclude list'),
    rename: listOf(project.rename, 'rename expression'),
  };
}

function usedLevels(project: Project, jobs: readonly Job[]): Level[] {
  const seen = new Set<Env>([project.env]);
  const levels: Level[] = [{ env: project.env, context: 'project', where: project.where }];
  const add = (env: Env, context: string, where: Where): void => {
    if (seen.has(env) || env.length === 0) return;
    seen.add(env);
    levels.push({ env, context, where });
  };
  let last: Job | undefined;
  for (const job of jobs) {
    // Jobs come grouped by task and system: skip the repeats cheaply.
    if (last && last.task === job.task && last.system === job.system) continue;
    last = job;
    add(job.backend.env, `backend ${JSON.stringify(job.backend.name)}`, job.backend.where);
    add(job.system.env, `${job.backend.name}:${job.system.name}`, job.system.where);
    add(job.suite.env, `suite ${job.suite.name}`, job.suite.where);
    add(job.task.env, job.task.name, job.task.where);
  }
  return levels;
}

async function runAll(texts: readonly string[], run: HostRunner): Promise<Map<string, Outcome>> {
  const commands = new Set<string>();
  for (const text of texts) for (const ref of text.match(HOST_CMD) ?? []) commands.add(innerCommand(ref));
  const cache = new Map<string, Outcome>();
  await Promise.all([...commands].map(async (cmd) => {
    try {
      cache.set(cmd, { ok: true, out: await run(cmd) });
    } catch (err) {
      cache.set(cmd, { ok: false, message: (err as Error).message });
    }
  }));
  return cache;
}

function outcome(cache: ReadonlyMap<string, Outcome>, ref: string, context: string, where: Where): string {
  const result = cache.get(innerCommand(ref));
  if (!result) return '';
  if (!result.ok) throw new ConfigError(`${ref} in ${context} returned error: ${result.message}`, where);
  return result.out;
}

/** Cleaned as Go does, then the original's rule: absolute and not `/`. */
function cleanAbsolute(path: string, where: Where): string {
  const cleaned = cleanPath(path);
  if (!cleaned.startsWith('/') || cleaned === '/') {
    throw new ConfigError(`remote project path must be absolute and not /: ${cleaned} (set path: to a directory such as /home/test)`, where);
  }
  return cleaned;
}
