/**
 * openstack: servers through Keystone v3 (password, default domain, project
 * scope), Nova, Glance v2 and Neutron, as the original does since upstream
 * #196 (spec §13): `endpoint` (Keystone; it must offer identity v3),
 * `account`, `key` (the password), `location: project/region`, `plan` (the
 * flavor, default m1.medium), `networks`/`groups`, cloud-init user data
 * that sets the root password, root and password SSH and writes the ready
 * marker to the serial console; provisioning, address and console waits with
 * the original's limits and its SSH fallback; delete on any failure after
 * the server exists; reuse; `-gc` by halt-timeout.
 *
 * Deviations (upstream bugs): a failed authentication is one fatal error at
 * once, not silence until later calls fail; a server with no address on its
 * network is an error, not a crash. Also: an expired token is renewed once;
 * image lists follow Glance's pages; an endpoint without a version (`:5000`)
 * finds its v3 link.
 */
import { userInfo } from 'node:os';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { dialSsh } from '../remote/ssh-dial.js';
import { FatalError, machineName } from './backend.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';
import {
  ApiError, cloudClient, cloudTiming, containsTerms, deleteExpired, deleteOnFailure, instanceName, ownerName, poll, polish, throttleFor,
  toTerms, UnreachableError,
} from './cloud-request.js';
import type { CloudTiming } from './cloud-request.js';
import { EARLY_DIAL_MS, readySshMachine } from './ssh-ready.js';

export const OPENSTACK_READY_MARKER = 'MACHINE-IS-READY';
const DEFAULT_FLAVOR = 'm1.medium';
const IDENTITY_V3 = 'application/vnd.openstack.identity-v3+json';

/** cloud-init user data (the first line must be #cloud-config for cloud-init to read it). */
export const cloudConfig = (password: string): string => {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`; // YAML single-quoted scalar
  const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const run = [
    `echo root:${sh(password)} | chpasswd`,
    "sed -i 's/^\\s*#\\?\\s*\\(PermitRootLogin\\|PasswordAuthentication\\)\\>.*/\\1 yes/' /etc/ssh/sshd_config",
    "sed -i 's/^PermitRootLogin=/#PermitRootLogin=/g' /etc/ssh/sshd_config.d/* || true",
    "sed -i 's/^PasswordAuthentication=/#PasswordAuthentication=/g' /etc/ssh/sshd_config.d/* || true",
    "test -d /etc/ssh/sshd_config.d && printf 'PermitRootLogin=yes\\nPasswordAuthentication=yes\\n' > /etc/ssh/sshd_config.d/00-spread.conf || true",
    'pkill -o -HUP sshd || true',
    ...['/dev/ttyS0', '/dev/ttyAMA0', '/dev/console'].map((tty) => `test -c ${tty} && echo ${OPENSTACK_READY_MARKER} 1>${tty} 2>/dev/null || true`),
  ];
  return `#cloud-config\nruncmd:\n${run.map((line) => `  - ${q(line)}\n`).join('')}`;
};

export interface GlanceImage { readonly id: string; readonly name?: string; readonly created_at?: string; readonly status?: string }

/** An exact name wins; else the newest image whose name holds the wanted terms in order. */
export function matchOpenstackImage(wanted: string, images: readonly GlanceImage[]): GlanceImage | undefined {
  const exact = images.find((i) => i.name === wanted);
  if (exact) return exact;
  const terms = toTerms(wanted);
  let best: GlanceImage | undefined;
  let bestMs = -Infinity;
  for (const image of images) {
    if (!containsTerms(toTerms(image.name ?? ''), terms)) continue;
    const ms = Date.parse(image.created_at ?? '');
    const at = Number.isNaN(ms) ? -Infinity : ms;
    if (!best || at > bestMs) {
      best = image;
      bestMs = at;
    }
  }
  return best;
}

interface Endpoint { interface?: string; region?: string; region_id?: string; url?: string }
interface CatalogEntry { type?: string; endpoints?: Endpoint[] }
interface ServerDetail {
  id: string; name?: string; status?: string; created?: string;
  metadata?: Record<string, string>;
  addresses?: Record<string, { addr?: string; version?: number }[]>;
  fault?: { message?: string };
}

