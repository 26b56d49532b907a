// The HTTP layer: two thin transports over one evaluation engine (reference/gates.md §7) plus probes, version,
// metrics, holds, runs, policy, summary and audit. It only parses, authenticates and maps verdicts to status codes;
// everything else lives in the agent. Built on node:http so it can later sit behind @gantry/health's handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nodeCrypto } from './builtins.ts';
import { parseDurationMs } from './duration.ts';
import type { Evaluator, EvaluationState, GateQuery, ReasonCode, Verdict, VerdictDocument } from './gates.ts';
import { DEFAULT_HOLD_TTL_MS, MAX_HOLD_TTL_MS, type HoldStore } from './holds.ts';
import type { Logger } from './logger.ts';
import type { AgentConfig, ResolvedPolicy } from './options.ts';
import type { PodSummary } from './summary.ts';

/** Flagger webhook types (one URL each: the payload does not say which hook calls). */
export const FLAGGER_HOOKS = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-traffic-increase',
  'confirm-promotion',
  'rollback',
  'post-rollout',
  'event',
] as const;

/** One of {@link FLAGGER_HOOKS}. */
export type FlaggerHook = (typeof FLAGGER_HOOKS)[number];

/** Default gate per Flagger hook. */
export const FLAGGER_DEFAULT_GATES: Readonly<Record<FlaggerHook, string>> = Object.freeze({
  'confirm-rollout': 'start',
  'pre-rollout': 'smoke',
  rollout: 'slo',
  'confirm-traffic-increase': 'slo',
  'confirm-promotion': 'promotion',
  rollback: 'rollback',
  'post-rollout': 'slo',
  event: 'slo',
});

/**
 * Status code for a verdict on a Flagger hook: only 200–202 pass; 423 "wait" where Flagger does not count a
 * failed check, 412 where it does; `rollback` is inverted (200 = roll back now).
 * @example flaggerStatus('rollback', { verdict: 'fail', reasonCode: 'CRASHLOOP' }) // 200: roll back now
 */
export function flaggerStatus(hook: FlaggerHook, document: Pick<VerdictDocument, 'verdict' | 'reasonCode'>): number {
  const { verdict, reasonCode } = document;
  if (verdict === 'error') return reasonCode === 'AGENT_ERROR' ? 503 : 400;
  switch (hook) {
    case 'confirm-rollout':
    case 'confirm-traffic-increase':
    case 'confirm-promotion':
      return verdict === 'pass' ? 200 : 423;
    case 'pre-rollout':
      return verdict === 'pass' ? 200 : 412;
    case 'rollout':
      // Don't punish low traffic or a shared incident with a failed check; only a real failure counts.
      return verdict === 'fail' ? 412 : 200;
    case 'rollback':
      return verdict === 'fail' ? 200 : 412;
    case 'post-rollout':
      return 200;
    case 'event':
      return 202;
  }
}

/** What the HTTP layer needs from the agent. */
export interface ServerContext {
  readonly config: AgentConfig;
  readonly logger: Logger;
  readonly evaluator: Evaluator;
  readonly holds: HoldStore;
  now(): number;
  policy(): ResolvedPolicy;
  state(): EvaluationState;
  /** Resolves after the next scrape cycle or `timeoutMs`. */
  nextCycle(timeoutMs: number): Promise<void>;
  summary(): PodSummary | undefined;
  versionDocument(): Record<string, unknown>;
  liveness(): { ok: boolean; body: Record<string, unknown> };
  readiness(): { ok: boolean; body: Record<string, unknown> };
  health(): { status: 'pass' | 'warn' | 'fail'; body: Record<string, unknown> };
  metricsText(): Promise<{ contentType: string; text: string }>;
  policyDocument(): Record<string, unknown>;
  recordRequest(route: string, status: number, seconds: number): void;
  flaggerEvent(runId: string, payload: FlaggerPayload): void;
  loadtesterGate(action: 'check' | 'open' | 'close', kind: 'gate' | 'rollback', key: string, actor: string): boolean;
}

/** Flagger's webhook payload. */
export interface FlaggerPayload {
  readonly name: string;
  readonly namespace: string;
  readonly phase: string | undefined;
  readonly checksum: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.headersSent) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...headers });
  response.end(response.req.method === 'HEAD' ? undefined : text);
}

function digest(value: string): Buffer {
  return nodeCrypto().createHash('sha256').update(value).digest();
}

