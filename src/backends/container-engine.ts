/**
 * docker and podman (docker.ts, podman.ts): one container per machine,
 * reached over SSH on a port published on 127.0.0.1 only.
 *
 * The engine is driven through its command-line client, not an API library
 * such as dockerode, because:
 * - one code path serves both engines: podman is daemonless, and its
 *   Docker-compatible API exists only while `podman system service` runs;
 * - the user's own setup applies unchanged: DOCKER_HOST, docker contexts,
 *   registry credentials for pulls, containers.conf, rootless podman;
 * - `run-options` in spread.yaml are CLI flags, passed through as written
 *   (an API client would need a flag parser per engine);
 * - no extra dependency, and a CLI call (30-100 ms) is small next to a
 *   container start.
 *
 * The container's command is a small sh script that generates a host key if
 * the image has none (ed25519 only: `ssh-keygen -A` costs a second or more
 * for RSA) and then execs sshd as PID 1, with root and password logins
 * allowed on its command line. The password is set afterwards through
 * `exec -i ... chpasswd` on stdin, so it never shows in `inspect`.
 *
 * An image without sshd fails with a FatalError naming it. Installing
 * openssh-server on the fly would need a package manager and a network,
 * differ per distribution, cost tens of seconds on every machine, and change
 * the system under test; building an image with sshd once is the better fix.
 */
import { randomBytes } from 'node:crypto';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { FatalError, MachineGoneError, machineName } from './backend.js';
import type { Backend, BackendContext, BackendFactory, Machine, ReuseEntry } from './backend.js';
import { runTool, serverAddressIn, splitCommand, toolError, ToolMissingError, type ToolOptions, type ToolResult } from './host-tool.js';
import { EARLY_DIAL_MS, readySshMachine, waitSshBanner } from './ssh-ready.js';

