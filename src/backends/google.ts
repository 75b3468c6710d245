/**
 * google: Compute Engine instances through the v1 REST API, as the original
 * does (spec §7, §13): `location: project/zone`, a service account or
 * authorized-user JSON `key` (inline, a path, or the application default
 * credentials), the original's image lookup and insert body, a startup
 * script that sets the root password and SSH access and prints a marker on
 * serial port 3, the address of the external NAT, the startup script
 * removed once booted, delete on discard, reuse, and `-gc` by halt-timeout.
 *
 * Endpoints: `endpoint:` (or SPREAD_GOOGLE_API_URL) replaces the API base
 * URL and SPREAD_GOOGLE_TOKEN_URL the OAuth token URL (else the key's
 * `token_uri`), for private endpoints and tests.
 *
 * Deviations: credentials and zone are checked once per backend, and any
 * failure there is one line with what to fix; list calls follow page
 * tokens; `-gc` only touches instances labelled `spread: true`.
 */
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Backend as BackendConfig, System } from '../project/types.js';
import { FatalError, machineName } from './backend.js';
import type { Backend, BackendContext, Machine, ReuseEntry } from './backend.js';
import {
  ApiError, cloudClient, cloudTiming, containsTerms, deleteExpired, deleteOnFailure, instanceName, isInstanceName, ownerName, poll,
  polish, throttleFor, toTerms, UnreachableError,
} from './cloud-request.js';
import type { CloudClient, CloudTiming } from './cloud-request.js';
import { EARLY_DIAL_MS, readySshMachine } from './ssh-ready.js';

export const GOOGLE_READY_MARKER = 'MACHINE-IS-READY';
const DEFAULT_API = 'https://compute.googleapis.com';
const DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const DEFAULT_PLAN = 'n1-standard-1';
const GB = 1024 ** 3;

/** The public image projects tried after the backend's own, by image name prefix. */
export const IMAGE_PROJECTS: readonly (readonly [prefix: string, project: string])[] = [
  ['ubuntu-', 'ubuntu-os-cloud'], ['centos-', 'centos-cloud'], ['debian-', 'debian-cloud'],
  ['opensuse-', 'opensuse-cloud'], ['freebsd-', 'freebsd-org-cloud-dev'],
];

/** Root password, SSH password and root login (also through sshd_config.d), then the marker on ttyS2 (serial port 3). */
export const startupScript = (password: string): string => `#!/bin/bash
echo root:'${password.replace(/'/g, `'\\''`)}' | chpasswd
sed -i 's/^\\s*#\\?\\s*\\(PermitRootLogin\\|PasswordAuthentication\\)\\>.*/\\1 yes/' /etc/ssh/sshd_config
sed -i 's/^PermitRootLogin=/#PermitRootLogin=/g' /etc/ssh/sshd_config.d/* 2>/dev/null || true
sed -i 's/^PasswordAuthentication=/#PasswordAuthentication=/g' /etc/ssh/sshd_config.d/* 2>/dev/null || true
test -d /etc/ssh/sshd_config.d && printf 'PermitRootLogin=yes\\nPasswordAuthentication=yes\\n' > /etc/ssh/sshd_config.d/00-spread.conf
pkill -o -HUP sshd || true
echo '${GOOGLE_READY_MARKER}' > /dev/ttyS2
`;

export interface GoogleImage {
  readonly project: string;
  readonly name: string;
  readonly family: string;
  readonly terms: readonly string[];
}

/** Projects to search for `image`, in order: the one named, else the backend's then the public one for its prefix. */
export const imageProjects = (image: string, backendProject: string): string[] => {
  const slash = image.indexOf('/');
  if (slash >= 0) return [image.slice(0, slash)];
  return [backendProject, ...IMAGE_PROJECTS.filter(([prefix]) => image.startsWith(prefix)).map(([, project]) => project)];
};

/**
 * The original's lookup within one project's images (newest first): an
 * exact name, then an exact family, then the first whose description holds
 * the wanted terms in order. `family` says to boot from the family.
 */
export function matchImage(wanted: string, images: readonly GoogleImage[]): { image: GoogleImage; family: boolean } | undefined {
  const name = wanted.slice(wanted.indexOf('/') + 1);
  const byName = images.find((i) => i.name === name);
  if (byName) return { image: byName, family: false };
  const byFamily = images.find((i) => i.family === name);
  if (byFamily) return { image: byFamily, family: true };
  const terms = toTerms(name);
  const byTerms = images.find((i) => containsTerms(i.terms, terms));
  return byTerms ? { image: byTerms, family: byTerms.family !== '' } : undefined;
}

