/**
 * A fake OpenStack control plane (Keystone v3, Nova v2.1, Glance v2,
 * Neutron v2.0) with real machines behind it (fake-machine.ts), for the
 * openstack backend's tests. What it checks, as the real services do (from
 * their API references):
 *
 * - Keystone: the version document (media type identity-v3), password
 *   authentication with user and project scoped in a domain, 401 with
 *   `{"error": {code, title, message}}` on bad credentials, the token in
 *   X-Subject-Token and a service catalog per region; other services need
 *   that token in X-Auth-Token (401 otherwise).
 * - Nova POST /servers: additional properties refused, name, an existing
 *   imageRef, flavorRef, availability zone, networks and security groups,
 *   string metadata of at most 255 characters, base64 user_data; quota as
 *   403 `{"forbidden": ...}`; 202 with the id. The server goes BUILD ->
 *   ACTIVE with an address on each network (none on a network without
 *   DHCP), its user data is run by cloud-init inside the machine (only when
 *   it starts with #cloud-config, and only on images with cloud-init), and
 *   os-getConsoleOutput serves /dev/ttyS0 (409 while building; 501 on
 *   images whose console is disabled).
 * - Glance pages its image list (2 per page here) with `next` links.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parse } from 'yaml';
import { answer, jsonOf, startFakeApi } from './fake-api.js';
import type { ApiAnswer, ApiCall, ApiRequest } from './fake-api.js';
import { bootMachine } from './fake-machine.js';
import type { FakeMachine } from './fake-machine.js';

export interface FakeOsImage {
  readonly name: string;
  readonly created?: string;
  /** No cloud-init: the user data is never run. */
  readonly noCloudInit?: boolean;
  /** The console log is disabled (501), as some Nova drivers are. */
  readonly noConsole?: boolean;
}

export interface FakeOpenstackOptions {
  readonly user: string;
  readonly password: string;
  /** Project name -> quota of instances. */
  readonly projects: Readonly<Record<string, { quota?: number }>>;
  readonly region: string;
  readonly images: readonly FakeOsImage[];
  readonly flavors?: readonly string[];
  /** Networks; `dhcp: false` gives servers no address there. */
  readonly networks: readonly { name: string; external?: boolean; dhcp?: boolean }[];
  readonly groups?: readonly string[];
}

export interface OsServer {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  status: string;
  readonly created: string;
  readonly body: Record<string, unknown>;
  readonly metadata: Record<string, string>;
  readonly networks: readonly string[];
  machine?: FakeMachine;
  cloudInitOutput?: string;
  deleted: boolean;
}

export interface FakeOpenstack {
  /** The Keystone v3 URL, what `endpoint:` says. */
  readonly endpoint: string;
  /** The service root without a version (a GET answers 300 with the versions). */
  readonly root: string;
  readonly calls: ApiCall[];
  readonly servers: Map<string, OsServer>;
  readonly tokens: string[];
  seed(o: { project: string; name: string; ageMs: number; metadata: Record<string, string> }): void;
  /** Names of the servers not deleted. */
  live(): string[];
  settle(): Promise<void>;
  stop(): Promise<void>;
}

