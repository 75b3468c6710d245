/**
 * The HTTPS plumbing both fake clouds share: a server with the test CA's
 * certificate on 127.0.0.1 and a free port, request bodies read as JSON or
 * form data, every call recorded, and answers as JSON with a status.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testTls } from './fake-tls.js';

export interface ApiCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface ApiRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  /** The raw body text. */
  readonly text: string;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface FakeApi {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly calls: ApiCall[];
  stop(): Promise<void>;
}

export const answer = (status: number, body?: unknown, headers?: Record<string, string>): ApiAnswer => ({ status, body, ...(headers ? { headers } : {}) });

/** Parse a JSON body; undefined when it is not JSON. */
export const jsonOf = (req: ApiRequest): unknown => {
  try {
    return JSON.parse(req.text);
  } catch {
    return undefined;
  }
};

export async function startFakeApi(handle: (req: ApiRequest) => Promise<ApiAnswer> | ApiAnswer): Promise<FakeApi> {
  const tls = testTls();
  const calls: ApiCall[] = [];
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://127.0.0.1');
      void (async () => {
        let a: ApiAnswer;
        try {
          a = await handle({ method: req.method ?? 'GET', url, headers: req.headers, text: Buffer.concat(chunks).toString('utf8') });
        } catch (err) {
          a = answer(500, { error: { code: 500, message: `fake failed: ${(err as Error).message}` } });
        }
        calls.push({ method: req.method ?? 'GET', path: url.pathname + url.search, status: a.status });
        const body = a.body === undefined ? '' : JSON.stringify(a.body);
        res.writeHead(a.status, { ...(body ? { 'content-type': 'application/json; charset=UTF-8' } : {}), ...a.headers });
        res.end(body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    calls,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A port on 127.0.0.1 where nothing listens (for "API unreachable"). */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