/** `sourceImage` of the boot disk: relative to the backend project, else under `projects/<p>/`. */
export const sourceImage = (m: { image: GoogleImage; family: boolean }, backendProject: string): string =>
  (m.image.project !== backendProject ? `projects/${m.image.project}/` : '') +
  (m.family ? `global/images/family/${m.image.family}` : `global/images/${m.image.name}`);

// ------------------------------------------------------------- credentials

interface Credentials {
  readonly type: 'service_account' | 'authorized_user';
  readonly json: Record<string, string>;
  readonly source: string;
}

/** The key as written: inline JSON, a path, or (empty) the application default credentials. */
export function readCredentials(key: string, env: Readonly<Record<string, string | undefined>>): Credentials {
  let text = key;
  let source = 'the key: field';
  if (!key.trimStart().startsWith('{')) {
    const adc = env['GOOGLE_APPLICATION_CREDENTIALS'] || join(env['HOME'] || homedir(), '.config/gcloud/application_default_credentials.json');
    const path = key === '' ? adc : key.replace(/^~(?=\/)/, env['HOME'] || homedir());
    source = key === '' ? `the application default credentials (${path})` : path;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new FatalError(`cannot read Google credentials from ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (set key: to a service account JSON file, or run gcloud auth application-default login)`);
    }
  }
  let json: Record<string, string>;
  try {
    json = JSON.parse(text) as Record<string, string>;
  } catch {
    throw new FatalError(`cannot parse Google credentials from ${source}: not JSON`);
  }
  if (json['type'] === 'service_account' && json['client_email'] && json['private_key']) return { type: 'service_account', json, source };
  if (json['type'] === 'authorized_user' && json['client_id'] && json['client_secret'] && json['refresh_token']) return { type: 'authorized_user', json, source };
  throw new FatalError(`cannot use Google credentials from ${source}: expected a service_account (client_email, private_key) or authorized_user (client_id, client_secret, refresh_token) JSON, got type ${JSON.stringify(json['type'] ?? '')}`);
}

const base64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** The signed assertion of the OAuth JWT bearer grant (RFC 7523) for a service account. */
export function serviceAccountAssertion(json: Record<string, string>, tokenUrl: string, nowMs = Date.now()): string {
  const iat = Math.floor(nowMs / 1000);
  const header = { alg: 'RS256', typ: 'JWT', ...(json['private_key_id'] ? { kid: json['private_key_id'] } : {}) };
  const claims = { iss: json['client_email'], scope: SCOPE, aud: tokenUrl, iat, exp: iat + 3600 };
  const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(json['private_key']!);
  return `${unsigned}.${base64url(signature)}`;
}

// ------------------------------------------------------------------ backend

interface GoogleError { error?: { code?: number; message?: string; status?: string; errors?: { message?: string; reason?: string }[] } }
interface Operation { name: string; status?: string; error?: { errors?: { code?: string; message?: string }[] } }
interface Instance {
  name: string; status?: string; creationTimestamp?: string; machineType?: string;
  labels?: Record<string, string>;
  networkInterfaces?: { accessConfigs?: { type?: string; natIP?: string }[] }[];
  metadata?: { fingerprint?: string; items?: { key: string; value: string }[] };
}

/** Advice appended to errors users can fix, by the API's reason or code. */
const HINTS: readonly (readonly [RegExp, string])[] = [
  [/QUOTA_EXCEEDED|quotaExceeded|[Qq]uota .* exceeded/, 'ask for more quota, lower workers:, or pick a smaller plan:'],
  [/ZONE_RESOURCE_POOL_EXHAUSTED|resource pool exhausted/i, 'try again later or another zone in location:'],
  [/machineType|[Mm]achine type/, 'check plan: against `gcloud compute machine-types list`'],
];
const withHint = (message: string): string => {
  const hint = HINTS.find(([re]) => re.test(message))?.[1];
  return hint ? `${message} (${hint})` : message;
};

