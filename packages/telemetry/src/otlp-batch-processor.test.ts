import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../test/otlp-receiver.ts';
import { OtlpBatchSpanProcessor, type EncodedSpanSender } from './otlp-batch-processor.ts';
import { createTestTelemetry, type TestTelemetry } from './testing.ts';

/** Records what it is sent; each send completes when the test says so (or at once). */
class RecordingSender implements EncodedSpanSender {
  readonly batches: string[][] = [];
  readonly counts: number[] = [];
  hold = false;
  fail = false;
  shutDown = false;
  readonly #held: (() => void)[] = [];

  sendEncoded(body: Uint8Array, spans: number): Promise<void> {
    this.batches.push(decodeTraceRequest(body).map((span) => span.name));
    this.counts.push(spans);
    if (this.fail) return Promise.reject(new Error('collector down'));
    if (!this.hold) return Promise.resolve();
    return new Promise((resolve) => this.#held.push(resolve));
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }

  shutdown(): Promise<void> {
    this.shutDown = true;
    return Promise.resolve();
  }
}

let t: TestTelemetry | undefined;
afterEach(async () => {
  await t?.shutdown();
  t = undefined;
});

function endedSpans(count: number, prefix = 'span'): ReadableSpan[] {
  t ??= createTestTelemetry();
  const tracer = trace.getTracer('test');
  for (let index = 0; index < count; index += 1) tracer.startSpan(`${prefix}.${index}`).end();
  const spans = t.spans().filter((span) => span.name.startsWith(`${prefix}.`));
  expect(spans).toHaveLength(count);
  return spans;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('OtlpBatchSpanProcessor', () => {
  it('sends a batch as soon as it is full and the rest after the scheduled delay', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpBatchSpanProcessor({
      sender,
      scheduledDelayMs: 200,
      maxQueueSize: 100,
      maxExportBatchSize: 4,
    });
    for (const span of endedSpans(6)) processor.onEnd(span);
    await tick();
    expect(sender.batches).toEqual([['span.0', 'span.1', 'span.2', 'span.3']]);
    expect(processor.queued).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(sender.batches).toEqual([
      ['span.0', 'span.1', 'span.2', 'span.3'],
      ['span.4', 'span.5'],
    ]);
    expect(sender.counts).toEqual([4, 2]);
    expect(processor.queued).toBe(0);
    await processor.shutdown();
  });

  it('keeps one export in flight, queues at most maxQueueSize spans meanwhile and counts the ones it drops', async () => {
    const sender = new RecordingSender();
    sender.hold = true;
    let dropped = 0;
    const processor = new OtlpBatchSpanProcessor({
      sender,
      scheduledDelayMs: 60_000,
      maxQueueSize: 6,
      maxExportBatchSize: 3,
      onDropped: (spans) => (dropped += spans),
    });
    // 3 leave at once (held by the collector), 6 wait, 3 are dropped.
    for (const span of endedSpans(12)) processor.onEnd(span);
    await tick();
    expect(sender.batches).toHaveLength(1);
    expect(processor.queued).toBe(6);
    expect(dropped).toBe(3);
    sender.release();
    await processor.forceFlush();
    expect(sender.batches.flat()).toEqual([
      'span.0',
      'span.1',
      'span.2',
      'span.3',
      'span.4',
      'span.5',
      'span.6',
      'span.7',
      'span.8',
    ]);
    expect(sender.counts).toEqual([3, 3, 3]);
    // Room again: later spans are accepted.
    for (const span of endedSpans(2, 'later')) processor.onEnd(span);
    await processor.forceFlush();
    expect(sender.batches.at(-1)).toEqual(['later.0', 'later.1']);
    expect(dropped).toBe(3);
    await processor.shutdown();
  });

  it('flushes on demand, goes on after a failed export, and takes nothing after shutdown', async () => {
    const sender = new RecordingSender();
    const processor = new OtlpBatchSpanProcessor({
      sender,
      scheduledDelayMs: 60_000,
      maxQueueSize: 100,
      maxExportBatchSize: 50,
    });
    const [first, second, third] = endedSpans(3);
    sender.fail = true;
    processor.onEnd(first!);
    await processor.forceFlush();
    expect(sender.batches).toEqual([['span.0']]);
    sender.fail = false;
    processor.onEnd(second!);
    await processor.shutdown();
    expect(sender.batches).toEqual([['span.0'], ['span.1']]);
    expect(sender.shutDown).toBe(true);
    processor.onEnd(third!);
    await processor.forceFlush();
    expect(sender.batches).toHaveLength(2);
    expect(processor.queued).toBe(0);
  });
});
