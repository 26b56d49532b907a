// A lighter span for the one span every request gets: the fastify plugin's server span. It is a real OpenTelemetry
// span to everyone else — the API's Span (trace.getActiveSpan(), context propagation, attributes, events, links,
// exceptions, status) and the SDK's ReadableSpan (span processors, exporters) — made by the same sampler, id
// generator, limits, resource and processors as the tracer provider's spans. What it leaves out is the SDK
// Tracer's generic work: validating attributes the plugin built itself (twice), a closure and attribute objects
// per span for the SDK's self-metrics (a no-op meter here), and a dozen small allocations; that was ~2 µs a
// request, most of telemetry's own per-request cost. Methods a handler may call on the active span follow the SDK's
// SpanImpl rule for rule (same helpers from @opentelemetry/core), so behaviour does not depend on which made it.
import { randomFillSync } from 'node:crypto';
import {
  type Attributes,
  type AttributeValue,
  type Context,
  diag,
  type Exception,
  type HrTime,
  INVALID_SPAN_CONTEXT,
  INVALID_SPANID,
  INVALID_TRACEID,
  type Link,
  type Span,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import {
  addHrTimes,
  AddAttributeDecision,
  cleanAttributes,
  cleanSimpleAttributes,
  hrTime,
  hrTimeDuration,
  type InstrumentationScope,
  isTimeInput,
  isTimeInputHrTime,
  isTracingSuppressed,
  maybeAddAttribute,
  millisToHrTime,
} from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SpanLimits,
  type SpanProcessor,
  type TimedEvent,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_EXCEPTION_MESSAGE,
  ATTR_EXCEPTION_STACKTRACE,
  ATTR_EXCEPTION_TYPE,
} from '@opentelemetry/semantic-conventions';

/** The SDK's span limits with its defaults filled in (the tracer provider gets the same object). */
export type ResolvedSpanLimits = Required<SpanLimits>;

/** The SDK's defaults (TracerProvider): 128 of everything, values unlimited. */
export const DEFAULT_SPAN_LIMITS: ResolvedSpanLimits = Object.freeze({
  attributeCountLimit: 128,
  attributeValueLengthLimit: Infinity,
  eventCountLimit: 128,
  linkCountLimit: 128,
  attributePerEventCountLimit: 128,
  attributePerLinkCountLimit: 128,
});

// --- ids: random bytes from a pool filled by the CSPRNG (W3C trace context asks for random trace ids) ----------
// The pool is turned into hex once per refill; an id is then a slice of that string (one native call per ~680
// root spans instead of one per span).
const ID_POOL_BYTES = 16 * 1024;
const idPool = Buffer.allocUnsafe(ID_POOL_BYTES);
let hexPool = '';
let hexOffset = 2 * ID_POOL_BYTES;

function takeHex(characters: number): number {
  if (hexOffset + characters > 2 * ID_POOL_BYTES) {
    randomFillSync(idPool);
    hexPool = idPool.toString('hex');
    hexOffset = 0;
  }
  const start = hexOffset;
  hexOffset += characters;
  return start;
}

function randomHex(bytes: number, invalid: string): string {
  for (;;) {
    const start = takeHex(2 * bytes);
    const id = hexPool.slice(start, start + 2 * bytes);
    if (id !== invalid) return id;
  }
}

// A root span needs both ids: taken side by side from the pool (read right after rootIds()).
let rootTraceId = '';
let rootSpanId = '';
function rootIds(): void {
  for (;;) {
    const start = takeHex(48);
    rootTraceId = hexPool.slice(start, start + 32);
    rootSpanId = hexPool.slice(start + 32, start + 48);
    if (rootTraceId !== INVALID_TRACEID && rootSpanId !== INVALID_SPANID) return;
  }
}

/**
 * Trace and span ids from a pool of cryptographically random bytes: faster than the SDK's Math.random() ids and
 * random in the W3C sense. Used by the tracer provider too.
 */
export const poolIdGenerator = Object.freeze({
  generateTraceId: (): string => randomHex(16, INVALID_TRACEID),
  generateSpanId: (): string => randomHex(8, INVALID_SPANID),
});

const UNSET_STATUS: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
const NOT_ENDED: HrTime = Object.freeze([0, 0]) as unknown as HrTime;
const NO_DURATION: HrTime = Object.freeze([-1, -1]) as unknown as HrTime;

/** Everything a span needs from the tracer provider it belongs to. */
export interface SpanSettings {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly sampler: Sampler;
  readonly limits: ResolvedSpanLimits;
  readonly processors: readonly SpanProcessor[];
}

/**
 * The server span. Its `attributes` object is the one given at start (the plugin builds a fresh one per request).
 */
