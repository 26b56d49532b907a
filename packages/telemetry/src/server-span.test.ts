import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from '@opentelemetry/api';
import { suppressTracing, TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  SimpleSpanProcessor,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SPAN_LIMITS, poolIdGenerator, ServerSpanStarter, setKnownAttribute } from './server-span.ts';

const ATTRIBUTES: Attributes = {
  'http.request.method': 'POST',
  'http.route': '/orders/:id',
  'url.path': '/orders/42',
  'url.scheme': 'http',
  'network.protocol.version': '1.1',
};

interface Pair {
  /** The spans exported so far (SimpleSpanProcessor exports asynchronously). */
  readonly finished: () => Promise<ReadableSpan[]>;
  readonly tracer: Tracer;
  readonly starter: ServerSpanStarter;
}

/** An SDK tracer and a ServerSpanStarter on the very same settings, as installTracing() builds them. */
function pair(
  sampler: Sampler = new AlwaysOnSampler(),
  limits = DEFAULT_SPAN_LIMITS,
  extra: SpanProcessor[] = [],
): Pair {
  const exporter = new InMemorySpanExporter();
  const simple = new SimpleSpanProcessor({ exporter });
  const processors: SpanProcessor[] = [simple, ...extra];
  const resource = resourceFromAttributes({ 'service.name': 'server-span-test' });
  const provider = new TracerProvider({
    resource,
    sampler,
    spanProcessors: processors,
    spanLimits: { ...limits },
    idGenerator: poolIdGenerator,
  });
  const tracer = provider.getTracer('@gantry/telemetry');
  const scope = (tracer as unknown as { instrumentationScope: ReadableSpan['instrumentationScope'] })
    .instrumentationScope;
  const starter = new ServerSpanStarter({ resource, scope, sampler, limits, processors });
  const finished = async (): Promise<ReadableSpan[]> => {
    await simple.forceFlush();
    return exporter.getFinishedSpans();
  };
  return { finished, tracer, starter };
}

/** What an exporter sees of a span, ids aside. */
function shape(span: ReadableSpan): Record<string, unknown> {
  return {
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    status: span.status,
    events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
    links: span.links,
    traceFlags: span.spanContext().traceFlags,
    hasParent: span.parentSpanContext !== undefined,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
    resource: span.resource.attributes,
    scope: span.instrumentationScope,
    ended: span.ended,
  };
}

const FAILURE = new TypeError('bad input');

/** The same calls a handler and the plugin make on a request's span. */
function exercise(span: Span): void {
  span.setAttribute('tenant.id', 'acme');
  span.setAttributes({ 'app.flag': true, 'app.count': 3, 'app.invalid': {} });
  span.addEvent('cache.miss', { key: 'orders:42' });
  span.addLink({ context: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 }, attributes: { x: 1 } });
  span.recordException(FAILURE);
  setKnownAttribute(span, 'http.response.status_code', 503);
  setKnownAttribute(span, 'error.type', '503');
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'unavailable' });
  span.updateName('POST /orders/:id');
  span.end();
}

