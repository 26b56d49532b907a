// CloudEvents 1.0 (structured JSON) to an orchestrator URL and/or Kafka. Each sink has a bounded buffer: while a
// sink is down events wait there, retried with exponential backoff and jitter; when the buffer is full the oldest
// event is dropped and counted. Sending never throws into the agent.
import { nodeCrypto } from './builtins.ts';
import type { HttpClient } from './http-client.ts';
import type { Logger } from './logger.ts';

/** A CloudEvents 1.0 event in structured JSON mode. */
export interface CloudEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject?: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * Builds an event.
 * @example cloudEvent('dev.gantry.agent.heartbeat', '/gantry/agent/shop/orders-1', { ready: 'UP' }, Date.now())
 */
export function cloudEvent(
  type: string,
  source: string,
  data: Record<string, unknown>,
  now: number,
  subject?: string,
): CloudEvent {
  return {
    specversion: '1.0',
    id: nodeCrypto().randomUUID(),
    source,
    type,
    ...(subject === undefined ? {} : { subject }),
    time: new Date(now).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

/** Delivers a batch of events; rejects when the sink is unavailable. */
export type Deliver = (events: readonly CloudEvent[]) => Promise<void>;

/** Counters a sink reports. */
export interface SinkCounters {
  sent(count: number): void;
  dropped(count: number): void;
  buffered(size: number): void;
  failed(): void;
}

/** Options of a buffered sink. */
export interface BufferedSinkOptions {
  readonly name: string;
  readonly deliver: Deliver;
  readonly maxBuffer: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly batchSize?: number;
  readonly logger: Logger;
  readonly counters: SinkCounters;
  readonly random?: () => number;
}

/** A sink with a bounded buffer and retries. */
export class BufferedSink {
  readonly #options: BufferedSinkOptions;
  readonly #queue: CloudEvent[] = [];
  #sending = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: BufferedSinkOptions) {
    this.#options = options;
  }

  get name(): string {
    return this.#options.name;
  }

  /** Events waiting. */
  get size(): number {
    return this.#queue.length;
  }

  /** Queues an event (drops the oldest when full) and starts sending. */
  push(event: CloudEvent): void {
    if (this.#closed) return;
    this.#queue.push(event);
    if (this.#queue.length > this.#options.maxBuffer) {
      const excess = this.#queue.length - this.#options.maxBuffer;
      this.#queue.splice(0, excess);
      this.#options.counters.dropped(excess);
    }
    this.#options.counters.buffered(this.#queue.length);
    if (this.#timer === undefined) void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#sending || this.#closed) return;
    this.#sending = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.slice(0, this.#options.batchSize ?? 100);
        try {
          await this.#options.deliver(batch);
        } catch (error) {
          this.#failures += 1;
          this.#options.counters.failed();
          const base = Math.min(this.#options.retryMaxMs, this.#options.retryMinMs * 2 ** (this.#failures - 1));
          const delay = Math.round(base / 2 + (this.#options.random ?? Math.random)() * (base / 2));
          if (this.#failures === 1 || this.#failures % 10 === 0) {
            this.#options.logger.warn(
              {
                event: 'agent.events.sink_down',
                sink: this.#options.name,
                failures: this.#failures,
                retryInMs: delay,
                err: String((error as Error)?.message ?? error),
              },
              `event sink ${this.#options.name} unavailable; retrying`,
            );
          }
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            void this.#flush();
          }, delay);
          this.#timer.unref();
          return;
        }
        if (this.#failures > 0) {
          this.#options.logger.info(
            { event: 'agent.events.sink_recovered', sink: this.#options.name },
            `event sink ${this.#options.name} recovered`,
          );
        }
        this.#failures = 0;
        // Events dropped while this batch was in flight shifted the queue; remove what was delivered.
        const delivered = new Set(batch.map((event) => event.id));
        let removed = 0;
        while (removed < batch.length && this.#queue.length > 0 && delivered.has(this.#queue[0]!.id)) {
          this.#queue.shift();
          removed += 1;
        }
        this.#options.counters.sent(batch.length);
        this.#options.counters.buffered(this.#queue.length);
      }
    } finally {
      this.#sending = false;
      if (this.#queue.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** Resolves when the buffer is empty or `timeoutMs` passed. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops sending (buffered events are kept in memory only). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** Delivery to an HTTP endpoint: one POST per event, `application/cloudevents+json`; any non-2xx is a failure. */
export function httpDeliver(client: HttpClient, url: string, timeoutMs: number, token?: string): Deliver {
  return async (events) => {
    for (const event of events) {
      const response = await client(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/cloudevents+json; charset=utf-8',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: JSON.stringify(event),
        timeoutMs,
        maxBytes: 64 * 1024,
      });
      if (response.status < 200 || response.status >= 300)
        throw new Error(`HTTP ${response.status} from the orchestrator`);
    }
  };
}