class ServerSpan implements Span, ReadableSpan {
  name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext?: SpanContext;
  readonly attributes: Attributes;
  readonly links: Link[] = [];
  readonly events: TimedEvent[] = [];
  readonly startTime: HrTime;
  endTime: HrTime = NOT_ENDED;
  duration: HrTime = NO_DURATION;
  status: SpanStatus = UNSET_STATUS;
  ended = false;
  droppedAttributesCount = 0;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly #spanContext: SpanContext;
  readonly #settings: SpanSettings;
  readonly #startedAt: number;
  #attributesCount: number;

  constructor(
    settings: SpanSettings,
    name: string,
    kind: SpanKind,
    spanContext: SpanContext,
    parent: SpanContext | undefined,
    attributes: Attributes,
    attributesCount: number,
  ) {
    const now = Date.now();
    this.#startedAt = performance.now();
    this.#settings = settings;
    this.#spanContext = spanContext;
    this.name = name;
    this.kind = kind;
    if (parent !== undefined) this.parentSpanContext = parent;
    this.attributes = attributes;
    this.#attributesCount = attributesCount;
    this.resource = settings.resource;
    this.instrumentationScope = settings.scope;
    this.startTime = millisToHrTime(now);
  }

  spanContext(): SpanContext {
    return this.#spanContext;
  }

