/**
 * A fake of the Compute Engine v1 control plane and of Google's OAuth token
 * endpoint, with real machines behind it (fake-machine.ts), for the google
 * backend's tests. What it checks, as the real services do (Compute Engine
 * API reference: instances.insert/get/list/delete/setMetadata/
 * getSerialPortOutput, zoneOperations.get, images.list, zones.get; OAuth 2.0
 * for server-to-server applications):
 *
 * - tokens: a JWT bearer assertion signed RS256 by the service account's key
 *   (iss, aud = the token URL, cloud-platform scope, iat/exp), or a refresh
 *   token grant with the authorized user's client id and secret; errors
 *   `invalid_grant` / `invalid_client` as Google answers them. API calls need
 *   a token it issued (401 UNAUTHENTICATED otherwise).
 * - instances.insert: unknown fields refused, the name pattern, a machine
 *   type of the zone, one boot disk whose sourceImage exists (name or
 *   family, relative or projects/...), disk size, the default network with a
 *   ONE_TO_ONE_NAT access config, label and tag patterns, metadata keys;
 *   errors as `{"error": {code, message, errors: [{reason}]}}`.
 * - the operation life cycle PENDING -> RUNNING -> DONE (quota failures end
 *   DONE with an error, as Compute Engine reports them), the instance status
 *   PROVISIONING -> STAGING -> RUNNING, and setMetadata's fingerprint check
 *   (412 conditionNotMet).
 * - boot: once RUNNING, the `startup-script` metadata runs as root inside
 *   the machine (unless the image has no guest environment), its output on
 *   serial port 1 like the guest agent's, and serial port 3 is /dev/ttyS2.
 * - list calls are paged (maxResults 2 by default here, so pageToken is used).
 */
import { createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { answer, jsonOf, startFakeApi } from './fake-api.js';
import type { ApiAnswer, ApiCall, ApiRequest } from './fake-api.js';
import { bootMachine } from './fake-machine.js';
import type { FakeMachine } from './fake-machine.js';

export interface FakeImage {
  readonly name: string;
  readonly family?: string;
  readonly description?: string;
  /** No guest environment: startup scripts never run. */
  readonly noAgent?: boolean;
}

export interface FakeGceOptions {
  /** Projects of the account, each with its zones; quota is the number of instances a project may have. */
  readonly projects: Readonly<Record<string, { zones: readonly string[]; quota?: number; images?: readonly FakeImage[] }>>;
  /** Public image projects (ubuntu-os-cloud, ...). */
  readonly publicImages?: Readonly<Record<string, readonly FakeImage[]>>;
  readonly machineTypes?: readonly string[];
  /** @default 2 */
  readonly pageSize?: number;
}

export interface GceInstance {
  readonly name: string;
  readonly project: string;
  readonly zone: string;
  status: string;
  readonly created: string;
  readonly body: Record<string, unknown>;
  labels: Record<string, string>;
  metadata: { fingerprint: string; items: { key: string; value: string }[] };
  machine?: FakeMachine;
  startupOutput?: string;
  deleted: boolean;
}

export interface FakeGce {
  readonly url: string;
  readonly tokenUrl: string;
  readonly calls: ApiCall[];
  readonly instances: Map<string, GceInstance>;
  /** Access tokens handed out (tests check none is printed). */
  readonly tokens: string[];
  serviceAccount(o?: { tokenUri?: string; wrongKey?: boolean }): string;
  authorizedUser(o?: { wrongSecret?: boolean }): string;
  /** The next `n` API calls fail with 503 UNAVAILABLE (Google's transient backend errors). */
  failNext(n: number): void;
  /** An instance record with no machine, created `ageMs` ago (for -gc). */
  seed(o: { project: string; zone: string; name: string; ageMs: number; labels?: Record<string, string> }): void;
  /** Names of instances not deleted. */
  live(): string[];
  /** Wait for pending boots, startup scripts and deletions. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

const fingerprint = () => randomBytes(8).toString('base64');
const gerror = (code: number, message: string, reason: string, status?: string): ApiAnswer =>
  answer(code, { error: { code, message, errors: [{ message, domain: 'global', reason }], ...(status ? { status } : {}) } });
const notFound = (what: string) => gerror(404, `The resource '${what}' was not found`, 'notFound', 'NOT_FOUND');
const invalid = (field: string, value: unknown, why: string) =>
  gerror(400, `Invalid value for field '${field}': '${typeof value === 'string' ? value : JSON.stringify(value)}'. ${why}`, 'invalid', 'INVALID_ARGUMENT');
const LABEL = /^[a-z0-9_-]{0,63}$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const INSERT_FIELDS = new Set(['name', 'machineType', 'minCpuPlatform', 'networkInterfaces', 'disks', 'metadata', 'labels', 'tags', 'shieldedInstanceConfig', 'description', 'scheduling', 'serviceAccounts']);

export async function startFakeGce(o: FakeGceOptions): Promise<FakeGce> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'spread-test@fake-project.iam.gserviceaccount.com';
  const user = { client_id: 'fake-client.apps.googleusercontent.com', client_secret: `secret-${randomBytes(8).toString('hex')}`, refresh_token: `1//refresh-${randomBytes(8).toString('hex')}` };
  const machineTypes = new Set(o.machineTypes ?? ['n1-standard-1', 'n1-standard-2', 'e2-medium']);
  const pageSize = o.pageSize ?? 2;
  const tokens: string[] = [];
  const instances = new Map<string, GceInstance>();
  const operations = new Map<string, Record<string, unknown>>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => {});
  };
  let opCount = 0;
  let failures = 0;

  const imagesOf = (project: string): readonly FakeImage[] | undefined => (o.projects[project] ? o.projects[project].images ?? [] : o.publicImages?.[project]);

  const page = <T>(items: readonly T[], req: ApiRequest, kind: string) => {
    const start = Number(req.url.searchParams.get('pageToken') || 0);
    const max = Number(req.url.searchParams.get('maxResults') || pageSize);
    const slice = items.slice(start, start + max);
    return { kind, items: slice, ...(start + max < items.length ? { nextPageToken: String(start + max) } : {}) };
  };

  const verifyAssertion = (jwt: string, tokenUrl: string): string | undefined => {
    const [h, c, s] = jwt.split('.');
    if (!h || !c || !s) return 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe';
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as { iss?: string; aud?: string; scope?: string; iat?: number; exp?: number };
    if (header.alg !== 'RS256') return 'Invalid JWT: unsupported algorithm';
    if (!createVerify('RSA-SHA256').update(`${h}.${c}`).verify(publicKey, Buffer.from(s, 'base64url'))) return 'Invalid JWT Signature.';
    if (claims.iss !== clientEmail) return 'Invalid JWT: issuer';
    if (claims.aud !== tokenUrl) return 'Invalid JWT: audience';
    const now = Date.now() / 1000;
    if (!claims.iat || !claims.exp || claims.exp <= now || claims.iat > now + 60 || claims.exp - claims.iat > 3600) return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
    if (!claims.scope?.split(' ').includes('https://www.googleapis.com/auth/cloud-platform')) return 'Invalid JWT: scope';
    return undefined;
  };

  const token = (req: ApiRequest, tokenUrl: string): ApiAnswer => {
    const form = new URLSearchParams(req.text);
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return answer(400, { error: 'invalid_request', error_description: 'Invalid content type' });
    const grant = form.get('grant_type');
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const why = verifyAssertion(form.get('assertion') ?? '', tokenUrl);
      if (why) return answer(400, { error: 'invalid_grant', error_description: why });
    } else if (grant === 'refresh_token') {
      if (form.get('client_id') !== user.client_id || form.get('client_secret') !== user.client_secret) return answer(401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
      if (form.get('refresh_token') !== user.refresh_token) return answer(400, { error: 'invalid_grant', error_description: 'Bad Request' });
    } else {
      return answer(400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${grant ?? ''}` });
    }
    const value = `ya29.fake-${randomBytes(12).toString('hex')}`;
    tokens.push(value);
    return answer(200, { access_token: value, expires_in: 3599, token_type: 'Bearer' });
  };

  const operation = (project: string, zone: string, type: string, target: string, done = false) => {
    const name = `operation-${Date.now()}-${++opCount}-${randomBytes(3).toString('hex')}`;
    const op: Record<string, unknown> = {
      kind: 'compute#operation', id: String(opCount), name, zone: `projects/${project}/zones/${zone}`, operationType: type,
      targetLink: `${api.url}/compute/v1/projects/${project}/zones/${zone}/instances/${target}`, status: done ? 'DONE' : 'PENDING',
      progress: done ? 100 : 0, insertTime: new Date().toISOString(), user: clientEmail,
    };
    operations.set(name, op);
    return op;
  };

  const resolveImage = (project: string, source: unknown): FakeImage | undefined => {
    if (typeof source !== 'string') return undefined;
    const m = /^(?:(?:https:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/)?global\/images\/(family\/)?([^/]+)$/.exec(source);
    if (!m) return undefined;
    const images = imagesOf(m[1] ?? project) ?? [];
    return m[2] ? images.find((i) => i.family === m[3]) : images.find((i) => i.name === m[3]);
  };

  const checkInsert = (project: string, zone: string, body: Record<string, unknown>): ApiAnswer | FakeImage => {
    for (const key of Object.keys(body)) {
      if (!INSERT_FIELDS.has(key)) return gerror(400, `Invalid JSON payload received. Unknown name "${key}" at 'resource': Cannot find field.`, 'invalid', 'INVALID_ARGUMENT');
    }
    const name = body['name'];
    if (typeof name !== 'string' || !NAME.test(name)) return invalid('resource.name', name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'");
    if (instances.has(name) && !instances.get(name)!.deleted) return gerror(409, `The resource 'projects/${project}/zones/${zone}/instances/${name}' already exists`, 'alreadyExists', 'ALREADY_EXISTS');
    const type = /^zones\/([^/]+)\/machineTypes\/([^/]+)$/.exec(String(body['machineType']));
    if (!type || type[1] !== zone || !machineTypes.has(type[2]!)) {
      return invalid('resource.machineType', body['machineType'], `Machine type with name '${type?.[2] ?? body['machineType']}' does not exist in zone '${zone}'.`);
    }
    const cpu = body['minCpuPlatform'];
    if (cpu !== undefined && cpu !== 'AUTOMATIC' && !/^(Intel|AMD) /.test(String(cpu))) return invalid('resource.minCpuPlatform', cpu, 'Unknown CPU platform.');
    const disks = body['disks'] as Record<string, unknown>[] | undefined;
    if (!Array.isArray(disks) || disks.filter((d) => d['boot'] === true).length !== 1) return invalid('resource.disks', disks, 'Exactly one boot disk is required.');
    const boot = disks.find((d) => d['boot'] === true)!;
    const init = boot['initializeParams'] as Record<string, unknown> | undefined;
    const image = resolveImage(project, init?.['sourceImage']);
    if (!image) return notFound(String(init?.['sourceImage']));
    const size = init?.['diskSizeGb'];
    if (size !== undefined && !(/^\d+$/.test(String(size)) && Number(size) >= 10)) return invalid('resource.disks[0].initializeParams.diskSizeGb', size, 'Requested disk size cannot be smaller than the image size (10 GB).');
    const nics = body['networkInterfaces'] as Record<string, unknown>[] | undefined;
    if (!Array.isArray(nics) || nics.length !== 1 || nics[0]!['network'] !== 'global/networks/default') return invalid('resource.networkInterfaces[0].network', nics?.[0]?.['network'], 'The referenced network resource cannot be found.');
    const access = nics[0]!['accessConfigs'] as Record<string, unknown>[] | undefined;
    if (!Array.isArray(access) || access[0]?.['type'] !== 'ONE_TO_ONE_NAT') return invalid('resource.networkInterfaces[0].accessConfigs[0].type', access?.[0]?.['type'], 'Must be ONE_TO_ONE_NAT.');
    for (const [k, v] of Object.entries((body['labels'] ?? {}) as Record<string, unknown>)) {
      if (!LABEL_KEY.test(k) || typeof v !== 'string' || !LABEL.test(v)) return invalid('resource.labels', `${k}=${String(v)}`, 'Label keys and values must match [a-z0-9_-].');
    }
    const tags = ((body['tags'] ?? {}) as { items?: unknown[] }).items ?? [];
    if (!tags.every((t) => typeof t === 'string' && NAME.test(t))) return invalid('resource.tags.items', tags, 'Must be a match of regex.');
    const items = ((body['metadata'] ?? {}) as { items?: { key?: unknown; value?: unknown }[] }).items ?? [];
    if (!items.every((i) => typeof i.key === 'string' && /^[a-zA-Z0-9-_]{1,128}$/.test(i.key) && typeof i.value === 'string')) return invalid('resource.metadata', items, 'Metadata keys must match [a-zA-Z0-9-_]{1,128}.');
    return image;
  };

  const boot = async (inst: GceInstance, op: Record<string, unknown>, image: FakeImage): Promise<void> => {
    op['status'] = 'RUNNING';
    inst.status = 'STAGING';
    inst.machine = await bootMachine(inst.name);
    if (inst.deleted) {
      await inst.machine.stop();
      return;
    }
    inst.status = 'RUNNING';
    Object.assign(op, { status: 'DONE', progress: 100, endTime: new Date().toISOString() });
    const script = inst.metadata.items.find((i) => i.key === 'startup-script')?.value;
    if (script && !image.noAgent) {
      const r = await inst.machine.runAsRoot(script, { output: 'ttyS0' });
      inst.startupOutput = r.output;
    }
  };

  const resource = (inst: GceInstance) => ({
    kind: 'compute#instance', id: String(inst.name.length * 7919), name: inst.name, status: inst.status,
    creationTimestamp: inst.created, zone: `${api.url}/compute/v1/projects/${inst.project}/zones/${inst.zone}`,
    machineType: `${api.url}/compute/v1/projects/${inst.project}/${String(inst.body['machineType'])}`,
    labels: inst.labels, metadata: { kind: 'compute#metadata', ...inst.metadata },
    tags: inst.body['tags'], disks: inst.body['disks'],
    networkInterfaces: [{
      network: `${api.url}/compute/v1/projects/${inst.project}/global/networks/default`, networkIP: '10.128.0.2', name: 'nic0',
      accessConfigs: [{ kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: 'External NAT', networkTier: 'PREMIUM', ...(inst.machine ? { natIP: inst.machine.host } : {}) }],
    }],
    selfLink: `${api.url}/compute/v1/projects/${inst.project}/zones/${inst.zone}/instances/${inst.name}`,
  });

  const compute = (req: ApiRequest): ApiAnswer => {
    const auth = /^Bearer (.+)$/.exec(String(req.headers['authorization'] ?? ''));
    if (!auth || !tokens.includes(auth[1]!)) {
      return answer(401, { error: { code: 401, message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }], status: 'UNAUTHENTICATED' } });
    }
    if (failures > 0) {
      failures--;
      return gerror(503, 'Backend Error', 'backendError', 'UNAVAILABLE');
    }
    const path = req.url.pathname.replace(/^\/compute\/v1\//, '');
    const images = /^projects\/([^/]+)\/global\/images$/.exec(path);
    if (images && req.method === 'GET') {
      const list = imagesOf(images[1]!);
      if (!list) return notFound(`projects/${images[1]}`);
      const order = req.url.searchParams.get('orderBy');
      if (order !== null && order !== 'creationTimestamp desc') return gerror(400, `Invalid value for field 'orderBy': '${order}'.`, 'invalid');
      return answer(200, page(list.map((i, n) => ({ kind: 'compute#image', name: i.name, family: i.family, description: i.description, status: 'READY', creationTimestamp: new Date(Date.now() - n * 86400_000).toISOString() })), req, 'compute#imageList'));
    }
    const m = /^projects\/([^/]+)\/zones\/([^/]+)(?:\/(instances|operations)(?:\/([^/]+)(?:\/(serialPort|setMetadata))?)?)?$/.exec(path);
    if (!m) return notFound(path);
    const [, project, zone, kind, name, action] = m as unknown as [string, string, string, string?, string?, string?];
    const proj = o.projects[project];
    if (!proj) return notFound(`projects/${project}`);
    if (!proj.zones.includes(zone)) return notFound(`projects/${project}/zones/${zone}`);
    if (!kind) return req.method === 'GET' ? answer(200, { kind: 'compute#zone', name: zone, status: 'UP' }) : gerror(405, 'Method not allowed', 'badRequest');
    if (kind === 'operations') {
      const op = name ? operations.get(name) : undefined;
      return op ? answer(200, op) : notFound(`projects/${project}/zones/${zone}/operations/${name}`);
    }
    if (!name) {
      if (req.method === 'GET') return answer(200, page([...instances.values()].filter((i) => !i.deleted && i.project === project && i.zone === zone).map(resource), req, 'compute#instanceList'));
      if (req.method !== 'POST') return gerror(405, 'Method not allowed', 'badRequest');
      const body = jsonOf(req) as Record<string, unknown> | undefined;
      if (!body || typeof body !== 'object') return gerror(400, 'Invalid JSON payload received.', 'parseError', 'INVALID_ARGUMENT');
      const image = checkInsert(project, zone, body);
      if ('status' in image) return image;
      const op = operation(project, zone, 'insert', String(body['name']));
      const used = [...instances.values()].filter((i) => !i.deleted && i.project === project).length;
      if (used >= (proj.quota ?? Infinity)) {
        Object.assign(op, { status: 'DONE', progress: 100, error: { errors: [{ code: 'QUOTA_EXCEEDED', message: `Quota 'INSTANCES' exceeded.  Limit: ${proj.quota}.0 in region ${zone.replace(/-[a-z]$/, '')}.` }] } });
        return answer(200, { ...op, status: 'PENDING' });
      }
      const metadata = (body['metadata'] ?? {}) as { items?: { key: string; value: string }[] };
      const inst: GceInstance = {
        name: String(body['name']), project, zone, status: 'PROVISIONING', created: new Date().toISOString(), body, deleted: false,
        labels: { ...(body['labels'] as Record<string, string> | undefined) }, metadata: { fingerprint: fingerprint(), items: [...(metadata.items ?? [])] },
      };
      instances.set(inst.name, inst);
      track(boot(inst, op, image));
      return answer(200, { ...op });
    }
    const inst = instances.get(name);
    if (!inst || inst.deleted || inst.project !== project || inst.zone !== zone) return notFound(`projects/${project}/zones/${zone}/instances/${name}`);
    if (action === 'serialPort' && req.method === 'GET') {
      const port = Number(req.url.searchParams.get('port') ?? 1);
      if (![1, 2, 3, 4].includes(port)) return invalid('port', port, 'Must be between 1 and 4.');
      if (inst.status !== 'RUNNING' || !inst.machine) return gerror(400, `The resource 'projects/${project}/zones/${zone}/instances/${name}' is not ready`, 'resourceNotReady');
      const contents = port === 1 ? inst.machine.serial('ttyS0') : port === 3 ? inst.machine.serial('ttyS2') : '';
      const start = Math.min(Number(req.url.searchParams.get('start') ?? 0), contents.length);
      return answer(200, { kind: 'compute#serialPortOutput', contents: contents.slice(start), start: String(start), next: String(contents.length) });
    }
    if (action === 'setMetadata' && req.method === 'POST') {
      const body = jsonOf(req) as { fingerprint?: string; items?: { key: string; value: string }[] } | undefined;
      if (body?.fingerprint !== inst.metadata.fingerprint) return gerror(412, 'Supplied fingerprint does not match current metadata fingerprint.', 'conditionNotMet', 'FAILED_PRECONDITION');
      inst.metadata = { fingerprint: fingerprint(), items: [...(body.items ?? [])] };
      return answer(200, operation(project, zone, 'setMetadata', name, true));
    }
    if (action) return notFound(path);
    if (req.method === 'GET') return answer(200, resource(inst));
    if (req.method === 'DELETE') {
      inst.deleted = true;
      inst.status = 'STOPPING';
      if (inst.machine) track(inst.machine.stop());
      return answer(200, operation(project, zone, 'delete', name));
    }
    return gerror(405, 'Method not allowed', 'badRequest');
  };

  const api = await startFakeApi((req) => (req.url.pathname === '/token' && req.method === 'POST' ? token(req, `${api.url}/token`) : compute(req)));
  return {
    url: api.url,
    tokenUrl: `${api.url}/token`,
    calls: api.calls,
    instances,
    tokens,
    serviceAccount: (opts = {}) => JSON.stringify({
      type: 'service_account', project_id: 'fake-project', private_key_id: 'k1', client_email: clientEmail,
      private_key: opts.wrongKey ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) : privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_id: '1234', token_uri: opts.tokenUri ?? `${api.url}/token`,
    }),
    authorizedUser: (opts = {}) => JSON.stringify({ type: 'authorized_user', ...user, ...(opts.wrongSecret ? { client_secret: 'wrong' } : {}) }),
    failNext(n) {
      failures = n;
    },
    seed(s) {
      instances.set(s.name, {
        name: s.name, project: s.project, zone: s.zone, status: 'RUNNING', created: new Date(Date.now() - s.ageMs).toISOString(), deleted: false,
        body: { machineType: `zones/${s.zone}/machineTypes/n1-standard-1` }, labels: { ...s.labels }, metadata: { fingerprint: fingerprint(), items: [] },
      });
    },
    live: () => [...instances.values()].filter((i) => !i.deleted).map((i) => i.name),
    async settle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    async stop() {
      for (const inst of instances.values()) if (inst.machine) track(inst.machine.stop());
      await Promise.allSettled([...pending]);
      await api.stop();
    },
  };
}