export interface GoogleDeps {
  /** SPREAD_GOOGLE_API_URL, SPREAD_GOOGLE_TOKEN_URL, SPREAD_CLOUD_TIMING, GOOGLE_APPLICATION_CREDENTIALS, HOME, USER. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function googleBackend(config: BackendConfig, ctx: BackendContext, deps: GoogleDeps = {}): Backend {
  const env = deps.env ?? process.env;
  const [gproject = '', zone = ''] = config.location.split(/\/(.*)/s, 2);
  const api = (config.endpoint || env['SPREAD_GOOGLE_API_URL'] || DEFAULT_API).replace(/\/+$/, '');
  const projectUrl = (project: string) => `${api}/compute/v1/projects/${encodeURIComponent(project)}`;
  const zoneUrl = `${projectUrl(gproject)}/zones/${encodeURIComponent(zone)}`;
  const label = (system: System | undefined, name: string) => (system ? `${config.name}:${system.name} (${name})` : name);
  let timing: CloudTiming | undefined;
  const times = (): CloudTiming => (timing ??= cloudTiming(env['SPREAD_CLOUD_TIMING']));

  let token: { value: string; until: number } | undefined;
  let credentials: Credentials | undefined;
  const secrets = () => [ctx.password, token?.value ?? '', credentials?.json['client_secret'] ?? '', credentials?.json['refresh_token'] ?? ''];
  const errorMessage = (status: number, body: unknown): string => {
    const e = (body as GoogleError | undefined)?.error;
    const message = e?.message || e?.errors?.find((x) => x.message)?.message;
    if (message) return polish(message);
    const b = body as { error?: string; error_description?: string } | undefined;
    if (typeof b?.error === 'string') return `${b.error}${b.error_description ? `: ${b.error_description}` : ''}`;
    return `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  };
  const throttle = throttleFor('google');
  const bare = () => cloudClient({ api: 'google', log: ctx.log, secrets, errorMessage, throttle, timing: times() });

  const fetchToken = async (signal?: AbortSignal): Promise<string> => {
    credentials ??= readCredentials(ctx.key(config), env);
    const c = credentials;
    const tokenUrl = env['SPREAD_GOOGLE_TOKEN_URL'] || c.json['token_uri'] || DEFAULT_TOKEN_URL;
    const form: Record<string, string> = c.type === 'service_account'
      ? { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: serviceAccountAssertion(c.json, tokenUrl) }
      : { grant_type: 'refresh_token', client_id: c.json['client_id']!, client_secret: c.json['client_secret']!, refresh_token: c.json['refresh_token']! };
    const r = await bare().json<{ access_token?: string; expires_in?: number }>({ method: 'POST', url: tokenUrl, form, anonymous: true, ...(signal ? { signal } : {}) });
    if (!r?.access_token) throw new Error('the token answer has no access_token');
    token = { value: r.access_token, until: Date.now() + Math.max(60, (r.expires_in ?? 3600) - 60) * 1000 };
    return token.value;
  };

  const client: CloudClient = cloudClient({
    api: 'google', log: ctx.log, secrets, errorMessage, throttle, timing: times(),
    authorize: async (signal) => ({ authorization: `Bearer ${token && token.until > Date.now() ? token.value : await fetchToken(signal)}` }),
    reauthorize: async () => { token = undefined; return true; },
    // Google has answered failures as a 200-range body with status INTERNAL: retry those as 5xx.
    isTransient: (_, body) => (body as GoogleError | undefined)?.error?.status === 'INTERNAL',
  });

  // Location, credentials and zone, checked once: every failure here is fatal and said once.
  let checked: Promise<void> | undefined;
  const check = (signal?: AbortSignal): Promise<void> => (checked ??= (async () => {
    if (gproject === '' || zone === '') {
      throw new FatalError(`location for ${JSON.stringify(config.name)} backend must use the <google project>/<compute zone> format, not ${JSON.stringify(config.location)}`);
    }
    try {
      await fetchToken(signal);
    } catch (err) {
      if (err instanceof FatalError) throw err;
      const source = credentials?.source === 'the key: field' ? 'key:' : credentials?.source ?? 'key:';
      const hint = err instanceof UnreachableError ? 'check the network, or SPREAD_GOOGLE_TOKEN_URL' : `check that ${source} holds a valid service account or authorized user key`;
      throw new FatalError(`cannot authenticate to Google with ${credentials?.source ?? 'the credentials'}: ${(err as Error).message} (${hint})`);
    }
    try {
      await client.request({ url: zoneUrl, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) throw new FatalError(`unknown zone ${JSON.stringify(zone)} in Google project ${JSON.stringify(gproject)}: ${err.message} (check location: project/zone)`);
      if (err instanceof UnreachableError) throw new FatalError(`${err.message} (check the network, or endpoint:/SPREAD_GOOGLE_API_URL)`);
      throw new FatalError(`cannot use Google project ${JSON.stringify(gproject)} zone ${JSON.stringify(zone)}: ${(err as Error).message}`);
    }
  })());

  const listAll = async <T>(url: string, signal?: AbortSignal): Promise<T[]> => {
    const items: T[] = [];
    let page = '';
    do {
      const sep = url.includes('?') ? '&' : '?';
      const r = await client.json<{ items?: T[]; nextPageToken?: string }>({ url: page ? `${url}${sep}pageToken=${encodeURIComponent(page)}` : url, ...(signal ? { signal } : {}) });
      items.push(...(r?.items ?? []));
      page = r?.nextPageToken ?? '';
    } while (page);
    return items;
  };

  // Each project's images are listed once per run.
  const imageLists = new Map<string, Promise<GoogleImage[]>>();
  const projectImages = (project: string, signal?: AbortSignal): Promise<GoogleImage[]> => {
    let list = imageLists.get(project);
    if (!list) {
      list = listAll<{ name: string; family?: string; description?: string }>(`${projectUrl(project)}/global/images?orderBy=creationTimestamp%20desc`, signal)
        .then((items) => items.map((i) => ({ project, name: i.name, family: i.family ?? '', terms: toTerms(i.description ?? '') })))
        .catch((err: Error) => { throw new FatalError(`cannot retrieve Google images for project ${JSON.stringify(project)}: ${err.message}`); });
      imageLists.set(project, list);
    }
    return list;
  };

  const findImage = async (system: System, signal?: AbortSignal) => {
    const projects = imageProjects(system.image, gproject);
    for (const project of projects) {
      const found = matchImage(system.image, await projectImages(project, signal));
      if (found) return found;
    }
    throw new FatalError(`cannot find any Google image matching ${JSON.stringify(system.image)} on project "${projects.join('" or "')}" (check image: of the system, or write it as project/name)`);
  };

  const operationDone = async (op: Operation, what: string, signal: AbortSignal): Promise<void> => {
    const t = times();
    await poll({ timeoutMs: t.provisionMs, intervalMs: t.pollMs, signal, timeoutMessage: () => `timeout waiting for ${what}` }, async () => {
      const now = op.status === 'DONE' ? op : await client.json<Operation>({ url: `${zoneUrl}/operations/${encodeURIComponent(op.name)}`, signal });
      if (now.status !== 'DONE') return undefined;
      const failure = now.error?.errors?.find((e) => e.message);
      if (failure) throw new Error(withHint(`${polish(failure.message!)}${failure.code ? ` [${failure.code}]` : ''}`));
      return true;
    });
  };

  const natAddress = (instance: Instance): string | undefined => {
    for (const iface of instance.networkInterfaces ?? []) {
      for (const access of iface.accessConfigs ?? []) if (access.type === 'ONE_TO_ONE_NAT' && access.natIP) return access.natIP;
    }
    return undefined;
  };

  const waitBoot = async (name: string, what: string, signal: AbortSignal): Promise<void> => {
    const t = times();
    let next = '0';
    let tail = '';
    await poll({
      timeoutMs: t.bootMs ?? 180_000, intervalMs: t.pollMs, signal,
      timeoutMessage: () => `cannot find ready marker in console output for ${what} (the image must run GCE startup scripts and have /dev/ttyS2)`,
      onSlow: () => ctx.log(`Server ${what} is taking a while to boot...`),
    }, async () => {
      const r = await client.json<{ contents?: string; next?: string }>({ url: `${zoneUrl}/instances/${name}/serialPort?port=3&start=${next}`, signal });
      tail += r?.contents ?? '';
      next = r?.next ?? next;
      if (tail.includes(GOOGLE_READY_MARKER)) return true;
      tail = tail.slice(-GOOGLE_READY_MARKER.length);
      return undefined;
    });
  };

  const dropStartupScript = async (name: string, signal: AbortSignal): Promise<void> => {
    const instance = await client.json<Instance>({ url: `${zoneUrl}/instances/${name}`, signal });
    const items = instance.metadata?.items ?? [];
    if (!items.some((i) => i.key === 'startup-script')) return;
    await client.request({ method: 'POST', url: `${zoneUrl}/instances/${name}/setMetadata`, signal,
      body: { fingerprint: instance.metadata?.fingerprint, items: items.filter((i) => i.key !== 'startup-script') } });
  };

  const remove = async (name: string): Promise<void> => {
    if (!isInstanceName(name)) throw new Error(`cannot deallocate Google server ${name}: invalid Google machine name for spread`);
    try {
      await client.request({ method: 'DELETE', url: `${zoneUrl}/instances/${name}` });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;
      throw new Error(`cannot deallocate Google server ${name}: ${(err as Error).message}`);
    }
  };

  const machineFor = (system: System, name: string, address: string, creds: { username: string; password: string }, data: Record<string, unknown>, earlyUntil: number): Machine =>
    readySshMachine({ system, label: name, address, ...creds, data, earlyUntil, discard: () => remove(name) });

  const insertBody = (system: System, name: string, image: string) => {
    const labels: Record<string, string> = { spread: 'true', owner: ownerName(env['USER'] || userInfo().username), reuse: String(ctx.keep) };
    if (/^[a-z0-9_-]{1,63}$/.test(ctx.password)) labels['password'] = ctx.password;
    const disk: Record<string, unknown> = { sourceImage: image };
    if (system.storage === 0) disk['diskSizeGb'] = '10';
    else if (system.storage > 0) disk['diskSizeGb'] = String(Math.floor(system.storage / GB));
    return {
      name,
      machineType: `zones/${zone}/machineTypes/${system.plan || DEFAULT_PLAN}`,
      minCpuPlatform: system.cpuFamily || 'AUTOMATIC',
      networkInterfaces: [{ accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }], network: 'global/networks/default' }],
      disks: [{ autoDelete: true, boot: true, type: 'PERSISTENT', initializeParams: disk }],
      metadata: { items: [{ key: 'startup-script', value: startupScript(ctx.password) }] },
      labels,
      tags: { items: ['spread'] },
      ...(system.secureBoot ? { shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true } } : {}),
    };
  };

  return {
    config,
    async allocate(system, signal) {
      const stop = signal ? AbortSignal.any([signal, ctx.signal]) : ctx.signal;
      await check(stop);
      const found = await findImage(system, stop);
      const image = sourceImage(found, gproject);
      ctx.log(`System ${config.name}:${system.name} will use Google image ${image}`, 'debug');
      const name = instanceName();
      const what = label(system, name);
      let op: Operation;
      try {
        op = await client.json<Operation>({ method: 'POST', url: `${zoneUrl}/instances`, body: insertBody(system, name, image), signal: stop });
      } catch (err) {
        throw new FatalError(`cannot allocate new Google server for ${system.name}: ${withHint((err as Error).message)}`);
      }
      const created = new Date().toISOString();
      return deleteOnFailure({ what, kind: 'Google server', remove: () => remove(name) }, async () => {
        await operationDone(op, `${what} to provision`, stop);
        const address = natAddress(await client.json<Instance>({ url: `${zoneUrl}/instances/${name}`, signal: stop }));
        if (!address) throw new Error(`cannot find IP address in Google server ${what} details (it needs an external NAT address)`);
        ctx.log(`Waiting for ${what} to boot at ${address}...`);
        await waitBoot(name, what, stop);
        await dropStartupScript(name, stop);
        const creds = ctx.credentials(system);
        const machine = machineFor(system, name, address, { username: creds.username || 'root', password: creds.password || ctx.password },
          { name, plan: system.plan || DEFAULT_PLAN, created }, Date.now() + EARLY_DIAL_MS);
        ctx.log(`Allocated ${machineName(machine)}.`);
        return machine;
      });
    },

    async reuse(entry: ReuseEntry, system) {
      const name = typeof entry.data?.['name'] === 'string' ? entry.data['name'] : '';
      if (name === '') throw new Error('cannot unmarshal Google reuse data: no instance name');
      return machineFor(system, name, entry.address, { username: entry.username ?? 'root', password: entry.password }, { ...entry.data }, 0);
    },

    async gc(signal) {
      await check(signal);
      const instances = await listAll<Instance>(`${zoneUrl}/instances`, signal).catch((err: Error) => {
        throw new Error(`cannot get instances list: ${err.message}`);
      });
      let warned = false;
      const ours = instances.filter((i) => {
        if (isInstanceName(i.name) && i.labels?.['spread'] === 'true') return true;
        if (!warned) ctx.log('WARNING: Some Google servers ignored due to unsafe labels.');
        warned = true;
        return false;
      });
      await deleteExpired({
        instances: ours, kind: 'Google server', haltMs: config.haltTimeout, log: ctx.log,
        name: (i) => i.name, created: (i) => i.creationTimestamp, label: (i) => i.labels?.['halt-timeout'], remove: (i) => remove(i.name),
      });
    },
  };
}
