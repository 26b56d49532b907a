// OTLP/protobuf encoding of spans (opentelemetry/proto collector/trace/v1 ExportTraceServiceRequest), written for
// speed: OpenTelemetry's own serializer spends ~13 µs per span, more than creating the span; this writer takes a
// small fraction of that. Spans can be encoded one by one as they end (EncodedSpanBatch), so a batch waiting for
// export holds bytes, not span objects the garbage collector has to copy and promote. Only encoding: the wire
// format is stable, so there is nothing to keep in step but the field numbers below.
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;
const TWO_32 = 4_294_967_296;

const HEX = new Uint8Array(128);
for (let index = 0; index < 10; index += 1) HEX[48 + index] = index;
for (let index = 0; index < 6; index += 1) {
  HEX[97 + index] = 10 + index;
  HEX[65 + index] = 10 + index;
}

// Encoded attribute keys and span names: a service uses a few hundred at most, so they are kept once encoded.
const STRING_CACHE_LIMIT = 4_096;
const KEY_CACHE = new Map<string, Buffer>();
const NAME_CACHE = new Map<string, Buffer>();
// Whole key/value pairs with a short string value (method, route, scheme, status text…) or a small integer one
// (status code): most repeat on every span.
// Values of a key that keeps changing (paths, ids) stop being cached once that key has had this many.
const PAIR_VALUES_PER_KEY = 64;
const PAIR_VALUE_MAX_LENGTH = 64;
const PAIR_CACHE = new Map<string, Map<string, Buffer>>();
const PAIR_INTEGER_MAX = 65_535;
const INTEGER_PAIR_CACHE = new Map<string, Map<number, Buffer>>();
let pairCacheSize = 0;

/** A growable protobuf writer; nested messages reserve one length byte and move their bytes when it is not enough. */
class ProtoWriter {
  buffer: Buffer;
  position = 0;