/**
 * Constant-time token comparison (hashes first, so lengths do not leak either).
 * @example tokensMatch(request.headers['x-token'], expected)
 */
export function tokensMatch(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  return nodeCrypto().timingSafeEqual(digest(given), digest(expected));
}

function bearer(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

async function readBody(request: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    // A client that hangs up mid-body is the client's problem, not an agent failure to log with a stack.
    if (!(error instanceof HttpError) && (request.destroyed || (error as { code?: unknown }).code === 'ECONNRESET'))
      throw new HttpError(400, 'request aborted by the client');
    throw error;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Decodes one percent-encoded path segment; a malformed encoding is the caller's mistake (400), not ours. */
function decodeSegment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the ${what}`);
  }
}

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, `${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError(400, `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

const TEXT_PARAMETERS = ['runId', 'expectHash', 'expectVersion', 'expectDigest', 'baselineHash', 'tenant'] as const;

/** Parameters of gate requests: query string merged with a JSON body or Flagger metadata (later wins). */
export function parseGateQuery(
  sources: readonly Readonly<Record<string, unknown>>[],
  defaults: { gate: string; maxWaitMs: number },
): GateQuery | { error: string } {
  const values: Record<string, string> = {};
  for (const source of sources) {
    for (const [key, value] of Object.entries(source)) {
      if (typeof value === 'string') values[key] = value;
      else if (typeof value === 'number' && Number.isFinite(value)) values[key] = String(value);
      else if (typeof value === 'boolean') values[key] = String(value);
    }
  }
  const gate = values['gate'] ?? defaults.gate;
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(gate)) return { error: `invalid gate name ${JSON.stringify(gate.slice(0, 40))}` };
  const text: Record<string, string | undefined> = {};
  for (const key of TEXT_PARAMETERS) {
    const value = values[key];
    // An empty identity parameter is almost always an unset template argument (`{{args.stable-hash}}`), which
    // would silently compare against the wrong pods; say so instead.
    if (value === '' && key !== 'runId' && key !== 'tenant')
      return { error: `empty ${key}: is a template argument unset?` };
    if (value === undefined || value === '') continue;
    // eslint-disable-next-line no-control-regex
    if (value.length > 200 || /[\u0000-\u001f\u007f]/.test(value)) return { error: `invalid ${key}` };
    text[key] = value;
  }
  const durationOf = (key: string): number | undefined | { error: string } => {
    const value = values[key];
    if (value === undefined || value === '') return undefined;
    const parsed = parseDurationMs(value);
    return parsed === undefined
      ? { error: `invalid ${key} ${JSON.stringify(value.slice(0, 40))}: expected a duration such as 5m` }
      : parsed;
  };
  const numberOf = (
    key: string,
    min: number,
    max: number,
    integer: boolean,
  ): number | undefined | { error: string } => {
    const value = values[key];
    if (value === undefined || value === '') return undefined;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
      return {
        error: `invalid ${key} ${JSON.stringify(value.slice(0, 40))}: expected ${integer ? 'an integer' : 'a number'} in ${min}..${max}`,
      };
    }
    return parsed;
  };
  const windowMs = durationOf('window');
  const waitMs = durationOf('wait');
  const durationMs = durationOf('duration');
  const minSamples = numberOf('minSamples', 0, 1e9, true);
  const expectPods = numberOf('expectPods', 0, 100_000, true);
  const maxErrorRate = numberOf('maxErrorRate', 0, 1, false);
  const maxP99Ms = numberOf('maxP99Ms', 1e-3, 3.6e6, false);
  for (const item of [windowMs, waitMs, durationMs, minSamples, expectPods, maxErrorRate, maxP99Ms]) {
    if (typeof item === 'object') return item;
  }
  if (typeof windowMs === 'number' && windowMs < 1_000) return { error: 'window must be at least 1s' };
  const insufficient = values['insufficient'];
  if (insufficient !== undefined && insufficient !== 'pending' && insufficient !== 'pass' && insufficient !== 'fail') {
    return { error: 'insufficient must be pending, pass or fail' };
  }
  const scope = values['scope'] ?? 'version';
  if (scope !== 'version' && scope !== 'pod') return { error: 'scope must be version or pod' };
  return {
    gate,
    runId: text['runId'],
    expectHash: text['expectHash'],
    expectVersion: text['expectVersion'],
    expectDigest: text['expectDigest'],
    baselineHash: text['baselineHash'],
    windowMs: windowMs as number | undefined,
    minSamples: minSamples as number | undefined,
    maxErrorRate: maxErrorRate as number | undefined,
    maxP99Ms: maxP99Ms as number | undefined,
    insufficient,
    scope,
    waitMs: Math.min(defaults.maxWaitMs, (waitMs as number | undefined) ?? 0),
    tenant: text['tenant'],
    expectPods: expectPods as number | undefined,
    durationMs: durationMs as number | undefined,
  };
}

function compact(document: VerdictDocument): Record<string, unknown> {
  return {
    verdict: document.verdict,
    reasonCode: document.reasonCode,
    reason: document.reason.length > 300 ? `${document.reason.slice(0, 297)}...` : document.reason,
    gate: document.gate,
    runId: document.runId,
    policyHash: document.policyHash,
  };
}

function parseFlaggerPayload(body: Record<string, unknown>): FlaggerPayload | { error: string } {
  const name = body['name'];
  const namespace = body['namespace'];
  if (typeof name !== 'string' || name.length === 0 || name.length > 253)
    return { error: 'payload needs a string `name`' };
  if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > 253) {
    return { error: 'payload needs a string `namespace`' };
  }
  const metadataValue = body['metadata'];
  const metadata: Record<string, string> = {};
  if (metadataValue !== undefined && metadataValue !== null) {
    if (typeof metadataValue !== 'object' || Array.isArray(metadataValue))
      return { error: '`metadata` must be an object of strings' };
    for (const [key, value] of Object.entries(metadataValue)) {
      if (typeof value !== 'string') return { error: `metadata.${key.slice(0, 40)} must be a string` };
      metadata[key] = value;
    }
  }
  const phase = typeof body['phase'] === 'string' ? body['phase'] : undefined;
  const checksum = typeof body['checksum'] === 'string' ? body['checksum'] : undefined;
  return { name, namespace, phase, checksum, metadata };
}

/**
 * The agent's request handler for `node:http`.
 * @example http.createServer(createRequestHandler(context)).listen(8686);
 */
export function createRequestHandler(
  context: ServerContext,
): (request: IncomingMessage, response: ServerResponse) => void {
  const { config, logger } = context;
  const token = config.auth.token;
  const flaggerToken = config.auth.flaggerToken;

  const requireBearer = (request: IncomingMessage): void => {
    if (token === undefined) return;
    const given = bearer(request);
    if (given === undefined) throw new HttpError(401, 'missing bearer token');
    if (!tokensMatch(given, token)) throw new HttpError(403, 'invalid token');
  };

  const requireFlaggerToken = (request: IncomingMessage, metadata: Readonly<Record<string, string>>): void => {
    if (flaggerToken === undefined) return;
    const given = metadata['token'] ?? bearer(request);
    if (given === undefined) throw new HttpError(401, 'missing token (metadata.token or bearer)');
    const ok = tokensMatch(given, flaggerToken) || (token !== undefined && tokensMatch(given, token));
    if (!ok) throw new HttpError(403, 'invalid token');
  };

  const evaluate = async (query: GateQuery, runId: string): Promise<VerdictDocument> => {
    const gates = context.policy().gates;
    if (gates[query.gate] === undefined) {
      return context.evaluator.errorDocument(
        query.gate,
        runId,
        context.now(),
        'BAD_REQUEST',
        `unknown gate ${JSON.stringify(query.gate)} (known: ${Object.keys(gates).join(', ')})`,
      );
    }
    let document = context.evaluator.evaluate(query, context.state(), runId);
    const deadline = context.now() + query.waitMs;
    while (document.verdict === 'pending' && context.now() < deadline) {
      await context.nextCycle(deadline - context.now());
      document = context.evaluator.evaluate(query, context.state(), runId);
    }
    return document;
  };

  const defaultRunId = (query: GateQuery): string =>
    query.runId ?? (query.expectHash === undefined ? 'default' : `hash:${query.expectHash}`);

  const analysis = async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> => {
    if (request.method !== 'GET' && request.method !== 'POST' && request.method !== 'PUT') {
      throw new HttpError(405, 'use GET, POST or PUT');
    }
    requireBearer(request);
    const sources: Record<string, unknown>[] = [Object.fromEntries(url.searchParams)];
    let badBody: string | undefined;
    if (request.method !== 'GET') {
      const text = await readBody(request, config.limits.maxBodyBytes);
      try {
        sources.push(parseJsonObject(text, 'body'));
      } catch (error) {
        badBody = (error as Error).message;
      }
    }
    const query = parseGateQuery(sources, { gate: 'slo', maxWaitMs: config.limits.maxWaitMs });
    const now = context.now();
    if (badBody !== undefined || 'error' in query) {
      // Argo shows only "non 2xx" for other codes; a 200 `error` verdict is Inconclusive with the reason visible.
      const reason = badBody ?? (query as { error: string }).error;
      send(
        response,
        200,
        context.evaluator.errorDocument(
          url.searchParams.get('gate') ?? 'unknown',
          url.searchParams.get('runId') ?? 'default',
          now,
          'BAD_REQUEST',
          reason,
        ),
      );
      return;
    }
    const document = await evaluate(query, defaultRunId(query));
    send(response, document.reasonCode === 'AGENT_ERROR' ? 503 : 200, document);
  };

  const flagger = async (request: IncomingMessage, response: ServerResponse, url: URL, hook: string): Promise<void> => {
    if (!(FLAGGER_HOOKS as readonly string[]).includes(hook))
      throw new HttpError(404, `unknown hook type ${JSON.stringify(hook.slice(0, 40))}`);
    if (request.method !== 'POST') throw new HttpError(405, 'Flagger webhooks use POST');
    const text = await readBody(request, config.limits.maxBodyBytes);
    const body = parseJsonObject(text, 'payload');
    const payload = parseFlaggerPayload(body);
    if ('error' in payload) throw new HttpError(400, payload.error);
    requireFlaggerToken(request, payload.metadata);
    const typedHook = hook as FlaggerHook;
    const { token: _token, ...metadata } = payload.metadata;
    const query = parseGateQuery([Object.fromEntries(url.searchParams), metadata], {
      gate: FLAGGER_DEFAULT_GATES[typedHook],
      maxWaitMs: config.limits.maxWaitMs,
    });
    if ('error' in query) throw new HttpError(400, query.error);
    const runId = query.runId ?? `flagger:${payload.namespace}/${payload.name}:${payload.checksum ?? 'none'}`;
    if (typedHook === 'event' || typedHook === 'post-rollout') {
      context.flaggerEvent(runId, payload);
      send(response, flaggerStatus(typedHook, { verdict: 'pass', reasonCode: 'OK' }), {
        verdict: 'pass',
        reasonCode: 'OK',
        reason: `${hook} recorded`,
        runId,
      });
      return;
    }
    // Flagger's rollout hook defaults to "insufficient evidence passes" (don't punish low traffic).
    const effective: GateQuery =
      typedHook === 'rollout' && query.insufficient === undefined ? { ...query, insufficient: 'pass' } : query;
    const document = await evaluate(effective, runId);
    if (typedHook === 'confirm-traffic-increase' && document.verdict === 'pass')
      context.flaggerEvent(runId, { ...payload, phase: 'TrafficIncrease' });
    send(response, flaggerStatus(typedHook, document), compact(document));
  };

  const holds = async (
    request: IncomingMessage,
    response: ServerResponse,
    url: URL,
    rawId: string | undefined,
  ): Promise<void> => {
    requireBearer(request);
    const actorHeader = request.headers['x-gantry-actor'];
    if (rawId !== undefined) {
      if (request.method !== 'DELETE') throw new HttpError(405, 'use DELETE');
      const id = decodeSegment(rawId, 'hold id');
      const actor = (typeof actorHeader === 'string' ? actorHeader : url.searchParams.get('actor')) ?? 'api';
      const removed = context.holds.delete(id, actor.slice(0, 100));
      if (removed === undefined) throw new HttpError(404, `no hold ${JSON.stringify(id.slice(0, 60))}`);
      send(response, 200, { hold: removed });
      return;
    }
    if (request.method === 'GET' || request.method === 'HEAD') {
      send(response, 200, { holds: context.holds.list() });
      return;
    }
    if (request.method !== 'POST') throw new HttpError(405, 'use GET or POST');
    const body = parseJsonObject(await readBody(request, config.limits.maxBodyBytes), 'body');
    const kind = body['kind'] ?? 'hold';
    if (kind !== 'hold' && kind !== 'override') throw new HttpError(400, 'kind must be hold or override');
    const reason = body['reason'];
    const actor = body['actor'] ?? actorHeader;
    if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 500)
      throw new HttpError(400, 'reason must be a non-empty string (≤ 500 chars)');
    if (typeof actor !== 'string' || actor.trim() === '' || actor.length > 100)
      throw new HttpError(400, 'actor must be a non-empty string (≤ 100 chars)');
    const gatesValue = body['gates'];
    if (
      gatesValue !== undefined &&
      (!Array.isArray(gatesValue) ||
        !gatesValue.every((gate) => typeof gate === 'string' && context.policy().gates[gate] !== undefined))
    ) {
      throw new HttpError(
        400,
        `gates must be a list of known gates (${Object.keys(context.policy().gates).join(', ')})`,
      );
    }
    const tenant = body['tenant'];
    if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length === 0 || tenant.length > 200))
      throw new HttpError(400, 'tenant must be a string');
    const now = context.now();
    let expiresAt: number;
    if (body['expiresAt'] !== undefined) {
      expiresAt = typeof body['expiresAt'] === 'string' ? Date.parse(body['expiresAt']) : Number.NaN;
      if (Number.isNaN(expiresAt) || expiresAt <= now)
        throw new HttpError(400, 'expiresAt must be a future ISO 8601 time');
    } else {
      const ttl = body['ttl'] === undefined ? DEFAULT_HOLD_TTL_MS : parseDurationMs(body['ttl']);
      if (ttl === undefined || ttl <= 0) throw new HttpError(400, 'ttl must be a duration such as 30m');
      expiresAt = now + ttl;
    }
    if (expiresAt - now > MAX_HOLD_TTL_MS) throw new HttpError(400, 'holds expire within 7 days at most');
    const hold = context.holds.create({
      kind: kind,
      ...(gatesValue === undefined ? {} : { gates: gatesValue as string[] }),
      ...(tenant === undefined ? {} : { tenant: tenant }),
      reason: reason.trim(),
      actor: actor.trim(),
      expiresAt: new Date(expiresAt).toISOString(),
    });
    send(response, 201, { hold });
  };

  const loadtester = async (
    request: IncomingMessage,
    response: ServerResponse,
    kind: 'gate' | 'rollback',
    action: string,
  ): Promise<void> => {
    if (request.method !== 'POST') throw new HttpError(405, 'use POST');
    const body = parseJsonObject(await readBody(request, config.limits.maxBodyBytes), 'payload');
    if (kind === 'gate' && (action === 'approve' || action === 'halt')) {
      const metadata = (body['metadata'] ?? {}) as Record<string, string>;
      requireFlaggerToken(request, typeof metadata === 'object' && metadata !== null ? metadata : {});
      send(response, action === 'approve' ? 200 : 403, {
        verdict: action === 'approve' ? 'pass' : 'pending',
        reason: `gate ${action}`,
      });
      return;
    }
    const payload = parseFlaggerPayload(body);
    if ('error' in payload) throw new HttpError(400, payload.error);
    requireFlaggerToken(request, payload.metadata);
    const key = `${payload.namespace}/${payload.name}`;
    if (action === 'check') {
      const open = context.loadtesterGate('check', kind, key, 'flagger');
      send(response, open ? 200 : 403, { open, key });
    } else if (action === 'open' || action === 'close') {
      context.loadtesterGate(action, kind, key, payload.metadata['actor'] ?? 'flagger-loadtester-api');
      send(response, 202, { key, [kind]: action === 'open' ? 'opened' : 'closed' });
    } else {
      throw new HttpError(404, 'unknown action');
    }
  };

  const route = async (request: IncomingMessage, response: ServerResponse): Promise<string> => {
    const target = request.url ?? '/';
    if (target.length > config.limits.maxUrlLength) throw new HttpError(414, 'request target too long');
    let url: URL;
    try {
      url = new URL(target, 'http://agent.invalid');
    } catch {
      throw new HttpError(400, 'malformed request target');
    }
    const path = url.pathname;
    const method = request.method ?? 'GET';
    const readOnly = (): void => {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET');
    };
    switch (path) {
      case '/livez': {
        readOnly();
        const result = context.liveness();
        send(response, result.ok ? 200 : 503, result.body);
        return 'livez';
      }
      case '/readyz': {
        readOnly();
        const result = context.readiness();
        send(response, result.ok ? 200 : 503, result.body);
        return 'readyz';
      }
      case '/version':
        readOnly();
        send(response, 200, context.versionDocument());
        return 'version';
      case '/health': {
        readOnly();
        const result = context.health();
        send(response, result.status === 'fail' ? 503 : 200, result.body, {
          'content-type': 'application/health+json',
        });
        return 'health';
      }
      case '/metrics': {
        readOnly();
        const metrics = await context.metricsText();
        response.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        response.end(method === 'HEAD' ? undefined : metrics.text);
        return 'metrics';
      }
      case '/gate/v1/analysis':
        await analysis(request, response, url);
        return 'analysis';
      case '/gate/v1/holds':
        await holds(request, response, url, undefined);
        return 'holds';
      case '/gate/v1/policy':
        readOnly();
        requireBearer(request);
        send(response, 200, context.policyDocument());
        return 'policy';
      case '/gate/v1/summary': {
        readOnly();
        requireBearer(request);
        const summary = context.summary();
        if (summary === undefined)
          send(response, 503, { verdict: 'error', reasonCode: 'AGENT_ERROR', reason: 'no observation of the app yet' });
        else send(response, 200, summary);
        return 'summary';
      }
      case '/gate/v1/audit':
        readOnly();
        requireBearer(request);
        send(response, 200, { entries: context.holds.auditEntries() });
        return 'audit';
      case '/gate/v1/runs':
        readOnly();
        requireBearer(request);
        send(response, 200, {
          runs: context.evaluator.listRuns().map((run) => ({
            id: run.id,
            generation: run.generation,
            startedAt: new Date(run.startedAt).toISOString(),
            lastSeenAt: new Date(run.lastSeenAt).toISOString(),
            phase: run.phase ?? null,
            closedAt: run.closedAt === undefined ? null : new Date(run.closedAt).toISOString(),
            last: run.history.at(-1) ?? null,
          })),
        });
        return 'runs';
      default:
        break;
    }
    if (path.startsWith('/gate/v1/flagger/')) {
      await flagger(request, response, url, path.slice('/gate/v1/flagger/'.length));
      return 'flagger';
    }
    if (path.startsWith('/gate/v1/holds/')) {
      // Decoded inside, after authentication.
      await holds(request, response, url, path.slice('/gate/v1/holds/'.length));
      return 'holds';
    }
    if (path.startsWith('/gate/v1/runs/')) {
      readOnly();
      requireBearer(request);
      const id = decodeSegment(path.slice('/gate/v1/runs/'.length), 'run id');
      const run = context.evaluator.findRun(id);
      if (run === undefined) throw new HttpError(404, `no run ${JSON.stringify(id.slice(0, 100))}`);
      send(response, 200, {
        id: run.id,
        generation: run.generation,
        startedAt: new Date(run.startedAt).toISOString(),
        phase: run.phase ?? null,
        closedAt: run.closedAt === undefined ? null : new Date(run.closedAt).toISOString(),
        history: run.history,
      });
      return 'runs';
    }
    const compat = /^\/(gate|rollback)\/(check|open|close|approve|halt)$/.exec(path);
    if (compat !== null) {
      if (compat[1] === 'rollback' && (compat[2] === 'approve' || compat[2] === 'halt'))
        throw new HttpError(404, 'not found');
      await loadtester(request, response, compat[1] as 'gate' | 'rollback', compat[2]!);
      return 'loadtester';
    }
    throw new HttpError(404, 'not found');
  };

  return (request, response) => {
    const started = performance.now();
    request.on('error', () => undefined);
    route(request, response)
      .then((name) => context.recordRequest(name, response.statusCode, (performance.now() - started) / 1_000))
      .catch((error: unknown) => {
        let status = 503;
        let reasonCode: ReasonCode = 'AGENT_ERROR';
        let reason = 'internal error';
        if (error instanceof HttpError) {
          status = error.status;
          reason = error.message;
          reasonCode = status === 401 || status === 403 ? 'UNAUTHORIZED' : 'BAD_REQUEST';
        } else {
          logger.error({ event: 'agent.http.failed', err: String((error as Error)?.stack ?? error) }, 'request failed');
        }
        const verdict: Verdict = 'error';
        const headers: Record<string, string> = {};
        if (status === 405) headers['allow'] = 'GET, HEAD, POST, PUT, DELETE';
        if (status === 401) headers['www-authenticate'] = 'Bearer realm="gantry-agent"';
        if (status === 413) headers['connection'] = 'close';
        send(response, status, { verdict, reasonCode, reason }, headers);
        if (status === 413) request.resume();
        context.recordRequest('error', status, (performance.now() - started) / 1_000);
      });
  };
}
