/**
 * What the cloud backends (google, openstack) share, so that each backend
 * file holds only what is specific to its API (style §20): authenticated
 * JSON requests with the original's retries on 5xx, a throttle (p-queue:
 * the original's 10 calls a second), and secrets redacted from every log
 * line and error; polling with the original's intervals and limits; the
 * time-stamp instance names both clouds use; term matching of image names;
 * and the halt-timeout rule of `-gc`.
 *
 * Written over Node's fetch rather than an SDK: both APIs are a handful of
 * JSON calls, and fetch honours NODE_EXTRA_CA_CERTS (private clouds, tests).
 * TLS verification is never turned off here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { parseGoDuration } from '../project/duration.js';
import { FatalError } from './backend.js';

export type LogFn = (message: string, level?: 'info' | 'verbose' | 'debug') => void;

/**
 * Waits and poll intervals of the cloud backends. The defaults are the
 * original's. `SPREAD_CLOUD_TIMING` (a test hook, documented in
 * docs/backends.md) overrides them: `poll=50ms,boot=20s`.
 */
export interface CloudTiming {
  /** Between two polls of an operation, a server, a console. @default 5s */
  readonly pollMs: number;
  /** Operation (google) or BUILD status (openstack) to finish. @default 3m */
  readonly provisionMs: number;
  /** The ready marker on the serial console. @default 3m (google), 2m (openstack) */
  readonly bootMs?: number;
  /** openstack: the server to have an address. @default 30s */
  readonly addressMs: number;
  /** openstack: one console fetch to return any output. @default 30s */
  readonly consoleMs: number;
  /** openstack: SSH dial polling when the console is unavailable. @default 2m */
  readonly sshMs: number;
  /** Unit of the random back-off between retries of a 5xx (0-9 units). @default 250ms */
  readonly retryStepMs: number;
}

export const DEFAULT_TIMING: CloudTiming = {
  pollMs: 5000, provisionMs: 180_000, addressMs: 30_000, consoleMs: 30_000, sshMs: 120_000, retryStepMs: 250,
};

const TIMING_KEYS: Record<string, keyof CloudTiming> = {
  poll: 'pollMs', provision: 'provisionMs', boot: 'bootMs', address: 'addressMs', console: 'consoleMs', ssh: 'sshMs', retry: 'retryStepMs',
};

/** The timing in force: the defaults with `SPREAD_CLOUD_TIMING` applied; a bad value is an error. */
export function cloudTiming(text: string | undefined): CloudTiming {
  const timing: Record<string, number> = { ...DEFAULT_TIMING };
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [key, value] = part.split('=', 2) as [string, string | undefined];
    const field = TIMING_KEYS[key];
    const ms = value === undefined ? undefined : parseGoDuration(value);
    if (!field || ms === undefined || ms < 0) {
      throw new FatalError(`invalid SPREAD_CLOUD_TIMING entry ${JSON.stringify(part)} (use poll=, provision=, boot=, address=, console=, ssh= or retry= with a duration such as 50ms)`);
    }
    timing[field] = ms;
  }
  return timing as unknown as CloudTiming;
}

// ---------------------------------------------------------------- redaction

/** JSON fields whose values are secrets wherever they appear. */
const SECRET_FIELDS = /^(password|adminPass|user_data|access_token|refresh_token|id_token|client_secret|private_key|assertion|secret|token)$/i;

/** `text` with every secret value replaced by `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    // Short values would blank out ordinary words; the original's passwords are long random strings.
    if (secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}

/** A JSON body as text for the log, secret fields and values blanked. */
export function redactJson(body: unknown, secrets: readonly string[]): string {
  const text = JSON.stringify(body, (key, value: unknown) => (SECRET_FIELDS.test(key) && typeof value === 'string' ? '***' : value));
  return redact(text ?? '', secrets);
}

// ----------------------------------------------------------------- requests

/** An answer of the API that says no: its status and the decoded body. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(message: string, readonly status: number, readonly body: unknown) {
    super(message);
  }
}

/** The API could not be reached at all (refused, unknown host, TLS failure). */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

export interface RequestOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly body?: unknown;
  /** Form fields, sent as application/x-www-form-urlencoded (OAuth token requests). */
  readonly form?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Skip the authorization headers (token and identity requests). */
  readonly anonymous?: boolean;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

export interface CloudClientOptions {
  /** Names the API in messages: "google", "openstack". */
  readonly api: string;
  readonly log: LogFn;
  /** Values never to print: passwords, keys, tokens (looked up at each use: tokens change). */
  readonly secrets: () => readonly string[];
  /** Headers that authorize a request (a bearer token, X-Auth-Token). */
  readonly authorize?: (signal?: AbortSignal) => Promise<Readonly<Record<string, string>>>;
  /** Called on a 401 of an authorized request: renew the credentials; true to retry once. */
  readonly reauthorize?: () => Promise<boolean>;
  /** The message for an error answer, from its decoded body. */
  readonly errorMessage: (status: number, body: unknown) => string;
  /** An answer that is a server failure in disguise (google's INTERNAL in a 200-range body). */
  readonly isTransient?: (status: number, body: unknown) => boolean;
  readonly throttle: PQueue;
  readonly timing: Pick<CloudTiming, 'retryStepMs'>;
  /** Per request. @default 60s */
  readonly requestTimeoutMs?: number;
}