  constructor(size = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  ensure(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.position + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buffer.copy(next, 0, 0, this.position);
    this.buffer = next;
  }

  /** Writes a varint; the caller made room (10 bytes at most). */
  varintUnchecked(value: number): void {
    const buffer = this.buffer;
    let position = this.position;
    if (value < 0x80000000) {
      let rest = value;
      while (rest >= 128) {
        buffer[position++] = (rest & 127) | 128;
        rest >>>= 7;
      }
      buffer[position++] = rest;
    } else {
      let rest = value;
      while (rest >= 128) {
        buffer[position++] = (rest % 128) | 128;
        rest = Math.floor(rest / 128);
      }
      buffer[position++] = rest;
    }
    this.position = position;
  }

  varint(value: number): void {
    this.ensure(10);
    this.varintUnchecked(value);
  }

  tag(field: number, wire: number): void {
    this.ensure(10);
    this.varintUnchecked(field * 8 + wire);
  }

  bytes(source: Uint8Array, length = source.length): void {
    this.ensure(length);
    if (length > 64) {
      this.buffer.set(length === source.length ? source : source.subarray(0, length), this.position);
      this.position += length;
      return;
    }
    // Short copies (cached keys and pairs) are cheaper by hand than through TypedArray#set.
    const buffer = this.buffer;
    let position = this.position;
    for (let index = 0; index < length; index += 1) buffer[position++] = source[index]!;
    this.position = position;
  }

  string(field: number, value: string): void {
    const length = value.length;
    this.ensure(length + 12);
    this.varintUnchecked(field * 8 + WIRE_LENGTH);
    if (length < 128) {
      // Optimistic ASCII: one length byte and one byte per character.
      const buffer = this.buffer;
      const start = this.position;
      let position = start;
      buffer[position++] = length;
      let index = 0;
      for (; index < length; index += 1) {
        const code = value.charCodeAt(index);
        if (code >= 128) break;
        buffer[position++] = code;
      }
      if (index === length) {
        this.position = position;
        return;
      }
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.varint(bytes);
    this.ensure(bytes);
    this.position += this.buffer.write(value, this.position, 'utf8');
  }

  /** Field tag, length and bytes of a string seen before (attribute keys, span names): copied, not re-encoded. */
  cachedString(cache: Map<string, Buffer>, field: number, value: string): void {
    const encoded = cache.get(value);
    if (encoded !== undefined) {
      this.bytes(encoded);
      return;
    }
    const start = this.position;
    this.string(field, value);
    if (cache.size < STRING_CACHE_LIMIT) cache.set(value, Buffer.from(this.buffer.subarray(start, this.position)));
  }

  hexBytes(field: number, hex: string): void {
    const length = hex.length >> 1;
    this.ensure(length + 12);
    this.varintUnchecked(field * 8 + WIRE_LENGTH);
    const buffer = this.buffer;
    let position = this.position;
    buffer[position++] = length;
    for (let index = 0; index < length; index += 1) {
      buffer[position++] = (HEX[hex.charCodeAt(index * 2)]! << 4) | HEX[hex.charCodeAt(index * 2 + 1)]!;
    }
    this.position = position;
  }

  /** Unix nanoseconds of an HrTime as fixed64, computed exactly without BigInt. */
  time(field: number, time: HrTime): void {
    this.ensure(20);
    this.varintUnchecked(field * 8 + WIRE_FIXED64);
    const seconds = time[0];
    const nanos = time[1];
    // seconds·1e9 + nanos = (high16·1e9)·2^16 + (low16·1e9 + nanos); every product stays below 2^53.
    const high16 = Math.floor(seconds / 65_536);
    const low16 = seconds - high16 * 65_536;
    const a = high16 * 1_000_000_000;
    const aHigh = Math.floor(a / 65_536);
    const aLow = a - aHigh * 65_536;
    const c = aLow * 65_536 + low16 * 1_000_000_000 + nanos;
    const carry = Math.floor(c / TWO_32);
    const low = c - carry * TWO_32;
    const high = aHigh + carry;
    const buffer = this.buffer;
    const position = this.position;
    buffer[position] = low & 255;
    buffer[position + 1] = (low >>> 8) & 255;
    buffer[position + 2] = (low >>> 16) & 255;
    buffer[position + 3] = low >>> 24;
    buffer[position + 4] = high & 255;
    buffer[position + 5] = (high >>> 8) & 255;
    buffer[position + 6] = (high >>> 16) & 255;
    buffer[position + 7] = high >>> 24;
    this.position = position + 8;
  }

  fixed32(field: number, value: number): void {
    this.ensure(14);
    this.varintUnchecked(field * 8 + WIRE_FIXED32);
    this.buffer.writeUInt32LE(value >>> 0, this.position);
    this.position += 4;
  }

  double(field: number, value: number): void {
    this.ensure(18);
    this.varintUnchecked(field * 8 + WIRE_FIXED64);
    this.buffer.writeDoubleLE(value, this.position);
    this.position += 8;
  }

  int64(field: number, value: number): void {
    this.tag(field, WIRE_VARINT);
    if (value >= 0) {
      this.varint(value);
      return;
    }
    // Two's complement over 64 bits: ten bytes.
    let rest = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (rest >= 128n) {
      this.buffer[this.position++] = Number(rest & 127n) | 128;
      rest >>= 7n;
    }
    this.buffer[this.position++] = Number(rest);
  }

  /** Starts a nested message (field tag plus one reserved length byte); returns where its content begins. */
  begin(field: number): number {
    this.ensure(11);
    this.varintUnchecked(field * 8 + WIRE_LENGTH);
    this.position += 1;
    return this.position;
  }

  end(start: number): void {
    const length = this.position - start;
    if (length < 128) {
      this.buffer[start - 1] = length;
      return;
    }
    let extra = 0;
    for (let rest = length >>> 7; rest > 0; rest >>>= 7) extra += 1;
    this.ensure(extra);
    this.buffer.copyWithin(start + extra, start, this.position);
    let position = start - 1;
    let rest = length;
    while (rest >= 128) {
      this.buffer[position++] = (rest & 127) | 128;
      rest >>>= 7;
    }
    this.buffer[position] = rest;
    this.position += extra;
  }
}

const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/**
 * AnyValue as OpenTelemetry's serializer writes it: strings, booleans, integers in the int64 range as int, other
 * numbers as double, byte arrays, arrays and plain objects (key/value lists); null and undefined as an empty value.
 */
function anyValue(writer: ProtoWriter, field: number, value: unknown): void {
  const start = writer.begin(field);
  if (typeof value === 'string') writer.string(1, value);
  else if (typeof value === 'boolean') {
    writer.tag(2, WIRE_VARINT);
    writer.varint(value ? 1 : 0);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) writer.int64(3, value);
    else writer.double(4, value);
  } else if (value instanceof Uint8Array) {
    writer.tag(7, WIRE_LENGTH);
    writer.varint(value.length);
    writer.bytes(value);
  } else if (Array.isArray(value)) {
    const array = writer.begin(5);
    for (const item of value as unknown[]) anyValue(writer, 1, item);
    writer.end(array);
  } else if (typeof value === 'object' && value !== null) {
    const list = writer.begin(6);
    keyValues(writer, 1, value as Record<string, unknown>);
    writer.end(list);
  }
  writer.end(start);
}

/** One KeyValue (field `field`); pairs with a short string or small integer value come from a pair cache. */
function keyValue(writer: ProtoWriter, field: number, key: string, value: unknown): void {
  if (field === 9) {
    if (typeof value === 'string' && value.length <= PAIR_VALUE_MAX_LENGTH) {
      cachedPair(writer, PAIR_CACHE, key, value);
      return;
    }
    // Status codes, ports, counts: small integers repeat like short strings do.
    if (typeof value === 'number' && value >= 0 && value <= PAIR_INTEGER_MAX && Number.isInteger(value)) {
      cachedPair(writer, INTEGER_PAIR_CACHE, key, value);
      return;
    }
  }
  const message = writer.begin(field);
  writer.cachedString(KEY_CACHE, 1, key);
  anyValue(writer, 2, value);
  writer.end(message);
}

/** A span attribute's KeyValue copied from `cache` when seen before, else encoded and kept while there is room. */
function cachedPair<V extends string | number>(
  writer: ProtoWriter,
  cache: Map<string, Map<V, Buffer>>,
  key: string,
  value: V,
): void {
  let values = cache.get(key);
  const cached = values?.get(value);
  if (cached !== undefined) {
    writer.bytes(cached);
    return;
  }
  const start = writer.position;
  const message = writer.begin(9);
  writer.cachedString(KEY_CACHE, 1, key);
  anyValue(writer, 2, value);
  writer.end(message);
  if (pairCacheSize >= STRING_CACHE_LIMIT * 4) return;
  if (values === undefined) {
    if (cache.size >= STRING_CACHE_LIMIT) return;
    values = new Map();
    cache.set(key, values);
  }
  if (values.size >= PAIR_VALUES_PER_KEY) return;
  values.set(value, Buffer.from(writer.buffer.subarray(start, writer.position)));
  pairCacheSize += 1;
}

function keyValues(writer: ProtoWriter, field: number, attributes: Attributes | Record<string, unknown>): void {
  for (const key in attributes) {
    if (!Object.hasOwn(attributes, key)) continue;
    keyValue(writer, field, key, attributes[key]);
  }
}

// OTLP's SpanKind is the API's plus one (0 is UNSPECIFIED there).
function writeSpan(writer: ProtoWriter, item: ReadableSpan): void {
  writer.ensure(512);
  const start = writer.begin(2);
  const context = item.spanContext();
  writer.hexBytes(1, context.traceId);
  writer.hexBytes(2, context.spanId);
  const traceState = context.traceState?.serialize();
  if (traceState) writer.string(3, traceState);
  const parent = item.parentSpanContext;
  if (parent !== undefined) writer.hexBytes(4, parent.spanId);
  writer.cachedString(NAME_CACHE, 5, item.name);
  writer.tag(6, WIRE_VARINT);
  writer.varint(item.kind + 1);
  writer.time(7, item.startTime);
  writer.time(8, item.endTime);
  keyValues(writer, 9, item.attributes);
  if (item.droppedAttributesCount > 0) {
    writer.tag(10, WIRE_VARINT);
    writer.varint(item.droppedAttributesCount);
  }
  for (const event of item.events) {
    const eventStart = writer.begin(11);
    writer.time(1, event.time);
    writer.string(2, event.name);
    if (event.attributes !== undefined) keyValues(writer, 3, event.attributes);
    if ((event.droppedAttributesCount ?? 0) > 0) {
      writer.tag(4, WIRE_VARINT);
      writer.varint(event.droppedAttributesCount!);
    }
    writer.end(eventStart);
  }
  if (item.droppedEventsCount > 0) {
    writer.tag(12, WIRE_VARINT);
    writer.varint(item.droppedEventsCount);
  }
  for (const link of item.links) {
    const linkStart = writer.begin(13);
    writer.hexBytes(1, link.context.traceId);
    writer.hexBytes(2, link.context.spanId);
    const linkState = link.context.traceState?.serialize();
    if (linkState) writer.string(3, linkState);
    if (link.attributes !== undefined) keyValues(writer, 4, link.attributes);
    if ((link.droppedAttributesCount ?? 0) > 0) {
      writer.tag(5, WIRE_VARINT);
      writer.varint(link.droppedAttributesCount!);
    }
    writer.fixed32(6, (link.context.traceFlags & 0xff) | 0x100 | (link.context.isRemote === true ? 0x200 : 0));
    writer.end(linkStart);
  }
  if (item.droppedLinksCount > 0) {
    writer.tag(14, WIRE_VARINT);
    writer.varint(item.droppedLinksCount);
  }
  const statusCode: number = item.status.code;
  if (statusCode !== 0 || item.status.message !== undefined) {
    const status = writer.begin(15);
    if (item.status.message) writer.string(2, item.status.message);
    if (statusCode !== 0) {
      writer.tag(3, WIRE_VARINT);
      writer.varint(statusCode);
    }
    writer.end(status);
  }
  writer.fixed32(16, (context.traceFlags & 0xff) | 0x100 | (parent?.isRemote === true ? 0x200 : 0));
  writer.end(start);
}

type SpanResource = ReadableSpan['resource'];
type SpanScope = ReadableSpan['instrumentationScope'];

/** The encoded spans of one resource and instrumentation scope. */
interface ScopeGroup {
  readonly scope: SpanScope;
  readonly writer: ProtoWriter;
}

interface ResourceGroup {
  /** By scope object (a tracer keeps one), then by name/version/schema for equal scopes of different tracers. */
  readonly byObject: Map<SpanScope, ScopeGroup>;
  readonly byKey: Map<string, ScopeGroup>;
}

/**
 * Spans encoded one at a time, grouped by resource and instrumentation scope, assembled into one
 * `ExportTraceServiceRequest` by {@link EncodedSpanBatch.finish}. Holds only bytes once a span is added.
 * @example
 * const batch = new EncodedSpanBatch();
 * batch.add(span); // in SpanProcessor.onEnd
 * const body = batch.finish();
 */
export class EncodedSpanBatch {
  readonly #resources = new Map<SpanResource, ResourceGroup>();
  readonly #writerSize: number;
  #lastResource: SpanResource | undefined;
  #lastScope: SpanScope | undefined;
  #lastWriter: ProtoWriter | undefined;
  /** Spans added. */
  count = 0;
  /** Bytes of encoded spans so far (without the resource and scope headers). */
  bytes = 0;

