/**
 * lxd: containers launched with the `lxc` client, as the original does
 * (spec §7): a cached local image when one matches the system, else the
 * image name mapped to a remote (`ubuntu-16.04` -> `ubuntu:16.04/<arch>`,
 * `debian-sid` -> `images:debian/sid/<arch>`), names `spread-<n>-<system>`
 * counted in ~/.spread/lxd-count under a lock shared with Go spread, root
 * login prepared through `lxc exec`, ephemeral unless kept with -reuse.
 *
 * Deviations, all for robustness: the address comes from
 * `lxc query /1.0/instances/<name>/state` (any interface but lo, not only
 * eth0; JSON, not table scraping); allocation waits until sshd greets; the
 * three set-up commands run in one `lxc exec`, with the password on stdin
 * rather than in argv; `run-options` are appended to `lxc launch`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { FatalError, machineName } from './backend.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';
import { runTool, serverAddressIn, splitCommand, toolError, ToolMissingError, type ToolOptions, type ToolResult } from './host-tool.js';
import { EARLY_DIAL_MS, readySshMachine, waitSshBanner } from './ssh-ready.js';


const DEB_ARCHES = ['amd64', 'i386', 'armel', 'armhf', 'arm64', 'powerpc', 'ppc64el', 's390x'];

/** Debian's name for this host's architecture (the original's debArch). */
export const debArch = (arch: string = process.arch): string =>
  ({ ia32: 'i386', x64: 'amd64', arm: 'armhf', arm64: 'arm64', ppc64: 'ppc64el', s390x: 's390x', ppc: 'powerpc' })[arch] ?? 'amd64';

/** The image to launch when no cached image matches. */
export const remoteImageName = (image: string, arch: string): string => {
  if (image.includes(':')) return image;
  const parts = image.split('-');
  if (!DEB_ARCHES.includes(parts[parts.length - 1]!)) parts.push(arch);
  if (parts[0] === 'ubuntu') return `ubuntu:${parts.slice(1).join('/')}`;
  return `images:${parts.join('/')}`;
};

export interface LxdImage {
  readonly fingerprint: string;
  readonly properties?: Readonly<Record<string, string>>;
  readonly update_source?: { readonly server?: string };
  readonly aliases?: readonly { readonly name: string }[];
}

/**
 * A cached image that fits `image` (the original's lxdLocalImage): from the
 * same remote (by its server URL, or the `remote` property of an imported
 * image), with every part of the name among its os, label, release, version,
 * architecture or aliases. An image whose local alias is exactly `image`
 * comes first.
 */
export const matchLocalImage = (image: string, arch: string, images: readonly LxdImage[], remoteNames: ReadonlyMap<string, string>): string | undefined => {
  // A local alias named exactly so is what the user means (the original would look it up remotely).
  const aliased = images.find((img) => img.aliases?.some((a) => a.name === image));
  if (aliased) return aliased.fingerprint;
  let parts = image.split('/');
  let remote = '';
  const pair = parts[0]!.split(':');
  if (pair.length > 1) {
    parts[0] = pair[1]!;
    remote = pair[0]!;
  } else if (parts.length === 1) {
    parts = parts[0]!.split('-');
  }
  if (remote === '') {
    if (parts[0] === 'ubuntu') {
      parts = parts.slice(1);
      remote = 'ubuntu';
    } else {
      remote = 'images';
    }
  }
  if (!DEB_ARCHES.includes(parts[parts.length - 1]!)) parts.push(arch);
  for (const img of images) {
    const props = img.properties ?? {};
    const server = img.update_source?.server ?? '';
    if (server !== '' && remoteNames.get(server) !== remote) continue;
    if (server === '' && props['remote'] !== remote) continue;
    const known = [props['os'], props['label'], props['release'], props['version'], props['architecture']];
    const aliases = (props['aliases'] ?? '').split(',');
    if (parts.every((part) => known.includes(part) || aliases.includes(part))) return img.fingerprint;
  }
  return undefined;
};