/** One throttle per API for the whole process, as the original's global throttle channels. */
const throttles = new Map<string, PQueue>();
export const throttleFor = (api: string, perSecond = 10): PQueue => {
  let queue = throttles.get(api);
  if (!queue) {
    queue = new PQueue({ interval: Math.round(1000 / perSecond), intervalCap: 1 });
    throttles.set(api, queue);
  }
  return queue;
};

const ATTEMPTS = 10;
/** Connection failures worth another try: the server was there a moment ago. */
const TRANSIENT_NET = /ECONNRESET|EPIPE|socket hang up|other side closed|UND_ERR_SOCKET/;

/** Why fetch failed, in one line: undici hides the reason in `cause`. */
const netReason = (err: unknown): string => {
  const e = err as Error & { cause?: Error & { code?: string } };
  const cause = e.cause;
  if (cause) return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return e.message;
};

export interface CloudClient {
  request(o: RequestOptions): Promise<ApiResponse>;
  /** request() and the decoded body, typed by the caller. */
  json<T>(o: RequestOptions): Promise<T>;
}

export function cloudClient(c: CloudClientOptions): CloudClient {
  const hide = (text: string): string => redact(text, c.secrets());

  const once = async (o: RequestOptions): Promise<ApiResponse> => {
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    let payload: string | undefined;
    if (o.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(o.form).toString();
    } else if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(o.body);
    }
    if (!o.anonymous && c.authorize) Object.assign(headers, await c.authorize(o.signal));
    const timeout = AbortSignal.timeout(c.requestTimeoutMs ?? 60_000);
    const send = () => fetch(o.url, {
      method: o.method ?? 'GET', headers, body: payload,
      signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
    });
    // Token and identity requests go to another service than the throttled API.
    const response = o.anonymous ? await send() : await c.throttle.add(send, { throwOnTimeout: true });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Not JSON (a proxy's HTML page): keep the text for the message.
    }
    return { status: response.status, headers: response.headers, body };
  };

  const request = async (o: RequestOptions): Promise<ApiResponse> => {
    const method = o.method ?? 'GET';
    c.log(`${c.api} request: ${method} ${o.url}${o.body !== undefined ? ` ${redactJson(o.body, c.secrets())}` : ''}`, 'debug');
    let renewed = false;
    for (let attempt = 1; ; attempt++) {
      let r: ApiResponse;
      try {
        r = await once(o);
      } catch (err) {
        if (o.signal?.aborted) throw new Error(`${c.api} request interrupted`);
        const why = netReason(err);
        if (TRANSIENT_NET.test(why) && attempt < ATTEMPTS) {
          await sleep(Math.floor(Math.random() * 10) * c.timing.retryStepMs);
          continue;
        }
        const host = new URL(o.url).origin;
        throw new UnreachableError(hide(`cannot reach the ${c.api} API at ${host}: ${why}`));
      }
      c.log(`${c.api} response: ${r.status} ${typeof r.body === 'string' ? r.body.slice(0, 2000) : redactJson(r.body, c.secrets())}`, 'debug');
      if ((r.status >= 500 || c.isTransient?.(r.status, r.body)) && attempt < ATTEMPTS) {
        if (attempt === 1) c.log(`${c.api} server error on ${method} ${new URL(o.url).pathname} (${r.status}). Retrying a few times...`, 'verbose');
        await sleep(Math.floor(Math.random() * 10) * c.timing.retryStepMs);
        continue;
      }
      if (r.status === 401 && !o.anonymous && !renewed && c.reauthorize && (await c.reauthorize())) {
        renewed = true;
        continue;
      }
      if (r.status >= 400 || c.isTransient?.(r.status, r.body)) throw new ApiError(hide(c.errorMessage(r.status, r.body)), r.status, r.body);
      return r;
    }
  };

  return {
    request,
    json: async <T>(o: RequestOptions) => (await request(o)).body as T,
  };
}

/** First letter lower-cased and a final period dropped, so API messages read as ours ("cannot ..."). */
export function polish(message: string): string {
  let m = message.trim();
  if (/^[A-Z][a-z]/.test(m)) m = m[0]!.toLowerCase() + m.slice(1);
  if (/[A-Za-z]\.$/.test(m)) m = m.slice(0, -1);
  return m;
}

// ------------------------------------------------------------------ polling

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly signal?: AbortSignal;
  /** The error when time runs out. */
  readonly timeoutMessage: () => string;
  /** Called about once a minute while still waiting. */
  readonly onSlow?: () => void;
}