/** The public URL of `type` in `region` from a v3 catalog, or undefined. */
export const catalogUrl = (catalog: readonly CatalogEntry[], type: string, region: string): string | undefined =>
  catalog.find((s) => s.type === type)?.endpoints?.find((e) => e.interface === 'public' && (e.region_id === region || e.region === region))?.url?.replace(/\/+$/, '');

/** The server's address: on its first network when it names networks, else the first one it has. */
export function serverAddress(server: ServerDetail, networks: readonly string[]): string | undefined {
  const addresses = server.addresses ?? {};
  const pick = (list: readonly { addr?: string; version?: number }[] | undefined) =>
    (list ?? []).find((a) => a.version !== 6 && a.addr)?.addr ?? (list ?? []).find((a) => a.addr)?.addr;
  if (networks.length > 0) return pick(addresses[networks[0]!]);
  for (const list of Object.values(addresses)) {
    const a = pick(list);
    if (a) return a;
  }
  return undefined;
}

export interface OpenstackDeps {
  /** SPREAD_CLOUD_TIMING, USER. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

interface Session { token: string; compute: string; image: string; network: string }

export function openstackBackend(config: BackendConfig, ctx: BackendContext, deps: OpenstackDeps = {}): Backend {
  const env = deps.env ?? process.env;
  const endpoint = config.endpoint.replace(/\/+$/, '');
  const slash = config.location.indexOf('/');
  const [osProject, region] = slash > 0 ? [config.location.slice(0, slash), config.location.slice(slash + 1)] : ['', ''];
  let timing: CloudTiming | undefined;
  const times = (): CloudTiming => (timing ??= cloudTiming(env['SPREAD_CLOUD_TIMING']));
  let session: Session | undefined;
  const secrets = () => [ctx.password, ctx.key(config), session?.token ?? ''];
  const errorMessage = (status: number, body: unknown): string => {
    // Nova and Keystone wrap errors as {"itemNotFound": {"message"}} or {"error": {"message"}}; Neutron as {"NeutronError": {...}}.
    if (body && typeof body === 'object') {
      for (const value of Object.values(body as Record<string, unknown>)) {
        const m = (value as { message?: unknown } | null)?.message;
        if (typeof m === 'string' && m) return polish(m);
      }
    }
    return `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  };
  const throttle = throttleFor('openstack');
  const anonymous = () => cloudClient({ api: 'openstack', log: ctx.log, secrets, errorMessage, throttle, timing: times() });

  const login = async (signal?: AbortSignal): Promise<Session> => {
    const http = anonymous();
    // The original asks the endpoint itself which identity versions it speaks.
    let v3 = endpoint;
    const doc = await http.json<{ version?: { 'media-types'?: { type?: string }[] }; versions?: { values?: { id?: string; status?: string; links?: { rel?: string; href?: string }[] }[] } }>({ url: endpoint, anonymous: true, ...(signal ? { signal } : {}) });
    if (!doc?.version?.['media-types']?.some((m) => m.type === IDENTITY_V3)) {
      const listed = doc?.versions?.values?.find((v) => v.id?.startsWith('v3'))?.links?.find((l) => l.rel === 'self')?.href;
      if (!listed) throw new Error(`${endpoint} does not offer the identity v3 API (set endpoint: to the Keystone v3 URL, such as https://keystone:5000/v3)`);
      v3 = listed.replace(/\/+$/, '');
    }
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: config.account, domain: { id: 'default' }, password: ctx.key(config) } } },
        scope: { project: { name: osProject, domain: { id: 'default' } } },
      },
    };
    const r = await http.request({ method: 'POST', url: `${v3}/auth/tokens`, body, anonymous: true, ...(signal ? { signal } : {}) });
    const token = r.headers.get('x-subject-token') ?? '';
    const catalog = (r.body as { token?: { catalog?: CatalogEntry[] } } | undefined)?.token?.catalog ?? [];
    if (token === '') throw new Error('Keystone answered without a token');
    const urls = ['compute', 'image', 'network'].map((type) => catalogUrl(catalog, type, region));
    const missing = ['compute', 'image', 'network'].filter((_, i) => !urls[i]);
    if (missing.length > 0) {
      const regions = [...new Set(catalog.flatMap((s) => (s.endpoints ?? []).map((e) => e.region_id ?? e.region ?? '')))].filter(Boolean).sort();
      throw new Error(`region ${JSON.stringify(region)} has no public ${missing.join(', ')} endpoint (regions in the catalog: ${regions.join(', ') || 'none'}; check location: project/region)`);
    }
    return { token, compute: urls[0]!, image: urls[1]!, network: urls[2]! };
  };

  const client = cloudClient({
    api: 'openstack', log: ctx.log, secrets, errorMessage, throttle, timing: times(),
    authorize: async () => ({ 'x-auth-token': session?.token ?? '' }),
    reauthorize: async () => {
      session = await login();
      return true;
    },
  });

  // Authentication happens once per backend; a failure is fatal and said at once (upstream ignored it).
  let checked: Promise<Session> | undefined;
  const check = (signal?: AbortSignal): Promise<Session> => (checked ??= (async () => {
    if (endpoint === '') throw new FatalError(`backend ${JSON.stringify(config.name)} needs endpoint: (the Keystone v3 URL)`);
    if (osProject === '' || region === '') throw new FatalError(`cannot obtain project and region from location ${JSON.stringify(config.location)} of backend ${JSON.stringify(config.name)} (write it as project/region)`);
    try {
      session = await login(signal);
      return session;
    } catch (err) {
      const e = err as Error;
      const hint = err instanceof ApiError && err.status === 401 ? ' (check account:, key: and the project in location:)'
        : err instanceof UnreachableError ? ' (check endpoint: and the network)' : '';
      throw new FatalError(`cannot authenticate to OpenStack at ${endpoint} as ${JSON.stringify(config.account)} in project ${JSON.stringify(osProject)}: ${e.message}${hint}`);
    }
  })());

  const get = <T>(url: string, signal?: AbortSignal) => client.json<T>({ url, ...(signal ? { signal } : {}) });
  // Flavors, networks, groups, images and zones are listed once per run (a failed listing is tried again).
  const lists = new Map<string, Promise<unknown>>();
  const listed = <T>(url: string, signal?: AbortSignal): Promise<T> => {
    let p = lists.get(url);
    if (!p) {
      p = get<T>(url, signal);
      p.catch(() => lists.delete(url));
      lists.set(url, p);
    }
    return p as Promise<T>;
  };

  const findFlavor = async (name: string, signal: AbortSignal) => {
    const flavors = (await listed<{ flavors?: { id: string; name: string }[] }>(`${session!.compute}/flavors`, signal))?.flavors ?? [];
    const found = flavors.find((f) => f.name === name);
    if (!found) throw new FatalError(`cannot find valid flavor with name ${JSON.stringify(name)} (available: ${flavors.map((f) => f.name).join(', ') || 'none'}; check plan:)`);
    return found;
  };

  const findNetworks = async (names: readonly string[], signal: AbortSignal): Promise<{ uuid: string }[]> => {
    const networks = (await listed<{ networks?: { id: string; name: string; 'router:external'?: boolean }[] }>(`${session!.network}/v2.0/networks`, signal))?.networks ?? [];
    if (names.length === 0) {
      const first = networks.find((n) => !n['router:external']);
      if (!first) throw new FatalError('cannot find valid network to create floating IP (name one in networks:)');
      return [{ uuid: first.id }];
    }
    return names.map((name) => {
      const found = networks.find((n) => n.name === name);
      if (!found) throw new FatalError(`cannot find valid network with name ${JSON.stringify(name)} (available: ${networks.map((n) => n.name).join(', ')}; check networks:)`);
      return { uuid: found.id };
    });
  };

  const findGroups = async (names: readonly string[], signal: AbortSignal): Promise<{ name: string }[]> => {
    const groups = (await listed<{ security_groups?: { name: string }[] }>(`${session!.network}/v2.0/security-groups`, signal))?.security_groups ?? [];
    for (const name of names) {
      if (!groups.some((g) => g.name === name)) throw new FatalError(`cannot find valid group with name ${JSON.stringify(name)} (check groups:)`);
    }
    return names.map((name) => ({ name }));
  };

  let imageList: Promise<GlanceImage[]> | undefined;
  const allImages = (signal: AbortSignal): Promise<GlanceImage[]> => (imageList ??= (async () => {
    const images: GlanceImage[] = [];
    let next: string | undefined = `${session!.image}/v2/images?limit=100`;
    while (next) {
      const page: { images?: GlanceImage[]; next?: string } = await get(next, signal);
      images.push(...(page?.images ?? []));
      // Glance's next link is a path from the service root: /v2/images?marker=...
      next = page?.next ? `${session!.image}${page.next.startsWith('/') ? '' : '/'}${page.next}` : undefined;
    }
    return images;
  })().catch((err: Error) => {
    imageList = undefined;
    throw err;
  }));

  const findImage = async (wanted: string, signal: AbortSignal): Promise<GlanceImage> => {
    const images = await allImages(signal);
    const found = matchOpenstackImage(wanted, images.filter((i) => !i.status || i.status === 'active'));
    if (!found) throw new FatalError(`cannot find matching image for ${JSON.stringify(wanted)} (check image: of the system)`);
    return found;
  };

  const serverUrl = (id: string) => `${session!.compute}/servers/${encodeURIComponent(id)}`;

  const remove = async (id: string): Promise<void> => {
    await check();
    try {
      await client.request({ method: 'DELETE', url: serverUrl(id) });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;
      throw new Error(`cannot remove openstack instance: ${(err as Error).message}`);
    }
  };

  /** The console output once it has any, or undefined when none comes within the console wait. */
  const consoleOutput = async (id: string, signal: AbortSignal): Promise<string | undefined> => {
    const t = times();
    return poll({ timeoutMs: t.consoleMs, intervalMs: t.pollMs, signal, timeoutMessage: () => 'no console output' }, async () => {
      try {
        const r = await client.json<{ output?: string }>({ method: 'POST', url: `${serverUrl(id)}/action`, body: { 'os-getConsoleOutput': {} }, signal });
        return r?.output ? r.output : undefined;
      } catch (err) {
        ctx.log(`Cannot get console output of ${id}: ${(err as Error).message}`, 'debug');
        return undefined;
      }
    }).catch(() => undefined);
  };

