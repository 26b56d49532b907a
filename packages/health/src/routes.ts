// The probe routes both HTTP adapters serve, and the bytes they answer with.
import { healthInternals, type Health, type ProbeName } from './health.ts';
import { invalid } from './options.ts';
import { describeError } from './reason.ts';

/** Paths of the probe endpoints. */
export interface HealthPaths {
  /** @default '/q/health/live' */
  readonly liveness?: string;
  /** @default '/q/health/ready' */
  readonly readiness?: string;
  /** @default '/q/health/started' */
  readonly startup?: string;
  /** All three groups together. @default '/q/health' */
  readonly health?: string;
  /** @default '/q/info' */
  readonly info?: string;
}

/** Default probe paths (Quarkus' `/q/...` layout). */
export const DEFAULT_HEALTH_PATHS: Readonly<Required<HealthPaths>> = Object.freeze({
  liveness: '/q/health/live',
  readiness: '/q/health/ready',
  startup: '/q/health/started',
  health: '/q/health',
  info: '/q/info',
});

/** Options shared by the fastify plugin and the node:http handler. */
export interface HealthRouteOptions {
  /** Overrides of {@link DEFAULT_HEALTH_PATHS}. */
  readonly paths?: HealthPaths;
  /** Also serve `/livez` and `/readyz`. @default true */
  readonly aliases?: boolean;
}

export type RouteTarget = ProbeName | 'info';

/** Resolves the path → target table, validating paths once. */
export function routeTable(options: HealthRouteOptions = {}): ReadonlyMap<string, RouteTarget> {
  const paths = { ...DEFAULT_HEALTH_PATHS, ...options.paths };
  const table = new Map<string, RouteTarget>();
  const add = (path: unknown, target: RouteTarget, option: string): void => {
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?')) {
      throw invalid(option, "a path starting with '/' and without a query string", path);
    }
    if (table.has(path)) throw invalid(option, 'a path no other probe uses', path);
    table.set(path, target);
  };
  add(paths.liveness, 'liveness', 'paths.liveness');
  add(paths.readiness, 'readiness', 'paths.readiness');
  add(paths.startup, 'startup', 'paths.startup');
  add(paths.health, 'all', 'paths.health');
  add(paths.info, 'info', 'paths.info');
  if (options.aliases !== false) {
    if (!table.has('/livez')) table.set('/livez', 'liveness');
    if (!table.has('/readyz')) table.set('/readyz', 'readiness');
  }
  return table;
}

/** A complete response: status, headers and body. */
export interface ProbeResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function withHeaders(statusCode: number, body: string): ProbeResponse {
  return {
    statusCode,
    body,
    headers: {
      'content-type': JSON_TYPE,
      'cache-control': 'no-store',
      'content-length': String(Buffer.byteLength(body)),
    },
  };
}

// Pre-rendered responses are reused while the probe's cached state is unchanged.
const rendered = new WeakMap<object, ProbeResponse>();

const FAILED_BODY = '{"status":"DOWN","checks":[]}';

/** Answers one probe: 200 UP, 503 DOWN, 500 only when no report could be produced at all. */
export function probeResponse(health: Health, target: RouteTarget): ProbeResponse | Promise<ProbeResponse> {
  const { respond, logger } = healthInternals(health);
  const fail = (error: unknown): ProbeResponse => {
    logger.error(
      { event: 'health.probe.failed', probe: target, err: describeError(error) },
      'probe could not be evaluated',
    );
    return withHeaders(500, FAILED_BODY);
  };
  try {
    if (target === 'info') return withHeaders(200, JSON.stringify(health.info()));
    const answer = respond(target);
    const render = (cached: Exclude<typeof answer, Promise<unknown>>): ProbeResponse => {
      let response = rendered.get(cached);
      if (response === undefined) {
        response = withHeaders(cached.statusCode, cached.body);
        rendered.set(cached, response);
      }
      return response;
    };
    return answer instanceof Promise ? answer.then(render, fail) : render(answer);
  } catch (error) {
    return fail(error);
  }
}
