// The agent's HTTP client for the app, peers and the orchestrator. It uses node:http directly (obtained with
// process.getBuiltinModule, which does not build an ESM namespace): global fetch loads undici and an ESM
// `import 'node:http'` evaluates its lazy WebSocket getters, each ~15 MB of RSS a sidecar does not need.
// An injected `fetch` (tests, custom transports) is adapted to the same shape.
import type * as Http from 'node:http';
import type * as Https from 'node:https';

/** One request. */
export interface HttpRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs: number;
  /** Larger bodies fail the request. @default 32 MiB */
  readonly maxBytes?: number;
}

/** A response with its whole body as text. */
export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/** Sends a request; rejects on transport errors, timeouts (`name === 'TimeoutError'`) and oversized bodies. */
export type HttpClient = (url: string, request: HttpRequest) => Promise<HttpResult>;

const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

class TimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/** A client on node:http/node:https with keep-alive agents (https is loaded only when used). */
export function createNodeHttpClient(): HttpClient {
  let http: typeof Http | undefined;
  let httpAgent: Http.Agent | undefined;
  let https: typeof Https | undefined;
  let httpsAgent: Http.Agent | undefined;
  return (target, request) =>
    new Promise<HttpResult>((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(target);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      const secure = url.protocol === 'https:';
      let module: typeof Http | typeof Https;
      let agent: Http.Agent;
      if (secure) {
        https ??= process.getBuiltinModule('node:https');
        httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 8 });
        module = https;
        agent = httpsAgent;
      } else {
        http ??= process.getBuiltinModule('node:http');
        httpAgent ??= new http.Agent({ keepAlive: true, maxSockets: 8 });
        module = http;
        agent = httpAgent;
      }
      const limit = request.maxBytes ?? DEFAULT_MAX_BYTES;
      const headers: Record<string, string | number> = { 'user-agent': 'gantry-agent', ...request.headers };
      if (request.body !== undefined) headers['content-length'] = Buffer.byteLength(request.body);
      const outgoing = module.request(url, { method: request.method ?? 'GET', headers, agent }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            outgoing.destroy(new Error(`response body over ${limit} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        response.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      const timer = setTimeout(() => outgoing.destroy(new TimeoutError(request.timeoutMs)), request.timeoutMs);
      timer.unref();
      outgoing.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      outgoing.end(request.body);
    });
}

/** Adapts a `fetch` implementation to {@link HttpClient}. */
export function fetchHttpClient(fetchImpl: typeof fetch): HttpClient {
  return async (url, request) => {
    try {
      const response = await fetchImpl(url, {
        method: request.method ?? 'GET',
        ...(request.headers === undefined ? {} : { headers: { ...request.headers } }),
        ...(request.body === undefined ? {} : { body: request.body }),
        signal: AbortSignal.timeout(request.timeoutMs),
      });
      return { status: response.status, body: await response.text() };
    } catch (error) {
      if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
        throw new TimeoutError(request.timeoutMs);
      throw error;
    }
  };
}