  const waitBoot = async (id: string, what: string, address: string, signal: AbortSignal): Promise<void> => {
    const t = times();
    let consoleWorks = true;
    await poll({
      timeoutMs: t.bootMs ?? 120_000, intervalMs: t.pollMs, signal,
      timeoutMessage: () => `cannot find ready marker in console output for ${what}: timeout reached (the image must run cloud-init)`,
      onSlow: () => ctx.log(`Server ${what} is taking a while to boot...`),
    }, async () => {
      const output = await consoleOutput(id, signal);
      if (output === undefined) {
        consoleWorks = false;
        return true;
      }
      return output.includes(OPENSTACK_READY_MARKER) ? true : undefined;
    });
    if (consoleWorks) return;
    // The console can be disabled in Nova: log in over SSH instead, as the original does.
    ctx.log(`No console output for ${what}; waiting for SSH at ${address}...`, 'verbose');
    await poll({ timeoutMs: t.sshMs, intervalMs: t.pollMs, signal, timeoutMessage: () => `cannot connect to server ${what}: cannot ssh to the allocated instance: timeout reached` }, async () => {
      try {
        const s = await dialSsh({ address, username: 'root', password: ctx.password, dialTimeoutMs: 10_000, signal });
        await s.close();
        return true;
      } catch {
        return undefined;
      }
    });
  };

