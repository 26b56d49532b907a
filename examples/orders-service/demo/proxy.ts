// A small weighted reverse proxy standing in for the Service / ingress of a progressive rollout: it splits
// traffic between a stable and a canary pool by weight, and — like kube-proxy with endpoints following readiness —
// only routes to backends whose readiness probe answers 200. It never retries, so a request a backend drops
// reaches the client as a failure and is counted.
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Idle sockets to a backend are closed after this long: under the apps' keep-alive timeout (fastify's 72 s), so
 * the proxy never reuses a socket the app is closing — what load balancers do with their upstream idle timeout.
 */
export const UPSTREAM_IDLE_MS = 10_000;

/** One instance behind the proxy. */
export interface Backend {
  /** Unique name, e.g. `v1-a`. */
  readonly id: string;
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly version: string;
  /** Readiness probe path polled to decide whether the backend gets traffic. @default '/q/health/ready' */
  readonly readinessPath?: string;
}

/** What happened to one proxied request. */
export interface ProxyResult {
  readonly at: number;
  readonly backend: string | undefined;
  readonly version: string | undefined;
  readonly pool: 'stable' | 'canary' | undefined;
  readonly status: number;
  readonly ms: number;
  /** Set when the proxy could not get a response from the backend (connection refused, reset, no backend). */
  readonly error?: string;
}

/** Options for {@link createWeightedProxy}. */
export interface WeightedProxyOptions {
  /** Called for every request once it completed or failed. */
  readonly onResult?: (result: ProxyResult) => void;
  /** How often each backend's readiness is polled. @default 500 */
  readonly readinessIntervalMs?: number;
  /** Probe timeout. @default 1_000 */
  readonly readinessTimeoutMs?: number;
}

/** The running proxy. */
export interface WeightedProxy {
  readonly url: string;
  /** Replaces the pools. Backends new to the proxy start out of rotation until their readiness answers 200. */
  setPools(stable: readonly Backend[], canary: readonly Backend[]): void;
  /** Percentage of requests (0–100) sent to the canary pool. */
  setCanaryWeight(percent: number): void;
  readonly canaryWeight: number;
  /** Backends currently in rotation, by pool. */
  inRotation(): { stable: string[]; canary: string[] };
  close(): Promise<void>;
}

interface Member {
  readonly backend: Backend;
  ready: boolean;
  readonly agent: Agent;
}

/**
 * Starts the proxy on a free loopback port.
 * @throws RangeError for a weight outside 0–100.
 */
export async function createWeightedProxy(options: WeightedProxyOptions = {}): Promise<WeightedProxy> {
  const interval = options.readinessIntervalMs ?? 500;
  const probeTimeout = options.readinessTimeoutMs ?? 1_000;
  const members = new Map<string, Member>();
  let stable: string[] = [];
  let canary: string[] = [];
  let weight = 0;
  const cursors = { stable: 0, canary: 0 };

  const pick = (): { member: Member; pool: 'stable' | 'canary' } | undefined => {
    const readyIn = (ids: string[]): Member[] =>
      ids.map((id) => members.get(id)).filter((member): member is Member => member?.ready === true);
    const canaryReady = readyIn(canary);
    const stableReady = readyIn(stable);
    let pool: 'stable' | 'canary' = Math.random() * 100 < weight ? 'canary' : 'stable';
    if (pool === 'canary' && canaryReady.length === 0) pool = 'stable';
    if (pool === 'stable' && stableReady.length === 0) pool = 'canary';
    const candidates = pool === 'canary' ? canaryReady : stableReady;
    if (candidates.length === 0) return undefined;
    cursors[pool] = (cursors[pool] + 1) % candidates.length;
    return { member: candidates[cursors[pool]]!, pool };
  };

  const server: Server = createServer((incoming, outgoing) => {
    const started = performance.now();
    const at = Date.now();
    const chosen = pick();
    const finish = (status: number, error?: string): void => {
      options.onResult?.({
        at,
        backend: chosen?.member.backend.id,
        version: chosen?.member.backend.version,
        pool: chosen?.pool,
        status,
        ms: performance.now() - started,
        ...(error === undefined ? {} : { error }),
      });
    };
    if (chosen === undefined) {
      incoming.resume();
      outgoing.writeHead(503, { 'content-type': 'text/plain' }).end('no ready backend\n');
      finish(503, 'no ready backend');
      return;
    }
    const target = new URL(incoming.url ?? '/', chosen.member.backend.url);
    const upstream = httpRequest(target, {
      method: incoming.method,
      headers: { ...incoming.headers, host: target.host },
      agent: chosen.member.agent,
    });
    upstream.on('response', (response: IncomingMessage) => {
      const headers = { ...response.headers };
      delete headers['connection'];
      delete headers['keep-alive'];
      outgoing.writeHead(response.statusCode ?? 502, headers);
      response.pipe(outgoing);
      response.on('end', () => finish(response.statusCode ?? 502));
      response.on('error', (error) => finish(502, error.message));
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (!outgoing.headersSent)
        outgoing.writeHead(502, { 'content-type': 'text/plain' }).end(`${error.code ?? error.message}\n`);
      else outgoing.destroy();
      finish(502, error.code ?? error.message);
    });
    incoming.pipe(upstream);
  });
  server.keepAliveTimeout = 30_000;

  const probe = async (member: Member): Promise<void> => {
    const path = member.backend.readinessPath ?? '/q/health/ready';
    try {
      const response = await fetch(new URL(path, member.backend.url), { signal: AbortSignal.timeout(probeTimeout) });
      await response.arrayBuffer();
      member.ready = response.status === 200;
    } catch {
      member.ready = false;
    }
  };
  const timer = setInterval(() => {
    for (const member of members.values()) void probe(member);
  }, interval);
  timer.unref();

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get canaryWeight() {
      return weight;
    },
    setPools(nextStable, nextCanary) {
      const next = [...nextStable, ...nextCanary];
      for (const backend of next) {
        if (!members.has(backend.id)) {
          const member: Member = {
            backend,
            ready: false,
            agent: new Agent({ keepAlive: true, maxSockets: 64, timeout: UPSTREAM_IDLE_MS }),
          };
          members.set(backend.id, member);
          void probe(member);
        }
      }
      const keep = new Set(next.map((backend) => backend.id));
      for (const [id, member] of members) {
        if (!keep.has(id)) {
          members.delete(id);
          // Let requests in flight finish on their sockets; new ones never pick this backend again.
          setTimeout(() => member.agent.destroy(), 30_000).unref();
        }
      }
      stable = nextStable.map((backend) => backend.id);
      canary = nextCanary.map((backend) => backend.id);
    },
    setCanaryWeight(percent) {
      if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
        throw new RangeError(`Expected \`percent\` to be a number from 0 to 100, got ${String(percent)}`);
      }
      weight = percent;
    },
    inRotation() {
      const ready = (ids: string[]): string[] => ids.filter((id) => members.get(id)?.ready === true);
      return { stable: ready(stable), canary: ready(canary) };
    },
    close: async () => {
      clearInterval(timer);
      for (const member of members.values()) member.agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