describe('ServerSpanStarter', () => {
  it('makes the span an SDK tracer makes from the same inputs, attribute for attribute', async () => {
    const { finished, tracer, starter } = pair();
    exercise(tracer.startSpan('POST', { kind: SpanKind.SERVER, attributes: { ...ATTRIBUTES } }, ROOT_CONTEXT));
    exercise(starter.start('POST', SpanKind.SERVER, { ...ATTRIBUTES }, 5, ROOT_CONTEXT));
    const [sdk, ours] = await finished();
    expect(shape(ours!)).toEqual(shape(sdk!));
    expect(ours!.attributes).toMatchObject({
      'http.response.status_code': 503,
      'error.type': '503',
      'tenant.id': 'acme',
    });
    expect(ours!.events[1]!.attributes?.['exception.type']).toBe('TypeError');
    expect(ours!.duration[0]).toBeGreaterThanOrEqual(0);
    expect(ours!.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ours!.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('continues a remote parent: same trace, parent span id, trace state and parent-based sampling', async () => {
    const { finished, starter } = pair(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }));
    const traceState = new TraceState('vendor=1');
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState,
    });
    const span = starter.start('GET /', SpanKind.SERVER, { ...ATTRIBUTES }, 5, sampledParent);
    expect(span.spanContext()).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', traceState });
    expect(span.spanContext().spanId).not.toBe('b7ad6b7169203331');
    span.end();
    const [exported] = await finished();
    expect(exported!.parentSpanContext).toMatchObject({ spanId: 'b7ad6b7169203331', isRemote: true });

    // An unsampled parent (and a root under ratio 0): not recorded, yet the context still travels downstream.
    const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '1af7651916cd43dd8448eb211c80319c',
      spanId: 'c7ad6b7169203331',
      traceFlags: TraceFlags.NONE,
      isRemote: true,
    });
    const child = starter.start('GET /', SpanKind.SERVER, { ...ATTRIBUTES }, 5, unsampledParent);
    expect(child.isRecording()).toBe(false);
    expect(child.spanContext()).toMatchObject({ traceId: '1af7651916cd43dd8448eb211c80319c', traceFlags: 0 });
    expect(trace.isSpanContextValid(child.spanContext())).toBe(true);
    const root = starter.start('GET /', SpanKind.SERVER, { ...ATTRIBUTES }, 5, ROOT_CONTEXT);
    expect(root.isRecording()).toBe(false);
    child.end();
    root.end();
    expect(await finished()).toHaveLength(1);
  });

  it('honours suppressed tracing, sampler attributes and span processors’ onStart/onEnding', async () => {
    const calls: string[] = [];
    const probe: SpanProcessor = {
      onStart: (span) => calls.push(`start ${(span as unknown as ReadableSpan).name}`),
      onEnding: (span) => calls.push(`ending ${span.name} ${String(span.ended)}`),
      onEnd: (span) => calls.push(`end ${span.name} ${String(span.ended)}`),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    const sampler: Sampler = {
      shouldSample: () => ({ decision: SamplingDecision.RECORD_AND_SAMPLED, attributes: { 'sampler.rule': 'r1' } }),
      toString: () => 'test',
    };
    const { finished, starter } = pair(sampler, DEFAULT_SPAN_LIMITS, [probe]);
    const suppressed = starter.start('GET /', SpanKind.SERVER, { ...ATTRIBUTES }, 5, suppressTracing(ROOT_CONTEXT));
    expect(trace.isSpanContextValid(suppressed.spanContext())).toBe(false);
    const span = starter.start('GET /', SpanKind.SERVER, { ...ATTRIBUTES }, 5, ROOT_CONTEXT);
    span.end();
    span.end(); // a second end() is refused, as the SDK does
    expect(calls).toEqual(['start GET /', 'ending GET / false', 'end GET / true']);
    expect((await finished())[0]!.attributes['sampler.rule']).toBe('r1');
  });

  it('applies the count and length limits to its own attributes as the SDK does', async () => {
    const limits = { ...DEFAULT_SPAN_LIMITS, attributeCountLimit: 6, attributeValueLengthLimit: 4 };
    const { finished, tracer, starter } = pair(new AlwaysOnSampler(), limits);
    for (const span of [
      tracer.startSpan('GET', { kind: SpanKind.SERVER, attributes: { ...ATTRIBUTES } }, ROOT_CONTEXT),
      starter.start('GET', SpanKind.SERVER, { ...ATTRIBUTES }, 5, ROOT_CONTEXT),
    ]) {
      setKnownAttribute(span, 'http.response.status_code', 200);
      setKnownAttribute(span, 'error.type', 'overflowing');
      span.setAttribute('url.path', '/replaced');
      span.end();
    }
    const [sdk, ours] = await finished();
    expect(ours!.attributes).toEqual(sdk!.attributes);
    expect(ours!.droppedAttributesCount).toBe(sdk!.droppedAttributesCount);
    expect(ours!.droppedAttributesCount).toBe(1);
    expect(ours!.attributes['http.route']).toBe('/ord');
  });

  it('ignores calls after end, like the SDK span', async () => {
    const { finished, starter } = pair();
    const span = starter.start('GET', SpanKind.SERVER, { ...ATTRIBUTES }, 5, ROOT_CONTEXT);
    span.end();
    span.setAttribute('late', 1);
    setKnownAttribute(span, 'http.response.status_code', 200);
    span.addEvent('late');
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.updateName('late');
    const [exported] = await finished();
    expect(exported).toMatchObject({ name: 'GET', events: [], status: { code: SpanStatusCode.UNSET } });
    expect(exported!.attributes).toEqual(ATTRIBUTES);
    expect(span.isRecording()).toBe(false);
  });
});

describe('poolIdGenerator', () => {
  it('gives well-formed, distinct ids across many pool refills', () => {
    const traceIds = new Set<string>();
    const spanIds = new Set<string>();
    for (let index = 0; index < 5_000; index += 1) {
      const traceId = poolIdGenerator.generateTraceId();
      const spanId = poolIdGenerator.generateSpanId();
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(spanId).toMatch(/^[0-9a-f]{16}$/);
      traceIds.add(traceId);
      spanIds.add(spanId);
    }
    expect(traceIds.size).toBe(5_000);
    expect(spanIds.size).toBe(5_000);
  });
});