/** The first global IPv4 address of any interface but lo, from an instance state. */
export const lxdAddress = (state: unknown): string | undefined => {
  const network = (state as { network?: Record<string, { addresses?: { family?: string; address?: string; scope?: string }[] }> } | null)?.network ?? {};
  for (const name of Object.keys(network).sort()) {
    if (name === 'lo') continue;
    const found = network[name]?.addresses?.find((a) => a.family === 'inet' && a.scope === 'global' && a.address);
    if (found?.address) return found.address;
  }
  return undefined;
};

// Runs under `flock ~/.spread/lxd-count`, the lock Go spread takes on the same file.
const COUNT_SCRIPT = `n=$(tr -d ' \\t\\n' < "$1")
case $n in "") n=0 ;; *[!0-9]*) echo "expected integer in ~/.spread/lxd-count, got \\"$n\\"" >&2; exit 1 ;; esac
n=$((n + 1)); printf %s "$n" > "$1" && echo "$n"`;

/** `spread-<n>-<system with . replaced by ->`, n counted in <home>/.spread/lxd-count. */
export async function lxdName(system: Pick<System, 'name'>, home: string): Promise<string> {
  const dir = join(home, '.spread');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new Error(`cannot create ~/.spread/: ${(err as Error).message}`);
  }
  const file = join(dir, 'lxd-count');
  let r: ToolResult;
  try {
    r = await runTool(['flock', file, 'sh', '-c', COUNT_SCRIPT, 'sh', file], { timeoutMs: 60_000 });
  } catch (err) {
    throw new Error(`cannot obtain lock on ~/.spread/lxd-count: ${(err as Error).message}`);
  }
  if (r.code !== 0) throw new Error(`cannot update ~/.spread/lxd-count: ${toolError(r)}`);
  return `spread-${r.stdout.trim()}-${system.name.replace(/\./g, '-')}`;
}

const TUNE_SSH = [
  `sed -i 's/^\\s*#\\?\\s*\\(PermitRootLogin\\|PasswordAuthentication\\)\\>.*/\\1 yes/' /etc/ssh/sshd_config`,
  'chpasswd',
  '{ killall -HUP sshd 2>/dev/null || pkill -HUP -x sshd 2>/dev/null || true; }',
].join(' && ');

export interface LxdDeps {
  /** Where `.spread/lxd-count` lives. @default os.homedir() */
  readonly home?: string;
  /** @default debArch() */
  readonly arch?: string;
}

