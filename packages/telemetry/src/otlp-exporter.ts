// OTLP/HTTP span exporter (protobuf or JSON) on fetch: our protobuf encoder (OpenTelemetry's serializer for JSON),
// our retry policy, and failures reported through a callback rather than thrown or printed. Requests run with tracing suppressed so the
// exporter never traces itself.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { context } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, suppressTracing } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { ExporterOptions } from './options.ts';
import { encodeTraceRequest } from './otlp-protobuf.ts';

const gzipAsync = promisify(gzip);
const RETRYABLE = new Set([429, 502, 503, 504]);
const MAX_ATTEMPTS = 3;

/** Options of {@link OtlpHttpSpanExporter}. */
export interface OtlpHttpSpanExporterOptions extends Required<ExporterOptions> {
  /** Told about each batch that could not be delivered. */
  readonly onError?: (error: Error, spans: number) => void;
  /** Told how many spans each delivered batch had. */
  readonly onExported?: (spans: number) => void;
}

/**
 * Sends spans to an OTLP/HTTP endpoint. Retries 429/502/503/504 and network errors twice with jittered backoff,
 * within the timeout. Header values are never logged.
 * @example
 * const exporter = new OtlpHttpSpanExporter({ endpoint: 'http://collector:4318/v1/traces', protocol: 'http/protobuf',
 *   headers: {}, timeoutMs: 10_000, compression: 'gzip' });
 */
export class OtlpHttpSpanExporter implements SpanExporter {
  readonly #options: OtlpHttpSpanExporterOptions;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #closed = false;

  constructor(options: OtlpHttpSpanExporterOptions) {
    this.#options = options;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.#closed) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    const sending = context
      .with(suppressTracing(context.active()), () => this.#send(spans))
      .then(
        () => {
          this.#options.onExported?.(spans.length);
          resultCallback({ code: ExportResultCode.SUCCESS });
        },
        (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          this.#options.onError?.(failure, spans.length);
          resultCallback({ code: ExportResultCode.FAILED, error: failure });
        },
      );
    this.#inFlight.add(sending);
    void sending.finally(() => this.#inFlight.delete(sending));
  }

  async #send(spans: ReadableSpan[]): Promise<void> {
    const json = this.#options.protocol === 'http/json';
    const serialized = json ? JsonTraceSerializer.serializeRequest(spans) : encodeTraceRequest(spans);
    if (serialized === undefined) throw new Error('spans could not be serialized');
    const gzipped = this.#options.compression === 'gzip';
    const body = gzipped ? await gzipAsync(serialized) : serialized;
    const headers: Record<string, string> = {
      ...this.#options.headers,
      'content-type': json ? 'application/json' : 'application/x-protobuf',
    };
    if (gzipped) headers['content-encoding'] = 'gzip';
    const deadline = Date.now() + this.#options.timeoutMs;
    let lastError: Error = new Error('not sent');
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const response = await fetch(this.#options.endpoint, {
          method: 'POST',
          headers,
          body: new Uint8Array(body),
          signal: AbortSignal.any([AbortSignal.timeout(remaining), this.#abort.signal]),
        });
        // Drain the body so the connection returns to the pool.
        await response.arrayBuffer();
        if (response.ok) return;
        lastError = new Error(`OTLP endpoint answered ${response.status}`);
        if (!RETRYABLE.has(response.status)) break;
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error));
      }
      if (this.#abort.signal.aborted) break;
      if (attempt < MAX_ATTEMPTS) {
        const backoff = Math.min(100 * 2 ** attempt * (0.5 + Math.random()), deadline - Date.now());
        if (backoff <= 0) break;
        await new Promise((resolve) => setTimeout(resolve, backoff).unref());
      }
    }
    throw lastError;
  }

  async forceFlush(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Abandons the requests in flight (after a shutdown deadline passed) so no socket keeps the process alive. */
  abort(): void {
    this.#closed = true;
    this.#abort.abort(new Error('exporter aborted'));
  }

  async shutdown(): Promise<void> {
    this.#closed = true;
    await this.forceFlush();
  }
}
