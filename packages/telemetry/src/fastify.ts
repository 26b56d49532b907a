// Fastify plugin: a server span per request (our own hooks, no patching: works in ESM and with app.inject()), the
// HTTP duration histogram keyed by route template (also with tracing off), one sampled request log line, tenant
// and user into baggage/logs/span, and /q/metrics. Probe and metrics routes are left alone.
import {
  type BaggageEntry,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { RequestBaggage, TENANT_BAGGAGE_KEY, USER_BAGGAGE_KEY } from './context.ts';
import { invalidOption } from './errors.ts';
import { requestLineWriter } from './logger.ts';
import { UNMATCHED_ROUTE } from './http-metrics.ts';
import { createPathMatcher } from './paths.ts';
import { internalsOf } from './internals.ts';
import { setKnownAttribute } from './server-span.ts';
import { getTelemetry, type Telemetry } from './telemetry.ts';

/** Options of {@link fastifyTelemetry}. Unset fields come from the telemetry's `http` and `metrics` options. */
export interface FastifyTelemetryOptions {
  /** @default getTelemetry() — the instance `--import @gantry/telemetry/register` started */
  readonly telemetry?: Telemetry;
  /** Route serving the metrics, or `false` to serve them elsewhere. @default '/q/metrics' */
  readonly metricsPath?: string | false;
  /** Paths with no span, metric or log line (`*` suffix = prefix). @default ['/q/health*', '/q/info', '/livez', '/readyz'] */
  readonly ignorePaths?: readonly string[];
  /** Share of non-5xx requests logged. @default 1 */
  readonly requestLogSampleRatio?: number;
  /** Write one log line per request. @default true */
  readonly requestLogs?: boolean;
  /** @default 'x-tenant-id' */
  readonly tenantHeader?: string;
  /** Header with the user id (only behind a proxy that sets it). @default none */
  readonly userHeader?: string;
  /** Reads the user id from the request (e.g. `(request) => request.user?.id` after your auth hook). */
  readonly userId?: (request: FastifyRequest) => string | undefined;
}

interface RequestState {
  readonly span: Span | undefined;
  readonly ownsSpan: boolean;
  readonly context: Context;
  readonly route: string;
  readonly tenant: string | undefined;
}

const kState = Symbol('gantry.telemetry.request');
const IGNORED: RequestState = Object.freeze({
  span: undefined,
  ownsSpan: false,
  context: ROOT_CONTEXT,
  route: '',
  tenant: undefined,
});

type StatefulRequest = FastifyRequest & { [kState]: RequestState | null };

function headerValue(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

// JSON string literals of route templates and methods: a service has a few hundred at most.
const JSON_CACHE_LIMIT = 4_096;
const jsonCache = new Map<string, string>();
function jsonString(value: string): string {
  let encoded = jsonCache.get(value);
  if (encoded === undefined) {
    encoded = JSON.stringify(value);
    if (jsonCache.size < JSON_CACHE_LIMIT) jsonCache.set(value, encoded);
  }
  return encoded;
}

// Server span names ("GET /orders/:id"), one string object per method and route: not rebuilt per request, and the
// OTLP encoder's name cache then finds them by a hash the string already carries.
const spanNames = new Map<string, Map<string, string>>();
let spanNameCount = 0;
function spanName(method: string, route: string): string {
  let byMethod = spanNames.get(route);
  let name = byMethod?.get(method);
  if (name === undefined) {
    name = route === UNMATCHED_ROUTE ? method : `${method} ${route}`;
    if (spanNameCount < JSON_CACHE_LIMIT) {
      if (byMethod === undefined) {
        byMethod = new Map();
        spanNames.set(route, byMethod);
      }
      byMethod.set(method, name);
      spanNameCount += 1;
    }
  }
  return name;
}

function plugin(fastify: FastifyInstance, options: FastifyTelemetryOptions, done: (error?: Error) => void): void {
  const telemetry = options.telemetry ?? getTelemetry();
  if (telemetry === undefined) {
    done(invalidOption('telemetry', 'a Telemetry from initTelemetry() (none is running in this process)', undefined));
    return;
  }
  const http = telemetry.config.http;
  const metricsPath =
    options.metricsPath !== undefined
      ? options.metricsPath
      : telemetry.config.metrics === false
        ? false
        : telemetry.config.metrics.path;
  if (metricsPath !== false && (typeof metricsPath !== 'string' || !metricsPath.startsWith('/'))) {
    done(invalidOption('metricsPath', 'a path starting with "/" or false', metricsPath));
    return;
  }
  const ratio = options.requestLogSampleRatio ?? http.requestLogSampleRatio;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
    done(invalidOption('requestLogSampleRatio', 'a number between 0 and 1', ratio));
    return;
  }
  if (options.userId !== undefined && typeof options.userId !== 'function') {
    done(invalidOption('userId', 'a function of the request', options.userId));
    return;
  }
  const ignored = createPathMatcher([
    ...(options.ignorePaths ?? http.ignorePaths),
    ...(metricsPath === false ? [] : [metricsPath]),
  ]);
  const tenantHeader = (options.tenantHeader ?? http.tenantHeader).toLowerCase();
  const userHeader = (options.userHeader ?? http.userHeader)?.toLowerCase();
  const userId = options.userId;
  const tenantAllowList = new Set(http.tenantLabelAllowList);
  const requestLogs = options.requestLogs ?? true;
  const tracing = telemetry.config.tracing;
  const tracer = telemetry.tracer;
  // Server spans on the tracer provider's own sampler, ids, limits and processors, without the SDK Tracer's
  // generic per-span work (telemetry.tracer is the fallback for an instance made some other way).
  const serverSpans = internalsOf(telemetry)?.serverSpans;
  const metrics = telemetry.metrics;
  const lines = requestLineWriter(telemetry.logger);

  fastify.decorateRequest(kState as unknown as string, null);

  fastify.addHook('onRequest', (request, _reply, next) => {
    const raw = request.raw;
    if (ignored(raw.url ?? '/')) {
      (request as StatefulRequest)[kState] = IGNORED;
      next();
      return;
    }
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = raw.method ?? 'GET';
    const headers = raw.headers;
    let active = context.active();
    let span: Span | undefined;
    let ownsSpan = false;
    if (tracing) {
      const rpc = getRPCMetadata(active);
      if (rpc?.type === RPCType.HTTP && rpc.span !== undefined) {
        // instrumentation-http (httpServerSpans: true) already made the server span: enrich it.
        span = rpc.span;
        rpc.route = route;
        span.updateName(spanName(method, route));
        span.setAttribute('http.route', route);
      } else {
        active = propagation.extract(active, headers);
        const url = raw.url ?? '/';
        const query = url.indexOf('?');
        const name = spanName(method, route);
        const attributes = {
          'http.request.method': method,
          'http.route': route,
          'url.path': query < 0 ? url : url.slice(0, query),
          'url.scheme': request.protocol,
          'network.protocol.version': raw.httpVersion,
        };
        span =
          serverSpans !== undefined
            ? serverSpans.start(name, SpanKind.SERVER, attributes, 5, active)
            : tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, active);
        active = trace.setSpan(active, span);
        ownsSpan = true;
      }
    } else if (headers['baggage'] !== undefined) {
      active = propagation.extract(active, headers);
    }
    const tenant = headerValue(headers[tenantHeader]);
    const headerUser = userHeader === undefined ? undefined : headerValue(headers[userHeader]);
    if (tenant !== undefined || headerUser !== undefined || userId !== undefined) {
      const entries = new Map<string, BaggageEntry>(propagation.getBaggage(active)?.getAllEntries() ?? []);
      if (tenant !== undefined) entries.set(TENANT_BAGGAGE_KEY, { value: tenant });
      if (headerUser !== undefined) entries.set(USER_BAGGAGE_KEY, { value: headerUser });
      const resolveUser = headerUser === undefined && userId !== undefined ? () => userId(request) : undefined;
      active = propagation.setBaggage(active, new RequestBaggage(entries, resolveUser));
      if (tenant !== undefined) span?.setAttribute('tenant.id', tenant);
    }
    (request as StatefulRequest)[kState] = { span, ownsSpan, context: active, route, tenant };
    // Body chunks arrive on the socket's own async context; bind the request stream so parsing stays in ours.
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) {
      context.bind(active, raw);
    }
    context.with(active, next);
  });

  fastify.addHook('onError', (request, _reply, error, next) => {
    const state = (request as StatefulRequest)[kState];
    state?.span?.recordException(error);
    next();
  });

  // No onRequestAbort hook: fastify would add a 'close' listener to every request for it. A request the client
  // abandons before any response is sent therefore gets no span and no metric (it has no status code either).
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, next) => {
    const state = (request as StatefulRequest)[kState];
    if (state === null || state === IGNORED) {
      next();
      return;
    }
    const status = reply.statusCode;
    const elapsedMs = reply.elapsedTime;
    const method = request.raw.method ?? 'GET';
    const span = state.span;
    const spanContext = span?.spanContext();
    let traceId: string | undefined;
    let spanId: string | undefined;
    if (span !== undefined && spanContext !== undefined) {
      if ((spanContext.traceFlags & (TraceFlags.SAMPLED as number)) !== 0) {
        traceId = spanContext.traceId;
        spanId = spanContext.spanId;
      }
      setKnownAttribute(span, 'http.response.status_code', status);
      if (status >= 500) {
        setKnownAttribute(span, 'error.type', String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      if (state.ownsSpan) span.end();
    }
    const tenant = state.tenant;
    metrics?.http.record(
      method,
      state.route,
      status,
      elapsedMs / 1000,
      traceId,
      spanId,
      tenant !== undefined && tenantAllowList.has(tenant) ? tenant : undefined,
    );
    const lineLevel = status >= 500 ? 'error' : 'info';
    if (requestLogs && (status >= 500 || ratio >= 1 || Math.random() < ratio) && lines.isEnabled(lineLevel)) {
      let fields =
        `"event":"http.request.completed","http_request_method":${jsonString(method)},` +
        `"http_route":${jsonString(state.route)},"http_response_status_code":${status},` +
        `"duration_ms":${Math.round(elapsedMs * 1000) / 1000}`;
      if (spanContext !== undefined) {
        fields += `,"trace_id":"${spanContext.traceId}","span_id":"${spanContext.spanId}"`;
      }
      if (tenant !== undefined) fields += `,"tenant_id":${JSON.stringify(tenant)}`;
      const user = propagation.getBaggage(state.context)?.getEntry(USER_BAGGAGE_KEY)?.value;
      if (user !== undefined) fields += `,"user_id":${JSON.stringify(user)}`;
      lines.write(lineLevel, fields, status >= 500 ? 'request failed' : 'request completed');
    }
    next();
  });

  fastify.addHook('onReady', (next) => {
    telemetry.verifyInstrumentation();
    next();
  });

  if (metricsPath !== false && metrics !== undefined) {
    fastify.route({
      method: ['GET', 'HEAD'],
      url: metricsPath,
      logLevel: 'warn',
      handler: async (request, reply) => {
        const output = await metrics.serialize(request.headers.accept);
        return reply
          .code(output.status)
          .header('content-type', output.contentType)
          .header('cache-control', 'no-store')
          .send(output.body);
      },
    });
  }
  done();
}

// Registered on the root instance (the `fastify-plugin` convention) so the hooks see every route.
Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@gantry/telemetry',
  [Symbol.for('plugin-meta')]: { name: '@gantry/telemetry', fastify: '>=5' },
});

/**
 * The fastify plugin. Register it first, before your routes and auth hooks. Use the telemetry logger as fastify's
 * logger (`loggerInstance`) with fastify's own request lines off (`logController: new LogController({
 * disableRequestLogging: true })`; on a fastify without `LogController`, `disableRequestLogging: true`): this
 * plugin writes the one request line.
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` (through `register`) on bad options or when no
 * telemetry is running.
 * @example
 * const telemetry = initTelemetry(telemetryOptionsFromEnv());
 * const app = Fastify({
 *   loggerInstance: telemetry.logger,
 *   logController: new LogController({ disableRequestLogging: true }),
 * });
 * await app.register(fastifyTelemetry, { telemetry, userId: (request) => request.headers['x-user'] as string });
 */
export const fastifyTelemetry: FastifyPluginCallback<FastifyTelemetryOptions> = plugin;