  /** `expectedSpans` sizes the first buffer (it grows when needed). */
  constructor(expectedSpans = 64) {
    this.#writerSize = Math.min(Math.max(expectedSpans, 16) * 256, 1024 * 1024);
  }

  /** Encodes one ended span into the batch. */
  add(span: ReadableSpan): void {
    let writer = this.#lastWriter;
    if (writer === undefined || span.instrumentationScope !== this.#lastScope || span.resource !== this.#lastResource) {
      writer = this.#writerFor(span.resource, span.instrumentationScope);
    }
    const before = writer.position;
    try {
      writeSpan(writer, span);
    } catch (error) {
      // Never leave half a span in the batch.
      writer.position = before;
      throw error;
    }
    this.bytes += writer.position - before;
    this.count += 1;
  }

  #writerFor(resource: SpanResource, scope: SpanScope): ProtoWriter {
    let group = this.#resources.get(resource);
    if (group === undefined) {
      group = { byObject: new Map(), byKey: new Map() };
      this.#resources.set(resource, group);
    }
    let scopeGroup = group.byObject.get(scope);
    if (scopeGroup === undefined) {
      const key = `${scope.name}\u0000${scope.version ?? ''}\u0000${scope.schemaUrl ?? ''}`;
      scopeGroup = group.byKey.get(key);
      if (scopeGroup === undefined) {
        scopeGroup = {
          scope,
          writer: new ProtoWriter(group.byKey.size === 0 && this.#resources.size === 1 ? this.#writerSize : 4096),
        };
        group.byKey.set(key, scopeGroup);
      }
      group.byObject.set(scope, scopeGroup);
    }
    this.#lastResource = resource;
    this.#lastScope = scope;
    this.#lastWriter = scopeGroup.writer;
    return scopeGroup.writer;
  }