export interface EngineSpec {
  readonly type: 'docker' | 'podman';
  /** The engine's server as named in errors: `Docker daemon`. */
  readonly server: string;
  /** Arguments that remove a container at once, name appended. */
  readonly removeArgs: readonly string[];
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NO_SSHD = 'spread: no sshd in this image';

/** PID 1 of every container: sshd in the foreground, or a long sleep when the image has none (reported by the password step). */
export const BOOT_SCRIPT = [
  `export ${PATH}`,
  'sshd=$(command -v sshd) || exec sleep 2147483647',
  'key=',
  'if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then',
  '  if ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key; then key="-h /etc/ssh/ssh_host_ed25519_key"; else ssh-keygen -A; fi',
  'fi',
  'mkdir -p /run/sshd && chmod 0755 /run/sshd',
  'exec "$sshd" -D -e $key -o PermitRootLogin=yes -o PasswordAuthentication=yes',
].join('\n');

// Statuses of their own: podman exec can lose the output of a process that ends at once.
const NO_SSHD_STATUS = 98;
const NO_USER_STATUS = 97;
/** Run as `sh -c SET_PASSWORD sh USER`, with `USER:PASSWORD` on stdin. */
const SET_PASSWORD = `${PATH}; command -v sshd >/dev/null || { echo '${NO_SSHD}' >&2; exit ${NO_SSHD_STATUS}; }
id -u "$1" >/dev/null 2>&1 || exit ${NO_USER_STATUS}
exec chpasswd`;

/** The image for a system: as written when it names a registry, tag or digest; else `name-version` becomes `name:version`. */
export const imageFor = (system: Pick<System, 'image' | 'name'>): string => {
  const image = system.image || system.name;
  if (/[:/@]/.test(image)) return image;
  const dash = image.lastIndexOf('-');
  return dash > 0 ? `${image.slice(0, dash)}:${image.slice(dash + 1)}` : image;
};

export const containerName = (system: Pick<System, 'name'>, random = randomBytes(3).toString('hex')): string =>
  `spread-${random}-${system.name.replace(/[^a-zA-Z0-9_-]/g, '-')}`;

const stringList = (options: Readonly<Record<string, unknown>>, key: string): string[] => {
  const value = options[key];
  return Array.isArray(value) ? value.map(String) : [];
};

/** What the client says when it cannot reach its server, as one line; undefined for other failures. */
export const unreachableMessage = (spec: EngineSpec, stderr: string): string | undefined => {
  if (/permission denied while trying to connect/i.test(stderr)) {
    const socket = /socket at (\S+?):/.exec(stderr)?.[1] ?? 'its socket';
    return `${spec.type}: permission denied on the ${spec.server} socket at ${socket}; is your user allowed to use ${spec.type}?`;
  }
  const at = /Cannot connect to the Docker daemon at (\S+?)\.?\s+Is the/i.exec(stderr)?.[1] ?? serverAddressIn(stderr);
  if (at !== undefined) return `${spec.type}: cannot reach the ${spec.server} at ${at}; is it running?`;
  if (/Cannot connect to Podman|unable to connect to Podman/i.test(stderr)) return `${spec.type}: cannot reach the ${spec.server}; is it running?`;
  return undefined;
};

export function containerEngineBackend(spec: EngineSpec): BackendFactory {
  return (config, ctx) => createContainerBackend(spec, config, ctx);
}

function createContainerBackend(spec: EngineSpec, config: BackendConfig, ctx: BackendContext): Backend {
  const engine = splitCommand(String(config.options['engine'] ?? ''), spec.type);
  const images = new Map<string, Promise<void>>();
  let checked: Promise<void> | undefined;

  const tool = async (args: readonly string[], o: ToolOptions = {}): Promise<ToolResult> => {
    try {
      const r = await runTool([...engine, ...args], o);
      const unreachable = r.code !== 0 ? unreachableMessage(spec, r.stderr) : undefined;
      if (unreachable) throw new FatalError(unreachable);
      return r;
    } catch (err) {
      if (err instanceof ToolMissingError) {
        throw new FatalError(`${spec.type}: command not found: ${err.program} (install ${spec.type}, or set engine: in backend ${JSON.stringify(config.name)})`);
      }
      throw err;
    }
  };

  const checkEngine = (signal?: AbortSignal): Promise<void> =>
    (checked ??= tool(['version'], { signal, timeoutMs: 30_000 }).then((r) => {
      if (r.code !== 0) throw new FatalError(`${spec.type}: cannot use the engine: ${toolError(r)}`);
    }).catch((err) => {
      checked = undefined;
      throw err;
    }));

  // Pulled at most once per run and image, however many workers start at once.
  const ensureImage = (image: string, system: System, signal?: AbortSignal): Promise<void> => {
    let p = images.get(image);
    if (!p) {
      p = (async () => {
        const found = await tool(['image', 'inspect', '--format', '{{.Id}}', image], { signal });
        if (found.code === 0) return;
        ctx.log(`Pulling image ${image} for ${config.name}:${system.name}...`);
        const pulled = await tool(['pull', image], { signal, timeoutMs: 30 * 60_000 });
        if (pulled.code !== 0) {
          throw new FatalError(`cannot find image ${JSON.stringify(image)} for ${config.name}:${system.name}: not present locally and cannot be pulled (${toolError(pulled)}); build or pull it, or set image: in spread.yaml`);
        }
      })();
      p.catch(() => images.delete(image));
      images.set(image, p);
    }
    return p;
  };

  const remove = async (name: string): Promise<void> => {
    const r = await tool([...spec.removeArgs, name], { timeoutMs: 60_000 });
    if (r.code !== 0 && !/no such container|no container with name or id/i.test(r.stderr)) {
      throw new Error(`cannot discard container ${name}: ${toolError(r)}`);
    }
  };

  const publishedAddress = async (name: string, signal?: AbortSignal): Promise<string> => {
    const r = await tool(['port', name, '22/tcp'], { signal });
    const port = /^(?:127\.0\.0\.1|0\.0\.0\.0|\[?::\]?):(\d+)\s*$/m.exec(r.stdout)?.[1];
    if (r.code !== 0 || port === undefined) {
      throw new Error(`cannot find the SSH port of container ${name}: ${r.code !== 0 ? toolError(r) : JSON.stringify(r.stdout.trim())}`);
    }
    return `127.0.0.1:${port}`;
  };

  const machineFor = (system: System, name: string, address: string, credentials: { username: string; password: string }, earlyUntil: number): Machine =>
    readySshMachine({
      system, label: name, address, ...credentials, data: { name }, earlyUntil,
      // sshd is the container's first process: there is no init to come back with.
      canReboot: false,
      discard: () => remove(name),
    });

  const start = async (system: System, signal: AbortSignal): Promise<Machine> => {
    const image = imageFor(system);
    const name = containerName(system);
    const label = `${config.name}:${system.name} (${name})`;
    const creds = ctx.credentials(system);
    const username = creds.username || 'root';
    const password = creds.password || ctx.password;
    ctx.log(`Starting container for ${label} from image ${image}...`, 'verbose');
    const run = await tool([
      'run', '-d', ...(ctx.keep ? [] : ['--rm']), '--name', name, '--hostname', name,
      '--label', 'spread=1', '--label', `spread.project=${ctx.project.name}`,
      '--label', `spread.backend=${config.name}`, '--label', `spread.system=${system.name}`,
      '--publish', '127.0.0.1::22',
      ...stringList(config.options, 'runOptions'), ...stringList(system.options, 'runOptions'),
      '--entrypoint', '/bin/sh', image, '-c', BOOT_SCRIPT,
    ], { signal, timeoutMs: 5 * 60_000 }).catch(async (err: unknown) => {
      await remove(name).catch(() => {}); // interrupted half-way
      throw err;
    });
    if (run.code !== 0) {
      await remove(name).catch(() => {});
      const why = toolError(run);
      if (run.code === 126 || run.code === 127) throw new FatalError(`cannot start ${label}: image ${JSON.stringify(image)} has no usable /bin/sh (${why})`);
      if (/unknown (shorthand )?flag|invalid (argument|reference|publish|value)/i.test(why)) throw new FatalError(`cannot start ${label}: ${why}`);
      throw new Error(`cannot start ${label}: ${why}`);
    }
    try {
      const [pw, address] = await Promise.all([
        tool(['exec', '-i', name, '/bin/sh', '-c', SET_PASSWORD, 'sh', username], { input: `${username}:${password}\n`, signal }),
        publishedAddress(name, signal),
      ]);
      if (pw.code === NO_SSHD_STATUS || pw.stderr.includes(NO_SSHD)) {
        throw new FatalError(`image ${JSON.stringify(image)} of ${label} has no sshd: spread logs in over SSH, so use an image with openssh-server installed`);
      }
      if (pw.code === NO_USER_STATUS) throw new FatalError(`user ${JSON.stringify(username)} of ${label} does not exist in image ${JSON.stringify(image)}`);
      if (pw.code !== 0) throw new Error(`cannot set the password of ${username} in ${label}: ${toolError(pw)}`);
      await waitSshBanner(address, {
        signal, timeoutMs: 60_000,
        onSlow: (why) => ctx.log(`Still waiting for SSH on ${label} at ${address}: ${why}`),
      });
      return machineFor(system, name, address, { username, password }, Date.now() + EARLY_DIAL_MS);
    } catch (err) {
      await remove(name).catch(() => {});
      throw err;
    }
  };

  return {
    config,
    async allocate(system, signal) {
      const stop = signal ? AbortSignal.any([signal, ctx.signal]) : ctx.signal;
      await checkEngine(stop);
      await ensureImage(imageFor(system), system, stop);
      const machine = await start(system, stop);
      ctx.log(`Allocated ${machineName(machine)}.`);
      return machine;
    },

    async reuse(entry: ReuseEntry, system) {
      const name = typeof entry.data?.['name'] === 'string' ? entry.data['name'] : '';
      if (name === '') throw new Error(`cannot reuse ${config.name}:${system.name} at ${entry.address}: no container name in its reuse data`);
      const state = await tool(['inspect', '--format', '{{.State.Running}}', name]);
      if (state.code !== 0) {
        const why = `cannot reuse container ${name}: ${toolError(state)}`;
        throw /no such (object|container)/i.test(why) ? new MachineGoneError(why) : new Error(why);
      }
      let earlyUntil = 0;
      if (state.stdout.trim() !== 'true') {
        ctx.log(`Starting stopped container ${config.name}:${system.name} (${name})...`);
        const started = await tool(['start', name]);
        if (started.code !== 0) throw new Error(`cannot start container ${name}: ${toolError(started)}`);
        earlyUntil = Date.now() + EARLY_DIAL_MS;
      }
      const address = await publishedAddress(name);
      return machineFor(system, name, address, { username: entry.username ?? 'root', password: entry.password }, earlyUntil);
    },

    async gc(signal) {
      const halt = config.haltTimeout;
      if (!(halt > 0) || !Number.isFinite(halt)) {
        ctx.log(`Backend ${JSON.stringify(config.name)} sets no halt-timeout: keeping its containers.`);
        return;
      }
      await checkEngine(signal);
      const list = await tool(['ps', '-a', '-q', '--no-trunc', '--filter', 'label=spread=1',
        '--filter', `label=spread.project=${ctx.project.name}`, '--filter', `label=spread.backend=${config.name}`], { signal });
      if (list.code !== 0) throw new Error(`cannot list containers: ${toolError(list)}`);
      const ids = list.stdout.split(/\s+/).filter((id) => id !== '');
      if (ids.length === 0) return;
      const inspected = await tool(['inspect', ...ids], { signal });
      if (inspected.code !== 0 && inspected.stdout.trim() === '') throw new Error(`cannot inspect containers: ${toolError(inspected)}`);
      const now = Date.now();
      for (const c of JSON.parse(inspected.stdout) as { Name?: string; Created?: string; Config?: { Labels?: Record<string, string> } }[]) {
        const name = (c.Name ?? '').replace(/^\//, '');
        const age = now - Date.parse(c.Created ?? '');
        const label = `${config.name}:${c.Config?.Labels?.['spread.system'] ?? '?'} (${name})`;
        ctx.log(`Checking ${label}...`, 'verbose');
        if (!(age > halt)) continue;
        ctx.log(`Container ${label} exceeds halt-timeout (up ${Math.round(age / 1000)}s). Removing it...`);
        await remove(name).catch((err) => ctx.log(`WARNING: Cannot garbage collect ${label}: ${(err as Error).message}`));
      }
    },
  };
}
