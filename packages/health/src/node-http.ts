// The node:http adapter: a request handler for an existing server, and a separate probe server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HealthError } from './errors.ts';
import { healthInternals, type Health } from './health.ts';
import { invalid, numberOption } from './options.ts';
import { probeResponse, routeTable, type HealthRouteOptions, type ProbeResponse } from './routes.ts';

/** Handles a probe request; returns `false` (without touching `res`) when the path is not a probe path. */
export type HealthRequestHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function send(req: IncomingMessage, res: ServerResponse, response: ProbeResponse): void {
  res.writeHead(response.statusCode, response.headers);
  res.end(req.method === 'HEAD' ? undefined : response.body);
}

/**
 * A `node:http` request handler for the probe paths (GET and HEAD; other methods get 405). Query strings are
 * ignored. Mount it in front of your application handler.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for bad paths.
 * @example
 * const probes = createHealthHandler(health);
 * const server = http.createServer((req, res) => { if (!probes(req, res)) app(req, res); });
 * health.attachServer(server);
 */
export function createHealthHandler(health: Health, options: HealthRouteOptions = {}): HealthRequestHandler {
  healthInternals(health);
  const table = routeTable(options);
  return (req, res) => {
    const target = table.get(pathOf(req.url));
    if (target === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' });
      res.end();
      return true;
    }
    const response = probeResponse(health, target);
    if (response instanceof Promise) void response.then((ready) => send(req, res, ready));
    else send(req, res, response);
    return true;
  };
}

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions extends HealthRouteOptions {
  /** @default 9000 (0 picks a free port) */
  readonly port?: number;
  /** @default '0.0.0.0' */
  readonly host?: string;
}

/** A running probe server. */
export interface HealthServer {
  readonly server: Server;
  readonly port: number;
  /** Stops it; the shutdown sequence calls this after the hooks. Idempotent. */
  close(): Promise<void>;
}

/** Default port of the separate probe server. @default 9000 */
export const DEFAULT_HEALTH_PORT = 9_000;

/**
 * Serves the probes on their own port, so they keep answering while the application server drains (liveness
 * stays UP, readiness DOWN) and are never queued behind application traffic. Closed by the shutdown sequence
 * after the hooks. Anything else on that port gets 404.
 * @throws HealthError `GANTRY_HEALTH_SERVER_FAILED` when the port cannot be bound.
 * @example
 * const probes = await startHealthServer(health, { port: 9000 });
 */
export async function startHealthServer(health: Health, options: HealthServerOptions = {}): Promise<HealthServer> {
  const { addFinalCloser } = healthInternals(health);
  const port = numberOption('port', options.port, DEFAULT_HEALTH_PORT, { integer: true });
  if (port > 65_535) throw invalid('port', 'an integer between 0 and 65535', port);
  const host = options.host ?? '0.0.0.0';
  const handler = createHealthHandler(health, options);
  const server = createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(404, { 'content-length': '0' });
      res.end();
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new HealthError('GANTRY_HEALTH_SERVER_FAILED', `could not listen on ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  const remove = addFinalCloser(close);
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      remove();
      await close();
    },
  };
}

/**
 * Reads `GANTRY_HEALTH_PORT` and `GANTRY_HEALTH_HOST` for {@link startHealthServer}.
 * @default env = process.env
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` when the port is not an integer.
 * @example
 * await startHealthServer(health, healthServerOptionsFromEnv());
 */
export function healthServerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HealthServerOptions {
  const options: { port?: number; host?: string } = {};
  const port = env['GANTRY_HEALTH_PORT']?.trim();
  if (port !== undefined && port !== '') {
    const value = Number(port);
    if (!Number.isInteger(value) || value < 0 || value > 65_535) {
      throw new HealthError(
        'GANTRY_HEALTH_INVALID_OPTION',
        `Expected \`GANTRY_HEALTH_PORT\` to be an integer between 0 and 65535, got ${JSON.stringify(port)}`,
      );
    }
    options.port = value;
  }
  const host = env['GANTRY_HEALTH_HOST']?.trim();
  if (host !== undefined && host !== '') options.host = host;
  return options;
}