  #isEnded(): boolean {
    if (this.ended) {
      const { traceId, spanId } = this.#spanContext;
      diag.warn(
        `Cannot execute the operation on ended Span {traceId: ${traceId}, spanId: ${spanId}}`,
        new Error(`Operation attempted on ended Span {traceId: ${traceId}, spanId: ${spanId}}`),
      );
    }
    return this.ended;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.#isEnded()) return this;
    const decision = maybeAddAttribute({
      key,
      value,
      attributes: this.attributes,
      limits: this.#settings.limits,
      currentAttributesCount: this.#attributesCount,
    });
    if (decision === AddAttributeDecision.DROP_LIMIT_REACHED) {
      this.droppedAttributesCount += 1;
      if (this.droppedAttributesCount === 1) diag.warn('Dropping extra attributes.');
    } else if (decision === AddAttributeDecision.ADD_NEW) {
      this.#attributesCount += 1;
    }
    return this;
  }

  /** Internal: an attribute telemetry computed itself (a finite number or a string within the limits' reach). */
  setKnownAttribute(key: string, value: string | number): void {
    if (this.ended) return;
    const attributes = this.attributes as Record<string, AttributeValue>;
    if (Object.hasOwn(attributes, key)) {
      attributes[key] = value;
      return;
    }
    if (this.#attributesCount >= this.#settings.limits.attributeCountLimit) {
      this.droppedAttributesCount += 1;
      if (this.droppedAttributesCount === 1) diag.warn('Dropping extra attributes.');
      return;
    }
    const limit = this.#settings.limits.attributeValueLengthLimit;
    attributes[key] = typeof value === 'string' && value.length > limit ? value.slice(0, limit) : value;
    this.#attributesCount += 1;
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) {
      if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key]);
    }
    return this;
  }

  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, timeStamp?: TimeInput): this {
    if (this.#isEnded()) return this;
    const { eventCountLimit, attributePerEventCountLimit, attributeValueLengthLimit } = this.#settings.limits;
    if (eventCountLimit === 0) {
      diag.warn('No events allowed.');
      this.droppedEventsCount += 1;
      return this;
    }
    if (this.events.length >= eventCountLimit) {
      if (this.droppedEventsCount === 0) diag.debug('Dropping extra events.');
      this.events.shift();
      this.droppedEventsCount += 1;
    }
    let attributes: Attributes | undefined;
    let time = timeStamp;
    if (isTimeInput(attributesOrStartTime)) {
      if (!isTimeInput(time)) time = attributesOrStartTime;
    } else {
      attributes = attributesOrStartTime;
    }
    this.events.push({
      name,
      time: this.#time(time),
      ...cleanSimpleAttributes(attributes, {
        attributeCountLimit: attributePerEventCountLimit,
        attributeValueLengthLimit,
      }),
    });
    return this;
  }

  addLink(link: Link): this {
    if (this.#isEnded()) return this;
    const { linkCountLimit, attributePerLinkCountLimit, attributeValueLengthLimit } = this.#settings.limits;
    if (linkCountLimit === 0) {
      this.droppedLinksCount += 1;
      return this;
    }
    if (this.links.length >= linkCountLimit) {
      if (this.droppedLinksCount === 0) diag.debug('Dropping extra links.');
      this.links.shift();
      this.droppedLinksCount += 1;
    }
    this.links.push({
      context: link.context,
      ...cleanAttributes(link.attributes, {
        attributeCountLimit: attributePerLinkCountLimit,
        attributeValueLengthLimit,
      }),
    });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.#isEnded()) return this;
    if (status.code === SpanStatusCode.UNSET) return this;
    if (this.status.code === SpanStatusCode.OK) return this;
    const next: SpanStatus = { code: status.code };
    if (status.code === SpanStatusCode.ERROR) {
      if (typeof status.message === 'string') next.message = status.message;
      else if (status.message != null) {
        diag.warn(`Dropping invalid status.message of type '${typeof status.message}', expected 'string'`);
      }
    }
    this.status = next;
    return this;
  }

  updateName(name: string): this {
    if (this.#isEnded()) return this;
    this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) {
      diag.error(
        `${this.name} ${this.#spanContext.traceId}-${this.#spanContext.spanId} - You can only call end() on a span once.`,
      );
      return;
    }
    this.endTime = this.#time(endTime);
    this.duration = hrTimeDuration(this.startTime, this.endTime);
    if (this.duration[0] < 0) {
      diag.warn('Inconsistent start and end time, startTime > endTime. Setting span duration to 0ms.');
      this.endTime = [this.startTime[0], this.startTime[1]];
      this.duration = [0, 0];
    }
    if (this.droppedEventsCount > 0) {
      diag.warn(`Dropped ${this.droppedEventsCount} events because eventCountLimit reached`);
    }
    if (this.droppedLinksCount > 0) {
      diag.warn(`Dropped ${this.droppedLinksCount} links because linkCountLimit reached`);
    }
    const processors = this.#settings.processors;
    for (const processor of processors) processor.onEnding?.(this);
    this.ended = true;
    for (const processor of processors) processor.onEnd(this);
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes[ATTR_EXCEPTION_MESSAGE] = exception;
    else if (exception) {
      if (exception.code) attributes[ATTR_EXCEPTION_TYPE] = exception.code.toString();
      else if (exception.name) attributes[ATTR_EXCEPTION_TYPE] = exception.name;
      if (exception.message) attributes[ATTR_EXCEPTION_MESSAGE] = exception.message;
      if (exception.stack) attributes[ATTR_EXCEPTION_STACKTRACE] = exception.stack;
    }
    if (attributes[ATTR_EXCEPTION_TYPE] || attributes[ATTR_EXCEPTION_MESSAGE]) {
      this.addEvent('exception', attributes, time);
    } else {
      diag.warn('Failed to record an exception', exception);
    }
  }

  /** SpanImpl's _getTime: a number ≤ performance.now() is relative to the time origin, larger ones are epoch ms. */
  #time(input: TimeInput | undefined): HrTime {
    if (typeof input === 'number' && input <= performance.now()) return hrTime(input);
    if (typeof input === 'number') return millisToHrTime(input);
    if (input instanceof Date) return millisToHrTime(input.getTime());
    if (isTimeInputHrTime(input)) return input;
    return addHrTimes(this.startTime, millisToHrTime(performance.now() - this.#startedAt));
  }
}

/**
 * Internal: starts server spans for the fastify plugin, as the tracer provider would (sampling, ids, limits,
 * processors), without the SDK Tracer's generic overhead.
 */
export class ServerSpanStarter {
  readonly #settings: SpanSettings;

  constructor(settings: SpanSettings) {
    this.#settings = settings;
  }

  /**
   * A started span: a {@link ServerSpan} when sampled or recorded, a non-recording span that still carries the
   * trace context otherwise. `attributes` must be a fresh object of `attributesCount` string attributes.
   */
  start(name: string, kind: SpanKind, attributes: Attributes, attributesCount: number, parent: Context): Span {
    if (isTracingSuppressed(parent)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const settings = this.#settings;
    const parentContext = trace.getSpanContext(parent);
    let spanId: string;
    let traceId: string;
    let traceState: SpanContext['traceState'];
    let validParent: SpanContext | undefined;
    if (parentContext === undefined || !trace.isSpanContextValid(parentContext)) {
      rootIds();
      traceId = rootTraceId;
      spanId = rootSpanId;
    } else {
      spanId = poolIdGenerator.generateSpanId();
      traceId = parentContext.traceId;
      traceState = parentContext.traceState;
      validParent = parentContext;
    }
    const result = settings.sampler.shouldSample(parent, traceId, name, kind, attributes, []);
    // The SDK's shape: traceState is always a key, possibly undefined.
    const spanContext = {
      traceId,
      spanId,
      traceFlags: result.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      traceState: result.traceState ?? traceState,
    } as SpanContext;
    if (result.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext(spanContext);
    const limit = settings.limits.attributeValueLengthLimit;
    if (limit !== Infinity) {
      for (const key in attributes) {
        const value = attributes[key];
        if (typeof value === 'string' && value.length > limit) attributes[key] = value.slice(0, limit);
      }
    }
    const span = new ServerSpan(settings, name, kind, spanContext, validParent, attributes, attributesCount);
    if (result.attributes !== undefined) span.setAttributes(result.attributes);
    for (const processor of settings.processors) processor.onStart(span, parent);
    return span;
  }
}

/** Internal: sets an attribute telemetry computed itself, quickly on a server span, normally on any other span. */
export function setKnownAttribute(span: Span, key: string, value: string | number): void {
  if (span instanceof ServerSpan) span.setKnownAttribute(key, value);
  else span.setAttribute(key, value);
}
