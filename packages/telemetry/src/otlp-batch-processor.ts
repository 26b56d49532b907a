// The batch span processor of the OTLP/protobuf path. Same contract as the SDK's BatchSpanProcessor (OTEL_BSP_*:
// a span queue of maxQueueSize, exports of maxExportBatchSize, one export in flight, a scheduled delay, flush and
// shutdown), but each span is encoded when it ends: the queue holds bytes instead of span objects. Spans kept
// alive for seconds survive young-generation collections, get copied and promoted, and cost the garbage collector
// more than encoding them; a span dropped at end() dies young.
import { diag, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import { EncodedSpanBatch } from './otlp-protobuf.ts';

/** What the processor needs from an exporter: sending an encoded `ExportTraceServiceRequest`. */
export interface EncodedSpanSender {
  /** Resolves when delivered; rejects when not (the sender reports the failure itself). */
  sendEncoded(body: Uint8Array, spans: number): Promise<void>;
  shutdown(): Promise<void>;
}

/** Options of {@link OtlpBatchSpanProcessor}. */
export interface OtlpBatchSpanProcessorOptions {
  readonly sender: EncodedSpanSender;
  /** Delay before a batch that is not full is sent. */
  readonly scheduledDelayMs: number;
  /** Spans waiting for export (encoded) beyond which new ones are dropped. */
  readonly maxQueueSize: number;
  /** Spans per export request. */
  readonly maxExportBatchSize: number;
  /** Told about spans dropped because the queue was full or a span could not be encoded. */
  readonly onDropped?: (spans: number) => void;
}

/**
 * Batches sampled spans for OTLP/protobuf export, encoding each one as it ends.
 * @example
 * const processor = new OtlpBatchSpanProcessor({ sender: exporter, scheduledDelayMs: 5_000, maxQueueSize: 2_048,
 *   maxExportBatchSize: 512 });
 */
export class OtlpBatchSpanProcessor implements SpanProcessor {
  readonly #sender: EncodedSpanSender;
  readonly #delayMs: number;
  readonly #maxQueueSize: number;
  readonly #maxBatch: number;
  readonly #onDropped: ((spans: number) => void) | undefined;
  #current: EncodedSpanBatch | undefined;
  readonly #sealed: EncodedSpanBatch[] = [];
  /** Spans encoded and not yet handed to the sender. */
  #queued = 0;
  #exporting = false;
  #timer: NodeJS.Timeout | undefined;
  #idle: (() => void)[] = [];
  #shutdown: Promise<void> | undefined;
  #droppedSinceWarning = 0;

  constructor(options: OtlpBatchSpanProcessorOptions) {
    this.#sender = options.sender;
    this.#delayMs = options.scheduledDelayMs;
    this.#maxQueueSize = options.maxQueueSize;
    this.#maxBatch = Math.min(options.maxExportBatchSize, options.maxQueueSize);
    this.#onDropped = options.onDropped;
  }

  /** Spans waiting for export. */
  get queued(): number {
    return this.#queued;
  }

  onStart(): void {
    // Nothing to do before a span ends.
  }

  onEnd(span: ReadableSpan): void {
    if (this.#shutdown !== undefined) return;
    if ((span.spanContext().traceFlags & (TraceFlags.SAMPLED as number)) === 0) return;
    if (this.#queued >= this.#maxQueueSize) {
      this.#drop();
      return;
    }
    const batch = (this.#current ??= new EncodedSpanBatch(this.#maxBatch));
    try {
      batch.add(span);
    } catch (error) {
      diag.error('@gantry/telemetry: a span could not be encoded and was dropped', error);
      this.#drop();
      return;
    }
    this.#queued += 1;
    if (this.#droppedSinceWarning > 0) {
      diag.warn(`@gantry/telemetry: dropped ${this.#droppedSinceWarning} spans because the export queue was full`);
      this.#droppedSinceWarning = 0;
    }
    if (batch.count >= this.#maxBatch) {
      this.#seal();
      this.#pump();
    } else if (this.#timer === undefined && !this.#exporting) {
      this.#startTimer();
    }
  }

  #drop(): void {
    this.#droppedSinceWarning += 1;
    this.#onDropped?.(1);
  }

  #startTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#seal();
      this.#pump();
    }, this.#delayMs);
    this.#timer.unref();
  }

  #seal(): void {
    const batch = this.#current;
    if (batch === undefined || batch.count === 0) return;
    this.#current = undefined;
    this.#sealed.push(batch);
  }

  /** Starts the next export unless one is in flight; when nothing is left, wakes up flush() waiters. */
  #pump(): void {
    if (this.#exporting) return;
    const batch = this.#sealed.shift();
    if (batch === undefined) {
      if (this.#current !== undefined && this.#timer === undefined && this.#shutdown === undefined) {
        this.#startTimer();
      }
      const waiters = this.#idle;
      this.#idle = [];
      for (const wake of waiters) wake();
      return;
    }
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#exporting = true;
    this.#queued -= batch.count;
    void this.#export(batch).finally(() => {
      this.#exporting = false;
      // A full batch may have been sealed meanwhile; a partial one waits for its timer (started in #pump).
      this.#pump();
    });
  }

  async #export(batch: EncodedSpanBatch): Promise<void> {
    try {
      for (const resource of batch.resources()) {
        if (resource.asyncAttributesPending === true) await resource.waitForAsyncAttributes?.();
      }
      await this.#sender.sendEncoded(batch.finish(), batch.count);
    } catch {
      // The sender reported it (metric and rate-limited log); the batch is lost, as with the SDK's processor.
    }
  }

  /** Sends everything queued so far and resolves when it has been delivered (or failed). */
  forceFlush(): Promise<void> {
    this.#seal();
    return new Promise<void>((resolve) => {
      this.#idle.push(resolve);
      this.#pump();
    });
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.forceFlush();
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#sender.shutdown();
    })();
    return this.#shutdown;
  }
}
