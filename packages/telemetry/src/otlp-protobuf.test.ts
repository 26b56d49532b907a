import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { canonicalTraceRequest, decodeTraceRequest } from '../test/otlp-receiver.ts';
import { EncodedSpanBatch, encodeTraceRequest } from './otlp-protobuf.ts';
import { createTestTelemetry } from './testing.ts';

const official = (spans: ReadableSpan[]): Uint8Array => ProtobufTraceSerializer.serializeRequest(spans)!;

/** Spans that use every part of the format: events, links, trace state, remote parents, dropped counts. */
function makeSpans(): void {
  const tracer = trace.getTracer('scope-a', '1.2.3');
  const root = tracer.startSpan('GET /orders/:id', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.route': '/orders/:id',
      count: 3,
      ratio: 0.25,
      ok: true,
      negative: -7,
      big: 2 ** 40,
      list: ['a', 'b'],
      numbers: [1, 2.5],
      long: 'x'.repeat(300),
      unicode: 'prix €',
      huge: 2 ** 60,
      fraction: -1.5,
    },
  });
  // Values the SDK accepts beyond the API's AttributeValue (OTLP AnyValue): bytes, maps, nulls.
  const anyValues: Record<string, unknown> = {
    bytes: new Uint8Array([0, 1, 254, 255]),
    nothing: null,
    map: { a: 'b', nested: { n: 1 }, list: [true, null, 'x'] },
    sparse: [1, null, 2],
  };
  for (const [key, value] of Object.entries(anyValues)) root.setAttribute(key, value);
  root.addEvent('cache.miss', { key: 'k1', hits: 0 });
  root.addEvent('plain');
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'boom ünïcode' });
  root.end();
  // 130 attributes: the SDK keeps 128 and counts 2 dropped.
  const crowded = tracer.startSpan('crowded');
  for (let index = 0; index < 130; index += 1) crowded.setAttribute(`k${index}`, index);
  crowded.setStatus({ code: SpanStatusCode.OK });
  crowded.end();
  const child = trace.getTracer('scope-b').startSpan(
    'db.query',
    {
      kind: SpanKind.CLIENT,
      links: [{ context: root.spanContext(), attributes: { reason: 'retry' } }],
    },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  child.end();
  // A remote parent with trace state.
  const remote = propagation.extract(ROOT_CONTEXT, {
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    tracestate: 'vendor=abc,other=1',
  });
  context.with(remote, () => tracer.startSpan('from.remote', { kind: SpanKind.CONSUMER }).end());
}

describe('encodeTraceRequest', () => {
  it('encodes the same content as OpenTelemetry’s own serializer, field for field', async () => {
    const t = createTestTelemetry({ serviceName: 'encoder', resourceAttributes: { 'team.name': 'pay€ments' } });
    try {
      makeSpans();
      const spans = t.spans();
      expect(spans).toHaveLength(4);
      expect(spans.find((span) => span.name === 'crowded')!.droppedAttributesCount).toBe(2);
      // Every field, every value: only explicit default values (proto3 zeros), which mean "absent", may differ.
      expect(canonicalTraceRequest(encodeTraceRequest(spans))).toEqual(canonicalTraceRequest(official(spans)));
      // And the parts a collector reads, decoded.
      const ours = decodeTraceRequest(encodeTraceRequest(spans));
      const server = ours.find((span) => span.name === 'GET /orders/:id')!;
      expect(server).toMatchObject({ kind: 2, statusCode: 2, scope: 'scope-a' });
      expect(server.attributes).toMatchObject({ count: 3, ratio: 0.25, ok: true, negative: -7, long: 'x'.repeat(300) });
      expect(server.resource['team.name']).toBe('pay€ments');
      expect(ours.find((span) => span.name === 'db.query')!.parentSpanId).toBe(server.spanId);
      expect(ours.find((span) => span.name === 'from.remote')!.parentSpanId).toBe('00f067aa0ba902b7');
    } finally {
      await t.shutdown();
    }
  });

  it('gives the same request when spans are added one by one as they end, scopes interleaved', async () => {
    const t = createTestTelemetry({ serviceName: 'encoder' });
    try {
      makeSpans();
      makeSpans();
      const spans = t.spans();
      const batch = new EncodedSpanBatch(4);
      for (const span of spans) batch.add(span);
      expect(batch.count).toBe(spans.length);
      expect(canonicalTraceRequest(batch.finish())).toEqual(canonicalTraceRequest(official(spans)));
      // Encoded strings are cached: a second encoding of the same spans is identical.
      expect(Buffer.from(encodeTraceRequest(spans)).equals(Buffer.from(encodeTraceRequest(spans)))).toBe(true);
    } finally {
      await t.shutdown();
    }
  });

  it('encodes repeated integer attributes from its pair cache exactly as the first time', async () => {
    const t = createTestTelemetry({ serviceName: 'encoder' });
    try {
      const tracer = trace.getTracer('scope-int');
      // More distinct values per key than the cache keeps, each seen twice, plus values outside the cached range.
      for (let round = 0; round < 2; round += 1) {
        for (let index = 0; index < 100; index += 1) {
          tracer
            .startSpan('int', {
              attributes: { 'http.response.status_code': 200 + index, port: 65_535 + index, zero: -0, neg: -index },
            })
            .end();
        }
      }
      const spans = t.spans();
      expect(spans).toHaveLength(200);
      const first = encodeTraceRequest(spans);
      expect(canonicalTraceRequest(first)).toEqual(canonicalTraceRequest(official(spans)));
      expect(Buffer.from(encodeTraceRequest(spans)).equals(Buffer.from(first))).toBe(true);
      const decoded = decodeTraceRequest(first);
      expect(decoded[150]!.attributes).toMatchObject({
        'http.response.status_code': 250,
        port: 65_585,
        zero: 0,
        neg: -50,
      });
    } finally {
      await t.shutdown();
    }
  });

  it('writes start and end times exactly (nanoseconds past 2^53)', async () => {
    const t = createTestTelemetry();
    try {
      trace
        .getTracer('x')
        .startSpan('timed', { startTime: [1_795_316_659, 245_123_457] })
        .end([1_795_316_660, 999_999_999]);
      const encoded = Buffer.from(encodeTraceRequest(t.spans()));
      const start = 1_795_316_659n * 1_000_000_000n + 245_123_457n;
      const needle = Buffer.alloc(8);
      needle.writeBigUInt64LE(start);
      expect(encoded.includes(needle)).toBe(true);
      expect(Buffer.from(official(t.spans())).includes(needle)).toBe(true);
    } finally {
      await t.shutdown();
    }
  });
});