  /** The resources of the spans (whose async attributes must have settled before {@link finish}). */
  resources(): SpanResource[] {
    return [...this.#resources.keys()];
  }

  /** The whole request. */
  finish(): Uint8Array {
    const writer = new ProtoWriter(this.bytes + 4096);
    for (const [resource, group] of this.#resources) {
      const resourceSpans = writer.begin(1);
      const resourceStart = writer.begin(1);
      keyValues(writer, 1, resource.attributes);
      writer.end(resourceStart);
      for (const { scope, writer: spans } of group.byKey.values()) {
        const scopeSpans = writer.begin(2);
        const scopeStart = writer.begin(1);
        writer.string(1, scope.name);
        if (scope.version !== undefined) writer.string(2, scope.version);
        const scopeAttributes = (scope as { attributes?: Attributes }).attributes;
        if (scopeAttributes !== undefined) keyValues(writer, 3, scopeAttributes);
        const scopeDropped = (scope as { droppedAttributesCount?: number }).droppedAttributesCount ?? 0;
        if (scopeDropped > 0) {
          writer.tag(4, WIRE_VARINT);
          writer.varint(scopeDropped);
        }
        writer.end(scopeStart);
        writer.bytes(spans.buffer, spans.position);
        if (scope.schemaUrl !== undefined) writer.string(3, scope.schemaUrl);
        writer.end(scopeSpans);
      }
      if (resource.schemaUrl !== undefined) writer.string(3, resource.schemaUrl);
      writer.end(resourceSpans);
    }
    return writer.buffer.subarray(0, writer.position);
  }
}

/**
 * Encodes spans as an OTLP `ExportTraceServiceRequest` (protobuf), grouped by resource and instrumentation scope.
 * @example
 * const body = encodeTraceRequest(spans); // POST to /v1/traces with content-type application/x-protobuf
 */
export function encodeTraceRequest(spans: readonly ReadableSpan[]): Uint8Array {
  const batch = new EncodedSpanBatch(spans.length);
  for (const item of spans) batch.add(item);
  return batch.finish();
}