  const machineFor = (system: System, data: Record<string, unknown>, address: string, creds: { username: string; password: string }, earlyUntil: number): Machine =>
    readySshMachine({ system, label: String(data['name']), address, ...creds, data, earlyUntil, discard: () => remove(String(data['id'])) });

  return {
    config,
    async allocate(system, signal) {
      const stop = signal ? AbortSignal.any([signal, ctx.signal]) : ctx.signal;
      await check(stop);
      const flavor = await findFlavor(system.plan || DEFAULT_FLAVOR, stop);
      const networks = await findNetworks(system.networks, stop);
      const image = await findImage(system.image, stop);
      const zones = (await listed<{ availabilityZoneInfo?: { zoneName: string }[] }>(`${session!.compute}/os-availability-zone`, stop))?.availabilityZoneInfo ?? [];
      if (zones.length === 0) throw new FatalError('cannot find any availability zones');
      const groups = system.groups.length > 0 ? await findGroups(system.groups, stop) : undefined;
      const name = instanceName();
      const server = {
        name, imageRef: image.id, flavorRef: flavor.id, availability_zone: zones[0]!.zoneName, networks,
        metadata: { spread: 'true', owner: ownerName(env['USER'] || userInfo().username), reuse: String(ctx.keep), password: ctx.password },
        user_data: Buffer.from(cloudConfig(ctx.password)).toString('base64'),
        ...(groups ? { security_groups: groups } : {}),
      };
      let id: string;
      try {
        id = (await client.json<{ server: { id: string } }>({ method: 'POST', url: `${session!.compute}/servers`, body: { server }, signal: stop })).server.id;
      } catch (err) {
        const e = err as Error;
        const hint = err instanceof ApiError && (err.status === 403 || err.status === 413) && /quota/i.test(e.message) ? ' (delete servers, ask for more quota, or lower workers:)' : '';
        throw new FatalError(`cannot create instance for ${config.name}:${system.name}: ${e.message}${hint}`);
      }
      const what = `${config.name}:${system.name} (${name})`;
      const data = { id, name, flavor: flavor.name, networks: [...system.networks], created: new Date().toISOString() };
      return deleteOnFailure({ what, kind: 'OpenStack server', remove: () => remove(id) }, async () => {
        const t = times();
        ctx.log(`Waiting for ${what} to provision...`, 'verbose');
        await poll({ timeoutMs: t.provisionMs, intervalMs: t.pollMs, signal: stop, timeoutMessage: () => `timeout waiting for ${what} to provision` }, async () => {
          const s = (await get<{ server: ServerDetail }>(serverUrl(id), stop).catch(() => undefined))?.server;
          if (!s || s.status === 'BUILD') return undefined;
          if (s.status !== 'ACTIVE') throw new Error(`cannot use server: status is not active but ${s.status}${s.fault?.message ? ` (${polish(s.fault.message)})` : ''}`);
          return true;
        });
        const onNetwork = system.networks.length > 0 ? ` on network ${JSON.stringify(system.networks[0])}` : '';
        const address = await poll({ timeoutMs: t.addressMs, intervalMs: t.pollMs, signal: stop, timeoutMessage: () => `server ${what} has no address${onNetwork} (check networks:)` },
          async () => serverAddress((await get<{ server: ServerDetail }>(serverUrl(id), stop)).server, system.networks));
        ctx.log(`Waiting for ${what} to boot at ${address}...`);
        await waitBoot(id, what, address, stop);
        const creds = ctx.credentials(system);
        const machine = machineFor(system, data, address, { username: creds.username || 'root', password: creds.password || ctx.password }, Date.now() + EARLY_DIAL_MS);
        ctx.log(`Allocated ${machineName(machine)}.`);
        return machine;
      });
    },

    async reuse(entry: ReuseEntry, system) {
      const id = typeof entry.data?.['id'] === 'string' ? entry.data['id'] : '';
      if (id === '') throw new Error('cannot unmarshal openstack reuse data: no server id');
      return machineFor(system, { ...entry.data }, entry.address, { username: entry.username ?? 'root', password: entry.password }, 0);
    },

    async gc(signal) {
      await check(signal);
      const servers = (await get<{ servers?: ServerDetail[] }>(`${session!.compute}/servers/detail`, signal).catch((err: Error) => {
        throw new Error(`cannot list openstack instances: ${err.message}`);
      }))?.servers ?? [];
      await deleteExpired({
        instances: servers.filter((s) => s.metadata?.['spread'] === 'true'), kind: 'openstack instance', haltMs: config.haltTimeout, log: ctx.log,
        name: (s) => s.name ?? s.id, created: (s) => s.created, label: (s) => s.metadata?.['halt-timeout'], remove: (s) => remove(s.id),
      });
    },
  };
}