/** Call `attempt` until it returns a value, every `intervalMs`, for up to `timeoutMs`. */
export async function poll<T>(o: PollOptions, attempt: () => Promise<T | undefined>): Promise<T> {
  const started = Date.now();
  let nextSlow = started + 60_000;
  for (;;) {
    if (o.signal?.aborted) throw new Error('interrupted');
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() - started >= o.timeoutMs) throw new Error(o.timeoutMessage());
    if (Date.now() > nextSlow) {
      o.onSlow?.();
      nextSlow += 60_000;
    }
    await sleep(o.intervalMs, undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
  }
}

// ------------------------------------------------------------ instance names

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
let lastMicros = 0;

/**
 * The name the original gives new instances: Go's layout `Jan021504.000000`
 * in UTC, lower-cased, the period made a dash: `jun111433-170067`. Two
 * names made in one process never repeat (the microseconds move on).
 */
export function instanceName(nowMs: number = Date.now()): string {
  let micros = Math.floor(nowMs * 1000) + Math.floor(Math.random() * 1000);
  if (micros <= lastMicros) micros = lastMicros + 1;
  lastMicros = micros;
  const d = new Date(Math.floor(micros / 1000));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}-${String(micros % 1_000_000).padStart(6, '0')}`;
}

/** Whether `name` is one the original or we could have made (only those are garbage collected). */
export function isInstanceName(name: string): boolean {
  const m = /^([a-z]{3})(\d\d)(\d\d)(\d\d)-(\d{6})$/.exec(name);
  if (!m || !MONTHS.includes(m[1]!)) return false;
  const [day, hour, minute] = [Number(m[2]), Number(m[3]), Number(m[4])];
  return day >= 1 && day <= 31 && hour <= 23 && minute <= 59;
}

// ------------------------------------------------------------- image terms

/** Lower-cased words and version numbers of a name or description (`Ubuntu 22.04 LTS` -> ubuntu, 22.04, lts). */
export const toTerms = (text: string): string[] => text.toLowerCase().match(/[a-z]+|[0-9](?:[0-9.]*[0-9])?/g) ?? [];

/** Whether every term of `wanted` appears in `terms`, in the same order. */
export function containsTerms(terms: readonly string[], wanted: readonly string[]): boolean {
  let j = 0;
  for (const term of wanted) {
    while (j < terms.length && terms[j] !== term) j++;
    if (j === terms.length) return false;
    j++;
  }
  return true;
}

// ----------------------------------------------------------------------- gc

/**
 * Whether an instance created at `createdMs` is past its halt-timeout: the
 * backend's, or the instance's own `halt-timeout` label (a Go duration; a
 * bad one is warned about and ignored). 0 means never.
 */
export function isExpired(o: { nowMs: number; createdMs: number; haltMs: number; label?: string; warn: (why: string) => void }): boolean {
  let halt = o.haltMs;
  if (o.label !== undefined) {
    const own = parseGoDuration(o.label.trim());
    if (own === undefined) o.warn(`bad halt-timeout label ${JSON.stringify(o.label)}`);
    else halt = own;
  }
  if (!(halt > 0) || !Number.isFinite(halt) || Number.isNaN(o.createdMs)) return false;
  return o.nowMs - o.createdMs > halt;
}

/** `-gc`: delete each instance past its halt-timeout (see isExpired), saying what it does. */
export async function deleteExpired<T>(o: {
  readonly instances: readonly T[];
  /** "Google server", "openstack instance" */
  readonly kind: string;
  readonly haltMs: number;
  readonly log: LogFn;
  readonly name: (t: T) => string;
  readonly created: (t: T) => string | undefined;
  readonly label: (t: T) => string | undefined;
  readonly remove: (t: T) => Promise<void>;
}): Promise<void> {
  const now = Date.now();
  for (const t of o.instances) {
    const name = o.name(t);
    const label = o.label(t);
    const expired = isExpired({
      nowMs: now, createdMs: Date.parse(o.created(t) ?? ''), haltMs: o.haltMs, ...(label !== undefined ? { label } : {}),
      warn: (why) => o.log(`WARNING: Ignoring bad ${o.kind} ${name} halt-timeout label: ${why}`),
    });
    o.log(`Checking ${o.kind} ${name}...`);
    if (!expired) continue;
    o.log(`Server ${name} exceeds halt-timeout. Shutting it down...`);
    await o.remove(t).catch((err: Error) => o.log(`WARNING: Cannot garbage collect ${name}: ${err.message}`));
  }
}

/**
 * The steps after an instance exists (provision, address, boot): on any
 * failure the instance is deleted, and the error says whether that worked.
 */
export async function deleteOnFailure<T>(o: { readonly what: string; readonly kind: string; readonly remove: () => Promise<void> }, steps: () => Promise<T>): Promise<T> {
  try {
    return await steps();
  } catch (err) {
    const why = (err as Error).message;
    const removed = await o.remove().then(() => true, () => false);
    throw new FatalError(`cannot allocate ${removed ? '' : 'or deallocate (!) '}new ${o.kind} ${o.what}: ${why}`);
  }
}

/** A label or metadata value the user running spread is known by. */
export const ownerName = (user: string): string => user.toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 63);