export function lxdBackend(config: BackendConfig, ctx: BackendContext, deps: LxdDeps = {}): Backend {
  const lxc = splitCommand(String(config.options['engine'] ?? ''), 'lxc');
  const home = deps.home ?? homedir();
  const arch = deps.arch ?? debArch();
  const runOptions = (options: Readonly<Record<string, unknown>>) => (Array.isArray(options['runOptions']) ? options['runOptions'].map(String) : []);

  const tool = async (args: readonly string[], o: ToolOptions = {}): Promise<ToolResult> => {
    let r: ToolResult;
    try {
      r = await runTool([...lxc, ...args], o);
    } catch (err) {
      if (err instanceof ToolMissingError) throw new FatalError(`lxd: command not found: ${err.program} (install LXD, or set engine: in backend ${JSON.stringify(config.name)})`);
      throw err;
    }
    if (r.code !== 0 && /unix\.socket|dial (unix|tcp) /.test(r.stderr)) {
      throw new FatalError(`lxd: cannot reach the LXD daemon at ${serverAddressIn(r.stderr) ?? 'its socket'}; is it running?`);
    }
    return r;
  };

  const queryJson = async (path: string, signal?: AbortSignal): Promise<unknown> => {
    const r = await tool(['query', path], { signal });
    if (r.code !== 0) throw new Error(`cannot query lxd for ${path}: ${toolError(r)}`);
    return JSON.parse(r.stdout) as unknown;
  };

  const lxdImage = async (system: System, signal?: AbortSignal): Promise<string> => {
    const remotes = await tool(['remote', 'list', '--format', 'json'], { signal });
    if (remotes.code !== 0) throw new Error(`cannot list lxd remotes: ${toolError(remotes)}`);
    const remoteNames = new Map(Object.entries(JSON.parse(remotes.stdout) as Record<string, { Addr?: string }>).map(([name, r]) => [r.Addr ?? '', name]));
    const images = (await queryJson('/1.0/images?recursion=1', signal)) as LxdImage[];
    const fingerprint = matchLocalImage(system.image, arch, images, remoteNames);
    if (fingerprint !== undefined) {
      ctx.log(`Using cached LXD image for ${config.name}:${system.name}: ${fingerprint.slice(0, 12)}`, 'verbose');
      return fingerprint;
    }
    ctx.log(`Cannot find cached LXD image for ${config.name}:${system.name}.`, 'verbose');
    return remoteImageName(system.image, arch);
  };

  const remove = async (name: string): Promise<void> => {
    const r = await tool(['delete', '--force', name], { timeoutMs: 120_000 });
    if (r.code !== 0 && !/not found/i.test(r.stderr)) throw new Error(`cannot discard lxd container: ${toolError(r)}`);
  };

  const waitAddress = async (name: string, signal: AbortSignal): Promise<string> => {
    const [remote, bare] = name.includes(':') ? [name.slice(0, name.indexOf(':') + 1), name.slice(name.indexOf(':') + 1)] : ['', name];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const address = lxdAddress(await queryJson(`${remote}/1.0/instances/${bare}/state`, signal));
      if (address !== undefined) return address;
      if (Date.now() > deadline) throw new Error(`lxd server ${name} has no address available`);
      if (signal.aborted) throw new Error('interrupted');
      await sleep(250);
    }
  };

  const machineFor = (system: System, name: string, address: string, credentials: { username: string; password: string }, earlyUntil: number): Machine =>
    readySshMachine({ system, label: name, address, ...credentials, data: { name }, earlyUntil, discard: () => remove(name) });

  return {
    config,
    async allocate(system, signal) {
      const stop = signal ? AbortSignal.any([signal, ctx.signal]) : ctx.signal;
      const image = await lxdImage(system, stop);
      let name = await lxdName(system, home);
      if (config.location !== '') name = `${config.location}:${name}`;
      const args = ['launch', image, name, ...(ctx.keep ? [] : ['--ephemeral']), ...runOptions(config.options), ...runOptions(system.options)];
      const launched = await tool(args, { signal: stop, timeoutMs: 30 * 60_000 }).catch(async (err: unknown) => {
        await remove(name).catch(() => {}); // interrupted half-way
        throw err;
      });
      if (launched.code !== 0) {
        const why = /error: not found/i.test(launched.stdout + launched.stderr) ? `${image} not found` : toolError(launched);
        throw new FatalError(`cannot launch lxd container: ${why}`);
      }
      const label = `${config.name}:${system.name} (${name})`;
      try {
        ctx.log(`Waiting for lxd container ${name} to have an address...`);
        const address = await waitAddress(name, stop);
        const tuned = await tool(['exec', name, '--', '/bin/sh', '-c', TUNE_SSH], { input: `root:${ctx.password}\n`, signal: stop });
        if (tuned.code !== 0) throw new Error(`cannot prepare sshd in lxd container ${JSON.stringify(name)}: ${toolError(tuned)}`);
        await waitSshBanner(address, {
          signal: stop, timeoutMs: 120_000,
          onSlow: (why) => ctx.log(`Still waiting for SSH on ${label} at ${address}: ${why}`),
        });
        const creds = ctx.credentials(system);
        const machine = machineFor(system, name, address, { username: creds.username || 'root', password: creds.password || ctx.password }, Date.now() + EARLY_DIAL_MS);
        ctx.log(`Allocated ${machineName(machine)}.`);
        return machine;
      } catch (err) {
        await remove(name).catch(() => {});
        throw err;
      }
    },

    async reuse(entry: ReuseEntry, system) {
      const name = typeof entry.data?.['name'] === 'string' ? entry.data['name'] : '';
      if (name === '') throw new Error('cannot unmarshal lxd reuse data: no container name');
      return machineFor(system, name, entry.address, { username: entry.username ?? 'root', password: entry.password }, 0);
    },
  };
}
