// Open-loop load generator: starts requests on a fixed schedule whatever the responses do (so a slow version
// cannot slow the load down and hide its own latency), bounded by a maximum number in flight.
import { Agent, request as httpRequest } from 'node:http';

/** Idle keep-alive sockets are closed after this long (the client side closes first, as it should). */
export const IDLE_SOCKET_MS = 10_000;

/** One request the generator made. */
export interface LoadResult {
  readonly at: number;
  readonly status: number;
  readonly ms: number;
  /** The version that answered, from the `x-app-version` response header. */
  readonly version: string | undefined;
  /** Set when no HTTP response arrived (connection error, timeout) or the generator was saturated. */
  readonly error?: string;
}

/** A request to send: method, path and optional JSON body. */
export interface LoadRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: unknown;
}

/** Options for {@link startLoad}. */
export interface LoadOptions {
  /** Base URL, e.g. the proxy's. */
  readonly url: string;
  /** Requests per second. */
  readonly rate: number;
  /** Chooses the next request; receives a counter. */
  readonly next: (sequence: number) => LoadRequest;
  readonly onResult: (result: LoadResult) => void;
  /** @default 200 */
  readonly maxInFlight?: number;
  /** Per-request timeout. @default 5_000 */
  readonly timeoutMs?: number;
}

/** A running load. */
export interface Load {
  /** Changes the rate from the next tick on. */
  setRate(rate: number): void;
  /** Stops scheduling and waits for requests in flight. */
  stop(): Promise<void>;
}

/**
 * Starts sending requests at `rate` per second over keep-alive connections.
 * @throws RangeError when `rate` is not a positive finite number.
 */
export function startLoad(options: LoadOptions): Load {
  const check = (rate: number): number => {
    if (!Number.isFinite(rate) || rate <= 0) throw new RangeError(`Expected \`rate\` > 0, got ${String(rate)}`);
    return rate;
  };
  let rate = check(options.rate);
  const maxInFlight = options.maxInFlight ?? 200;
  const timeoutMs = options.timeoutMs ?? 5_000;
  // An idle timeout well under the proxy's keep-alive timeout (30 s). Without one, Node's agent ignores the
  // server's `Keep-Alive: timeout=` hint and keeps idle sockets forever, so now and then it reused one at the
  // moment the server closed it: an ECONNRESET the service had nothing to do with.
  const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight, timeout: IDLE_SOCKET_MS });
  let inFlight = 0;
  let sequence = 0;
  let stopped = false;
  const drained: (() => void)[] = [];
  // The schedule restarts from an anchor whenever the rate changes, so a new rate neither bursts nor pauses.
  let anchorTime = performance.now();
  let anchorSent = 0;
  let sent = 0;

  const fire = (): void => {
    const at = Date.now();
    if (inFlight >= maxInFlight) {
      options.onResult({ at, status: 0, ms: 0, version: undefined, error: 'generator saturated' });
      return;
    }
    const spec = options.next(sequence++);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const started = performance.now();
    inFlight += 1;
    let done = false;
    const finish = (result: Omit<LoadResult, 'at' | 'ms'>): void => {
      if (done) return;
      done = true;
      inFlight -= 1;
      options.onResult({ at, ms: performance.now() - started, ...result });
      if (inFlight === 0) for (const resolve of drained.splice(0)) resolve();
    };
    const req = httpRequest(new URL(spec.path, options.url), {
      method: spec.method,
      agent,
      timeout: timeoutMs,
      headers:
        payload === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('response', (response) => {
      const version = response.headers['x-app-version'];
      response.resume();
      response.on('end', () =>
        finish({ status: response.statusCode ?? 0, version: typeof version === 'string' ? version : undefined }),
      );
      response.on('error', (error) => finish({ status: 0, version: undefined, error: error.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) =>
      finish({ status: 0, version: undefined, error: error.code ?? error.message }),
    );
    req.end(payload);
  };

  // Schedule against the wall clock so timer drift does not lower the rate.
  const tick = (): void => {
    if (stopped) return;
    const due = anchorSent + Math.floor(((performance.now() - anchorTime) / 1000) * rate);
    while (sent < due) {
      sent += 1;
      fire();
    }
    setTimeout(tick, Math.max(1, Math.min(20, 1000 / rate / 2))).unref();
  };
  tick();

  return {
    setRate(next) {
      rate = check(next);
      anchorTime = performance.now();
      anchorSent = sent;
    },
    stop: async () => {
      stopped = true;
      if (inFlight > 0) await new Promise<void>((resolve) => drained.push(resolve));
      agent.destroy();
    },
  };
}
