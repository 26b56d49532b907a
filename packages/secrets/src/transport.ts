// The HTTP transport handed to node-vault through its `request-promise` seam. node-vault's own axios transport has
// no default timeout, hides response headers (so `Retry-After` is lost) and honours HTTP(S)_PROXY; this one puts a
// deadline on every call, keeps the status and `Retry-After` of every reply, and talks to the configured endpoint
// directly.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SecretsError } from './errors.ts';

/** What node-vault hands the transport for one call. */
interface NodeVaultRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers?: Record<string, string>;
  readonly json?: unknown;
  readonly timeout?: number;
}

/** What node-vault expects back. */
interface NodeVaultResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly request: { readonly path: string };
}

/** Response facts node-vault drops; kept on the parsed body under a non-enumerable symbol. */
export interface ResponseMeta {
  readonly statusCode: number;
  readonly retryAfterMs: number | undefined;
}

/** Symbol under which {@link ResponseMeta} hangs on a response body object. */
export const RESPONSE_META: unique symbol = Symbol('gantry.secrets.responseMeta');

/** TLS material for an `https:` endpoint. */
export interface VaultTlsOptions {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** @default true */
  readonly rejectUnauthorized?: boolean;
}

/** Reads the metadata the transport attached to a body, if any. */
export function responseMeta(body: unknown): ResponseMeta | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  return (body as { [RESPONSE_META]?: ResponseMeta })[RESPONSE_META];
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Builds the object node-vault takes as `config['request-promise']`.
 * @internal
 */
export function createTransport(defaultTimeoutMs: number, tls: VaultTlsOptions | undefined) {
  const send = (options: NodeVaultRequest): Promise<NodeVaultResponse> =>
    new Promise((resolve, reject) => {
      const url = new URL(options.uri);
      const timeoutMs = options.timeout ?? defaultTimeoutMs;
      const payload = options.json === undefined ? undefined : JSON.stringify(options.json);
      const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(payload));
      }
      const requester = url.protocol === 'https:' ? httpsRequest : httpRequest;
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      const req = requester(url, {
        method: options.method,
        headers,
        ...(url.protocol === 'https:' && tls !== undefined ? tls : {}),
      });
      // One deadline for the whole exchange: connect, headers and body.
      const timer = setTimeout(() => {
        fail(
          new SecretsError(
            'GANTRY_SECRETS_VAULT_TIMEOUT',
            `Vault did not answer ${options.method} ${url.pathname} within ${timeoutMs} ms`,
            { kind: 'retryable' },
          ),
        );
        req.destroy();
      }, timeoutMs);
      timer.unref();
      req.on('error', fail);
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if (text.trim() !== '') {
            try {
              body = JSON.parse(text) as unknown;
            } catch {
              body = { errors: [`unparseable response (status ${res.statusCode ?? 0})`] };
            }
          } else if ((res.statusCode ?? 0) >= 400) {
            body = { errors: [] };
          }
          const retryAfter = res.headers['retry-after'];
          const meta: ResponseMeta = {
            statusCode: res.statusCode ?? 0,
            retryAfterMs: parseRetryAfter(retryAfter),
          };
          if (body !== null && typeof body === 'object') {
            Object.defineProperty(body, RESPONSE_META, { value: meta, enumerable: false });
          }
          resolve({ statusCode: meta.statusCode, body, request: { path: url.pathname } });
        });
      });
      req.end(payload);
    });
  return { defaults: () => send };
}
