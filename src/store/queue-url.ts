/**
 * `-queue=redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]/RUN[?lease=15s&expire=24h]`
 * (`rediss://` for TLS). RUN names the run that runners share, e.g.
 * `$GITHUB_RUN_ID`. The password may come from SPREAD_QUEUE_PASSWORD instead
 * of the URL, so it stays out of CI logs and process lists.
 */
import { parseGoDuration } from '../project/duration.js';

export interface QueueAddress {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly run: string;
  readonly username?: string;
  readonly password?: string;
  /** How long a runner's claims outlive its last renewal. @default 15 s */
  readonly leaseMs: number;
  /** How long a run's state stays after its last change. @default 24 h */
  readonly expireMs: number;
  /** The address for messages: the password hidden. */
  readonly label: string;
}

export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_EXPIRE_MS = 24 * 3_600_000;
export const QUEUE_PASSWORD_ENV = 'SPREAD_QUEUE_PASSWORD';

export class QueueUrlError extends Error {
  override readonly name = 'QueueUrlError';
}

const USAGE = 'expected redis://HOST[:PORT][/DB]/RUN or rediss://...';

export function parseQueueUrl(text: string, env: Readonly<Record<string, string | undefined>> = {}): QueueAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new QueueUrlError(`-queue: invalid URL ${JSON.stringify(text)}: ${USAGE}`);
  }
  const bad = (why: string) => new QueueUrlError(`-queue: ${why} in ${JSON.stringify(redact(url))}: ${USAGE}`);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw bad(`unsupported scheme ${JSON.stringify(url.protocol.slice(0, -1))}`);
  if (url.hostname === '') throw bad('no host');
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  if (parts.length === 0) throw bad('no run name');
  if (parts.length > 2) throw bad('too many path parts');
  const [dbText, run] = parts.length === 2 ? [parts[0]!, parts[1]!] : ['0', parts[0]!];
  if (!/^\d+$/.test(dbText)) throw bad(`database ${JSON.stringify(dbText)} is not a number`);
  if (!/^[\w.:@+-]+$/.test(run)) throw bad(`run name ${JSON.stringify(run)} has characters other than letters, digits and . : @ + - _`);
  const duration = (name: string, fallback: number, min: number): number => {
    const value = url.searchParams.get(name);
    if (value === null) return fallback;
    const ms = parseGoDuration(value);
    if (ms === undefined || ms < min) throw bad(`${name}=${value} is not a duration of at least ${min / 1000}s`);
    return ms;
  };
  for (const key of url.searchParams.keys()) {
    if (key !== 'lease' && key !== 'expire') throw bad(`unknown parameter ${JSON.stringify(key)} (lease, expire)`);
  }
  const password = url.password !== '' ? decodeURIComponent(url.password) : env[QUEUE_PASSWORD_ENV] || undefined;
  const username = url.username !== '' ? decodeURIComponent(url.username) : undefined;
  return {
    tls: url.protocol === 'rediss:',
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    db: Number(dbText),
    run,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    leaseMs: duration('lease', DEFAULT_LEASE_MS, 1000),
    expireMs: duration('expire', DEFAULT_EXPIRE_MS, 60_000),
    label: redact(url),
  };
}

/** The URL as shown in messages: no password, no parameters. */
function redact(url: URL): string {
  const user = url.username !== '' || url.password !== '' ? `${url.username}${url.password !== '' ? ':***' : ''}@` : '';
  return `${url.protocol}//${user}${url.host}${url.pathname}`;
}
