/**
 * The line protocol between the sync helpers on a machine (bash, over the
 * runner's reverse-forwarded port: see run/sync-link.ts) and a SyncService.
 * One request per connection, one line:
 *
 *     TOKEN signal STATE                  -> ok SEQ
 *     TOKEN barrier STATE COUNT TIMEOUT   -> ok
 *     TOKEN publish TOPIC MESSAGE...      -> ok SEQ
 *     TOKEN read TOPIC COUNT TIMEOUT      -> ok N, then N lines
 *
 * and `err MESSAGE` for any failure. The token is random per instance of a
 * running group and names its group; anything else on the machine that
 * finds the port has no token. Written by hand: a dozen lines of parsing
 * do not need a protocol library, and bash must speak it with `read`.
 */
import type { Duplex } from 'node:stream';
import { parseTimeout } from '../project/duration.js';
import { SYNC_NAME, SyncError } from './sync.js';
import type { SyncService } from './sync.js';

/** Who a token belongs to: the group its calls go to, and where to tell about failed waits. */
export interface Caller {
  readonly group: string;
  /** A wait of this instance failed (timeout, failed group): the message its script prints. */
  readonly onWaitFailed?: (message: string) => void;
}

const MAX_LINE = 64 * 1024;

/** Serve one connection: read the request line, answer, close. */
export function serveSync(stream: Duplex, sync: SyncService, lookup: (token: string) => Caller | undefined): void {
  let buffer = '';
  let handled = false;
  const hangup = new AbortController();
  stream.on('error', () => hangup.abort());
  stream.on('close', () => hangup.abort());
  stream.on('end', () => {
    if (!handled) stream.end();
  });
  stream.on('data', (chunk: Buffer) => {
    if (handled) return;
    buffer += chunk.toString('utf8');
    const eol = buffer.indexOf('\n');
    if (eol < 0) {
      if (buffer.length > MAX_LINE) {
        handled = true;
        stream.end('err request too long\n');
      }
      return;
    }
    handled = true;
    answer(buffer.slice(0, eol), sync, lookup, hangup.signal).then(
      (reply) => stream.end(reply),
      () => stream.end('err internal error\n'),
    );
  });
}

async function answer(line: string, sync: SyncService, lookup: (token: string) => Caller | undefined, signal: AbortSignal): Promise<string> {
  const [token = '', op = '', ...args] = line.replace(/\r$/, '').split(' ');
  const caller = lookup(token);
  if (!caller) return 'err not a running instance of a multi-machine task (unknown token)\n';
  try {
    switch (op) {
      case 'signal': {
        const [state] = args;
        return `ok ${await sync.signal(caller.group, name(state, 'state'))}\n`;
      }
      case 'barrier': {
        const [state, count, timeout] = args;
        await sync.barrier(caller.group, name(state, 'state'), positive(count), { timeoutMs: duration(timeout), signal });
        return 'ok\n';
      }
      case 'publish': {
        const [topic, ...words] = args;
        const message = words.join(' ');
        if (message === '') throw new SyncError('missing message (PUBLISH topic message...)');
        return `ok ${await sync.publish(caller.group, name(topic, 'topic'), message)}\n`;
      }
      case 'read': {
        const [topic, count, timeout] = args;
        const messages = await sync.read(caller.group, name(topic, 'topic'), positive(count), { timeoutMs: duration(timeout), signal });
        return `ok ${messages.length}\n${messages.map((m) => `${m}\n`).join('')}`;
      }
      default:
        throw new SyncError(`unknown request ${JSON.stringify(op)}`);
    }
  } catch (err) {
    if (!(err instanceof SyncError)) throw err;
    if (op === 'barrier' || op === 'read') caller.onWaitFailed?.(err.message);
    return `err ${err.message.replace(/\n/g, ' ')}\n`;
  }
}

function name(text: string | undefined, what: string): string {
  if (text === undefined || text === '') throw new SyncError(`missing ${what} name`);
  if (!SYNC_NAME.test(text)) throw new SyncError(`invalid ${what} name ${JSON.stringify(text)} (use letters, digits and . _ - : only)`);
  return text;
}

function positive(text: string | undefined): number {
  if (text === undefined || !/^[1-9]\d{0,5}$/.test(text)) throw new SyncError(`invalid count ${JSON.stringify(text ?? '')} (use a whole number from 1)`);
  return Number(text);
}

function duration(text: string | undefined): number {
  const ms = parseTimeout(text ?? '');
  if (ms === undefined) throw new SyncError(`invalid timeout ${JSON.stringify(text ?? '')} (use a duration such as 30s or 5m, or -1 for none)`);
  return ms;
}

