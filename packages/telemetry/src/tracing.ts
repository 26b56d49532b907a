// Tracing bootstrap without NodeSDK: a tracer provider, a batch processor, our OTLP exporter, the sampler and the
// propagators named in the config, and the AsyncLocalStorage context manager. The context manager and propagators
// are installed even with tracing off, because baggage (tenant, user) still has to travel.
import { context, propagation, trace, type TextMapPropagator, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  type InstrumentationScope,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { OtlpBatchSpanProcessor } from './otlp-batch-processor.ts';
import { DEFAULT_SPAN_LIMITS, poolIdGenerator, ServerSpanStarter } from './server-span.ts';
import { OtlpHttpSpanExporter } from './otlp-exporter.ts';
import type { PropagatorName, SamplerName, TelemetryConfig } from './options.ts';

/** Name and version of the tracer telemetry's own spans come from. */
export const TRACER_NAME = '@gantry/telemetry';

/** Builds the sampler named by `OTEL_TRACES_SAMPLER` semantics. */
export function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** Builds the composite propagator (`OTEL_PROPAGATORS` semantics). */
export function createPropagator(names: readonly PropagatorName[]): TextMapPropagator {
  const propagators = names.map((name): TextMapPropagator => {
    switch (name) {
      case 'tracecontext':
        return new W3CTraceContextPropagator();
      case 'baggage':
        return new W3CBaggagePropagator();
      case 'b3':
        return new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });
      case 'b3multi':
        return new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
    }
  });
  return new CompositePropagator({ propagators });
}

/** The OpenTelemetry resource of the service: identity, extra attributes and the SDK's own. */
export function createResource(config: TelemetryConfig): Resource {
  return defaultResource().merge(
    resourceFromAttributes({
      ...config.resourceAttributes,
      'service.name': config.identity.name,
      'service.version': config.identity.version,
      'deployment.environment.name': config.identity.environment,
      'service.instance.id': config.identity.instanceId,
      'process.pid': process.pid,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
    }),
  );
}

/** Hooks from the rest of telemetry into tracing. */
export interface TracingHooks {
  readonly onExportError: (error: Error, spans: number) => void;
  /** Sampled spans the batch processor dropped (queue full or not encodable). */
  readonly onSpansDropped: (spans: number) => void;
}

/** The installed tracing. */
export interface Tracing {
  readonly tracer: Tracer;
  readonly provider: TracerProvider | undefined;
  /** Starts the fastify plugin's server spans on the provider's sampler, limits and processors. */
  readonly serverSpans: ServerSpanStarter | undefined;
  forceFlush(timeoutMs: number): Promise<void>;
  shutdown(): Promise<void>;
  /** Abandons span exports still in flight. */
  abortExports(): void;
  /** Removes the global context manager, propagator and tracer provider. */
  uninstall(): void;
}

/** Installs tracing globally according to the config. */
export function installTracing(
  config: TelemetryConfig,
  spanExporter: SpanExporter | undefined,
  extraProcessors: readonly SpanProcessor[],
  hooks: TracingHooks,
): Tracing {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(createPropagator(config.propagators));
  let provider: TracerProvider | undefined;
  let exporter: SpanExporter | undefined;
  let serverSpans: ServerSpanStarter | undefined;
  if (config.tracing) {
    const processors: SpanProcessor[] = [];
    exporter =
      spanExporter ??
      (config.exporter === 'none'
        ? undefined
        : new OtlpHttpSpanExporter({ ...config.exporter, onError: hooks.onExportError }));
    if (
      exporter instanceof OtlpHttpSpanExporter &&
      config.exporter !== 'none' &&
      config.exporter.protocol === 'http/protobuf'
    ) {
      // Spans encoded as they end: the export queue holds bytes, not span objects.
      processors.push(
        new OtlpBatchSpanProcessor({
          sender: exporter,
          scheduledDelayMs: config.batch.scheduledDelayMs,
          maxQueueSize: config.batch.maxQueueSize,
          maxExportBatchSize: config.batch.maxExportBatchSize,
          onDropped: hooks.onSpansDropped,
        }),
      );
    } else if (exporter !== undefined) {
      processors.push(
        new BatchSpanProcessor({
          exporter,
          scheduledDelayMillis: config.batch.scheduledDelayMs,
          maxQueueSize: config.batch.maxQueueSize,
          maxExportBatchSize: config.batch.maxExportBatchSize,
          exportTimeoutMillis: config.exporter === 'none' ? 30_000 : config.exporter.timeoutMs,
        }),
      );
    }
    processors.push(...extraProcessors);
    const resource = createResource(config);
    const sampler = createSampler(config.sampler, config.sampleRatio);
    provider = new TracerProvider({
      resource,
      sampler,
      spanProcessors: processors,
      spanLimits: { ...DEFAULT_SPAN_LIMITS },
      idGenerator: poolIdGenerator,
    });
    trace.setGlobalTracerProvider(provider);
    const providerTracer = provider.getTracer(TRACER_NAME);
    serverSpans = new ServerSpanStarter({
      resource,
      // The SDK tracer's own scope object, so server spans and traceOperation() spans share one ScopeSpans.
      scope: (providerTracer as { instrumentationScope?: InstrumentationScope }).instrumentationScope ?? {
        name: TRACER_NAME,
      },
      sampler,
      limits: DEFAULT_SPAN_LIMITS,
      processors,
    });
  }
  const tracer = provider?.getTracer(TRACER_NAME) ?? trace.getTracer(TRACER_NAME);
  return {
    tracer,
    provider,
    serverSpans,
    async forceFlush(timeoutMs) {
      await provider?.forceFlush({ timeoutMillis: timeoutMs });
    },
    async shutdown() {
      await provider?.shutdown();
    },
    abortExports() {
      if (exporter instanceof OtlpHttpSpanExporter) exporter.abort();
    },
    uninstall() {
      trace.disable();
      propagation.disable();
      context.disable();
      contextManager.disable();
    },
  };
}
