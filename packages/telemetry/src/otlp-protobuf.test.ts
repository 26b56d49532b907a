import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../test/otlp-receiver.ts';
import { encodeTraceRequest } from './otlp-protobuf.ts';
import { createTestTelemetry } from './testing.ts';

describe('encodeTraceRequest', () => {
  it('encodes the same spans as OpenTelemetry’s own serializer, field for field', async () => {
    const t = createTestTelemetry({ serviceName: 'encoder', resourceAttributes: { 'team.name': 'pay€ments' } });
    try {
      const tracer = trace.getTracer('scope-a', '1.2.3');
      const root = tracer.startSpan('GET /orders/:id', {
        kind: SpanKind.SERVER,
        attributes: {
          'http.route': '/orders/:id',
          count: 3,
          ratio: 0.25,
          ok: true,
          negative: -7,
          list: ['a', 'b'],
          long: 'x'.repeat(300),
        },
      });
      root.addEvent('cache.miss', { key: 'k1' });
      root.setStatus({ code: SpanStatusCode.ERROR, message: 'boom ünïcode' });
      root.end();
      const child = trace
        .getTracer('scope-b')
        .startSpan('db.query', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, root));
      child.end();
      const spans = t.spans();
      expect(spans).toHaveLength(2);
      const ours = decodeTraceRequest(encodeTraceRequest(spans));
      const theirs = decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(spans)!);
      const byId = (list: typeof ours) => [...list].sort((a, b) => a.spanId.localeCompare(b.spanId));
      expect(byId(ours)).toEqual(byId(theirs));
      const server = ours.find((span) => span.name === 'GET /orders/:id')!;
      expect(server).toMatchObject({ kind: 2, statusCode: 2, scope: 'scope-a' });
      expect(server.attributes).toMatchObject({ count: 3, ratio: 0.25, ok: true, negative: -7, long: 'x'.repeat(300) });
      expect(server.resource['team.name']).toBe('pay€ments');
      expect(ours.find((span) => span.name === 'db.query')!.parentSpanId).toBe(server.spanId);
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
      const official = Buffer.from(ProtobufTraceSerializer.serializeRequest(t.spans())!);
      const start = 1_795_316_659n * 1_000_000_000n + 245_123_457n;
      const needle = Buffer.alloc(8);
      needle.writeBigUInt64LE(start);
      expect(encoded.includes(needle)).toBe(true);
      expect(official.includes(needle)).toBe(true);
    } finally {
      await t.shutdown();
    }
  });
});