const UNAUTHORIZED: ApiAnswer = answer(401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
const bad = (message: string) => answer(400, { badRequest: { code: 400, message } });
const notFound = (message: string) => answer(404, { itemNotFound: { code: 404, message } });
const SERVER_FIELDS = new Set(['name', 'imageRef', 'flavorRef', 'availability_zone', 'networks', 'metadata', 'user_data', 'security_groups', 'key_name', 'config_drive', 'block_device_mapping_v2', 'min_count', 'max_count']);

export async function startFakeOpenstack(o: FakeOpenstackOptions): Promise<FakeOpenstack> {
  const tokens: string[] = [];
  const tokenProject = new Map<string, string>();
  const servers = new Map<string, OsServer>();
  const images = o.images.map((i, n) => ({ ...i, id: randomUUID(), created: i.created ?? new Date(Date.UTC(2024, 0, 1 + n)).toISOString().replace('.000', '') }));
  const flavors = (o.flavors ?? ['m1.small', 'm1.medium', 'm1.large']).map((name, n) => ({ id: String(n + 1), name }));
  const networks = o.networks.map((net) => ({ ...net, id: randomUUID() }));
  const groups = (o.groups ?? ['default']).map((name) => ({ id: randomUUID(), name }));
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => {});
  };

  const versionDoc = (base: string) => ({
    id: 'v3.14', status: 'stable', updated: '2020-04-07T00:00:00Z', links: [{ rel: 'self', href: `${base}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });

  const authenticate = (req: ApiRequest, base: string): ApiAnswer => {
    const body = jsonOf(req) as { auth?: { identity?: { methods?: string[]; password?: { user?: { name?: string; password?: string; domain?: { id?: string; name?: string } } } }; scope?: { project?: { name?: string; domain?: { id?: string; name?: string } } } } } | undefined;
    const identity = body?.auth?.identity;
    if (!identity?.methods?.includes('password') || !identity.password?.user) return answer(400, { error: { code: 400, title: 'Bad Request', message: "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect." } });
    const u = identity.password.user;
    const inDefault = (d?: { id?: string; name?: string }) => d?.id === 'default' || d?.name === 'Default';
    if (u.name !== o.user || u.password !== o.password || !inDefault(u.domain)) return UNAUTHORIZED;
    const scope = body?.auth?.scope?.project;
    if (!scope?.name || !o.projects[scope.name] || !inDefault(scope.domain)) return UNAUTHORIZED;
    const token = `gAAAAA${randomBytes(24).toString('base64url')}`;
    tokens.push(token);
    tokenProject.set(token, scope.name);
    const endpoint = (type: string, name: string, path: string) => ({
      type, name, id: randomUUID(),
      endpoints: ['public', 'internal'].map((iface) => ({ id: randomUUID(), interface: iface, region: o.region, region_id: o.region, url: `${base}${path}` })),
    });
    return answer(201, {
      token: {
        methods: ['password'], expires_at: new Date(Date.now() + 3600_000).toISOString(), issued_at: new Date().toISOString(),
        user: { id: 'u1', name: o.user, domain: { id: 'default', name: 'Default' } },
        project: { id: `p-${scope.name}`, name: scope.name, domain: { id: 'default', name: 'Default' } },
        catalog: [endpoint('identity', 'keystone', '/v3'), endpoint('compute', 'nova', '/compute/v2.1'), endpoint('image', 'glance', '/image'), endpoint('network', 'neutron', '/network')],
      },
    }, { 'X-Subject-Token': token });
  };

  const serverView = (s: OsServer) => ({
    id: s.id, name: s.name, status: s.status, created: s.created, updated: s.created, tenant_id: `p-${s.project}`, user_id: 'u1',
    metadata: s.metadata, flavor: { id: s.body['flavorRef'] }, image: { id: s.body['imageRef'] },
    'OS-EXT-AZ:availability_zone': s.body['availability_zone'] ?? 'nova',
    addresses: s.machine && s.status === 'ACTIVE'
      ? Object.fromEntries(s.networks.filter((n) => networks.find((x) => x.name === n)?.dhcp !== false).map((n) => [n, [{ addr: s.machine!.host, version: 4, 'OS-EXT-IPS:type': 'fixed' }]]))
      : {},
  });

  /** cloud-init, as far as spread needs it: a #cloud-config with runcmd, its progress on the console. */
  const cloudInit = async (s: OsServer, userData: string | undefined): Promise<void> => {
    const m = s.machine!;
    const say = (line: string) => m.runAsRoot(`echo ${JSON.stringify(`[   12.345678] cloud-init[1042]: ${line}`)} > /dev/ttyS0`);
    await say("Cloud-init v. 24.1.3 running 'init' at boot.");
    const text = userData === undefined ? '' : Buffer.from(userData, 'base64').toString('utf8');
    if (!text.startsWith('#cloud-config\n')) {
      if (text) await say('Unhandled non-multipart (text/x-not-multipart) userdata');
    } else {
      const config = parse(text) as { runcmd?: (string | string[])[] } | null;
      const quote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;
      const lines = (config?.runcmd ?? []).map((c) => (Array.isArray(c) ? c.map(quote).join(' ') : c));
      const r = await m.runAsRoot(`#!/bin/sh\n${lines.join('\n')}\n`, { shell: '/bin/sh' });
      s.cloudInitOutput = r.output;
    }
    await say("Cloud-init v. 24.1.3 finished. Datasource DataSourceOpenStackLocal.");
  };

  const boot = async (s: OsServer, image: (typeof images)[number]): Promise<void> => {
    s.machine = await bootMachine(s.name);
    if (s.deleted) return void (await s.machine.stop());
    s.status = 'ACTIVE';
    if (!image.noCloudInit) await cloudInit(s, s.body['user_data'] as string | undefined);
  };

  const createServer = (req: ApiRequest, project: string): ApiAnswer => {
    const server = (jsonOf(req) as { server?: Record<string, unknown> } | undefined)?.server;
    if (!server || typeof server !== 'object') return bad("Invalid input for field/attribute server. Value: None. 'server' is a required property");
    for (const key of Object.keys(server)) if (!SERVER_FIELDS.has(key)) return bad(`Additional properties are not allowed ('${key}' was unexpected)`);
    const name = server['name'];
    if (typeof name !== 'string' || name.length < 1 || name.length > 255) return bad(`Invalid input for field/attribute name. Value: ${String(name)}.`);
    const image = images.find((i) => i.id === server['imageRef']);
    if (!image) return bad('Can not find requested image');
    if (!flavors.some((f) => f.id === server['flavorRef'])) return bad('Flavor ' + String(server['flavorRef']) + ' could not be found.');
    if (server['availability_zone'] !== undefined && server['availability_zone'] !== 'nova') return bad('The requested availability zone is not available');
    const nets = server['networks'];
    if (!Array.isArray(nets) || nets.length === 0) return bad('Invalid input for field/attribute networks.');
    const names: string[] = [];
    for (const n of nets as { uuid?: string }[]) {
      const found = networks.find((x) => x.id === n.uuid);
      if (!found) return bad(`Network ${String(n.uuid)} could not be found.`);
      if (found.external) return answer(403, { forbidden: { code: 403, message: `It is not allowed to create an interface on external network ${found.id}` } });
      names.push(found.name);
    }
    const metadata = (server['metadata'] ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string' || v.length > 255 || k.length > 255 || k === '') return bad(`Invalid input for field/attribute metadata. Value: {'${k}': ${JSON.stringify(v)}}.`);
    }
    const userData = server['user_data'];
    if (userData !== undefined && (typeof userData !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(userData) || userData.length % 4 !== 0 || userData.length > 65535)) {
      return bad(`Invalid input for field/attribute user_data. Value: ${String(userData).slice(0, 20)}. '${String(userData).slice(0, 20)}' is not a 'base64'`);
    }
    for (const g of (server['security_groups'] ?? []) as { name?: string }[]) {
      if (!groups.some((x) => x.name === g.name)) return bad(`Security group ${String(g.name)} not found for project p-${project}.`);
    }
    const used = [...servers.values()].filter((s) => !s.deleted && s.project === project).length;
    const quota = o.projects[project]?.quota ?? Infinity;
    if (used >= quota) return answer(403, { forbidden: { code: 403, message: `Quota exceeded for instances: Requested 1, but already used ${used} of ${quota} instances` } });
    const s: OsServer = {
      id: randomUUID(), name, project, status: 'BUILD', created: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), body: server,
      metadata: metadata as Record<string, string>, networks: names, deleted: false,
    };
    servers.set(s.id, s);
    track(boot(s, image));
    return answer(202, { server: { id: s.id, links: [], 'OS-DCF:diskConfig': 'MANUAL', security_groups: [{ name: 'default' }], adminPass: randomBytes(9).toString('base64url') } });
  };

  const compute = (req: ApiRequest, path: string, project: string): ApiAnswer => {
    if (path === '/flavors' || path === '/flavors/detail') return answer(200, { flavors: flavors.map((f) => ({ ...f, links: [] })) });
    if (path === '/os-availability-zone') return answer(200, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] });
    if (path === '/servers' && req.method === 'POST') return createServer(req, project);
    const mine = [...servers.values()].filter((s) => !s.deleted && s.project === project);
    if (path === '/servers/detail' && req.method === 'GET') return answer(200, { servers: mine.map(serverView) });
    const m = /^\/servers\/([^/]+)(\/action)?$/.exec(path);
    const s = m ? mine.find((x) => x.id === m[1]) : undefined;
    if (!m) return notFound(`Resource ${path} could not be found.`);
    if (!s) return notFound(`Instance ${m[1]} could not be found.`);
    if (m[2] && req.method === 'POST') {
      const action = jsonOf(req) as Record<string, unknown> | undefined;
      const args = action?.['os-getConsoleOutput'];
      if (!args || typeof args !== 'object') return bad('There is no such action');
      const length = (args as { length?: unknown }).length;
      if (length !== undefined && length !== null && !Number.isInteger(Number(length))) return bad("Invalid input for field/attribute length.");
      const image = images.find((i) => i.id === s.body['imageRef'])!;
      if (image.noConsole) return answer(501, { notImplemented: { code: 501, message: 'Unable to get console log: the console is disabled.' } });
      if (s.status !== 'ACTIVE' || !s.machine) return answer(409, { conflictingRequest: { code: 409, message: `Cannot 'os-getConsoleOutput' instance ${s.id} while it is in vm_state building` } });
      return answer(200, { output: s.machine.serial('ttyS0') });
    }
    if (req.method === 'GET') return answer(200, { server: serverView(s) });
    if (req.method === 'DELETE') {
      s.deleted = true;
      s.status = 'DELETED';
      if (s.machine) track(s.machine.stop());
      return answer(204);
    }
    return answer(405, { error: { code: 405, message: 'Method not allowed' } });
  };

  const glance = (req: ApiRequest, path: string): ApiAnswer => {
    if (path !== '/v2/images') return answer(404, { message: 'Not found' });
    const limit = Math.min(Number(req.url.searchParams.get('limit') ?? 25), 2);
    const marker = req.url.searchParams.get('marker');
    const start = marker ? images.findIndex((i) => i.id === marker) + 1 : 0;
    const page = images.slice(start, start + limit);
    return answer(200, {
      images: page.map((i) => ({ id: i.id, name: i.name, status: 'active', created_at: i.created, visibility: 'public' })),
      first: `/v2/images?limit=${limit}`, schema: '/v2/schemas/images',
      ...(start + limit < images.length ? { next: `/v2/images?marker=${page[page.length - 1]!.id}&limit=${limit}` } : {}),
    });
  };

  const neutron = (path: string): ApiAnswer => {
    if (path === '/v2.0/networks') return answer(200, { networks: networks.map((n) => ({ id: n.id, name: n.name, status: 'ACTIVE', 'router:external': n.external ?? false, subnets: [] })) });
    if (path === '/v2.0/security-groups') return answer(200, { security_groups: groups.map((g) => ({ ...g, tenant_id: 'p' })) });
    return answer(404, { NeutronError: { type: 'HTTPNotFound', message: `The resource could not be found.`, detail: '' } });
  };

  const api = await startFakeApi((req) => {
    const path = req.url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/' && req.method === 'GET') return answer(300, { versions: { values: [versionDoc(api.url)] } });
    if (path === '/v3' && req.method === 'GET') return answer(200, { version: versionDoc(api.url) });
    if (path === '/v3/auth/tokens' && req.method === 'POST') return authenticate(req, api.url);
    const token = String(req.headers['x-auth-token'] ?? '');
    const project = tokenProject.get(token);
    if (!project) return UNAUTHORIZED;
    if (path.startsWith('/compute/v2.1/')) return compute(req, path.slice('/compute/v2.1'.length), project);
    if (path.startsWith('/image/')) return glance(req, path.slice('/image'.length));
    if (path.startsWith('/network/')) return neutron(path.slice('/network'.length));
    return answer(404, { error: { code: 404, message: 'Not found' } });
  });

  return {
    endpoint: `${api.url}/v3`,
    root: api.url,
    calls: api.calls,
    servers,
    tokens,
    seed(s) {
      const id = randomUUID();
      servers.set(id, {
        id, name: s.name, project: s.project, status: 'ACTIVE', created: new Date(Date.now() - s.ageMs).toISOString().replace(/\.\d+Z$/, 'Z'),
        body: {}, metadata: s.metadata, networks: [], deleted: false,
      });
    },
    live: () => [...servers.values()].filter((s) => !s.deleted).map((s) => s.name),
    async settle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    async stop() {
      for (const s of servers.values()) if (s.machine) track(s.machine.stop());
      await Promise.allSettled([...pending]);
      await api.stop();
    },
  };
}
