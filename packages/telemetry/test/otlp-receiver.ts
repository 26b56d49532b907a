// An OTLP/HTTP trace receiver for tests: a real HTTP server on loopback that decodes what it is sent — protobuf
// with a small wire-format reader (no collector can be installed here), or OTLP JSON — into plain spans.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, string | number | boolean>;
  readonly statusCode: number;
  readonly resource: Record<string, string | number | boolean>;
  readonly scope: string;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly requests: { contentType: string; encoding: string | undefined }[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Status the next requests get (default 200); with `times`, only the next `times` requests, then 200 again. */
  respondWith(status: number, times?: number): void;
  /** Stop answering at all (requests hang until the client gives up). */
  blackHole(): void;
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

// --- protobuf wire format --------------------------------------------------------------------------------------
interface Field {
  readonly number: number;
  readonly wireType: number;
  readonly value: bigint | Uint8Array;
}

function readVarint(buffer: Uint8Array, offset: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let position = offset;
  for (;;) {
    const byte = buffer[position];
    if (byte === undefined) throw new Error('truncated varint');
    position += 1;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, position];
    shift += 7n;
  }
}

function fields(buffer: Uint8Array): Field[] {
  const out: Field[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const [key, afterKey] = readVarint(buffer, offset);
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    offset = afterKey;
    if (wireType === 0) {
      const [value, next] = readVarint(buffer, offset);
      out.push({ number, wireType, value });
      offset = next;
    } else if (wireType === 1) {
      out.push({
        number,
        wireType,
        value: new DataView(buffer.buffer, buffer.byteOffset + offset, 8).getBigUint64(0, true),
      });
      offset += 8;
    } else if (wireType === 2) {
      const [length, next] = readVarint(buffer, offset);
      out.push({ number, wireType, value: buffer.subarray(next, next + Number(length)) });
      offset = next + Number(length);
    } else if (wireType === 5) {
      out.push({
        number,
        wireType,
        value: BigInt(new DataView(buffer.buffer, buffer.byteOffset + offset, 4).getUint32(0, true)),
      });
      offset += 4;
    } else {
      throw new Error(`unsupported wire type ${wireType}`);
    }
  }
  return out;
}

const bytes = (field: Field): Uint8Array => field.value as Uint8Array;
const text = (field: Field): string => Buffer.from(bytes(field)).toString('utf8');
const hex = (field: Field): string => Buffer.from(bytes(field)).toString('hex');

// AnyValue: 1 string, 2 bool, 3 int, 4 double
function anyValue(buffer: Uint8Array): string | number | boolean {
  for (const field of fields(buffer)) {
    if (field.number === 1) return text(field);
    if (field.number === 2) return field.value === 1n;
    if (field.number === 3) return Number(BigInt.asIntN(64, field.value as bigint));
    if (field.number === 4) return new DataView(new BigUint64Array([field.value as bigint]).buffer).getFloat64(0, true);
  }
  return '';
}

// KeyValue: 1 key, 2 value
function keyValues(list: Field[]): Record<string, string | number | boolean> {
  const result: Record<string, string | number | boolean> = {};
  for (const item of list) {
    let key = '';
    let value: string | number | boolean = '';
    for (const field of fields(bytes(item))) {
      if (field.number === 1) key = text(field);
      if (field.number === 2) value = anyValue(bytes(field));
    }
    result[key] = value;
  }
  return result;
}

/** Decodes an ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1). */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of fields(body).filter((field) => field.number === 1)) {
    const parts = fields(bytes(resourceSpans));
    const resourceField = parts.find((field) => field.number === 1);
    const resource = resourceField ? keyValues(fields(bytes(resourceField)).filter((field) => field.number === 1)) : {};
    for (const scopeSpans of parts.filter((field) => field.number === 2)) {
      const scopeParts = fields(bytes(scopeSpans));
      const scopeField = scopeParts.find((field) => field.number === 1);
      const scopeName = scopeField ? fields(bytes(scopeField)).find((field) => field.number === 1) : undefined;
      for (const spanField of scopeParts.filter((field) => field.number === 2)) {
        const span = fields(bytes(spanField));
        const get = (number: number): Field | undefined => span.find((field) => field.number === number);
        const status = get(15);
        const code = status ? fields(bytes(status)).find((field) => field.number === 3) : undefined;
        spans.push({
          traceId: get(1) ? hex(get(1)!) : '',
          spanId: get(2) ? hex(get(2)!) : '',
          parentSpanId: get(4) ? hex(get(4)!) : '',
          name: get(5) ? text(get(5)!) : '',
          kind: get(6) ? Number(get(6)!.value) : 0,
          attributes: keyValues(span.filter((field) => field.number === 9)),
          statusCode: code ? Number(code.value) : 0,
          resource,
          scope: scopeName ? text(scopeName) : '',
        });
      }
    }
  }
  return spans;
}

interface JsonKeyValue {
  key: string;
  value: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
}
const jsonAttributes = (list: JsonKeyValue[] | undefined): Record<string, string | number | boolean> =>
  Object.fromEntries(
    (list ?? []).map((item) => [
      item.key,
      item.value.stringValue ??
        item.value.boolValue ??
        (item.value.intValue !== undefined ? Number(item.value.intValue) : (item.value.doubleValue ?? '')),
    ]),
  );

/** Decodes OTLP JSON (ids are hex strings in OTLP/JSON). */
export function decodeJsonTraceRequest(body: string): ReceivedSpan[] {
  const request = JSON.parse(body) as {
    resourceSpans: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans: {
        scope?: { name?: string };
        spans: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind: number;
          attributes?: JsonKeyValue[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  return request.resourceSpans.flatMap((resourceSpans) =>
    resourceSpans.scopeSpans.flatMap((scopeSpans) =>
      scopeSpans.spans.map((span) => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? '',
        name: span.name,
        kind: span.kind,
        attributes: jsonAttributes(span.attributes),
        statusCode: span.status?.code ?? 0,
        resource: jsonAttributes(resourceSpans.resource?.attributes),
        scope: scopeSpans.scope?.name ?? '',
      })),
    ),
  );
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
}

/** Starts a receiver on 127.0.0.1, port 0. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: { contentType: string; encoding: string | undefined }[] = [];
  let status = 200;
  let remaining = Infinity;
  let blackHole = false;
  const server: Server = createServer((request, response) => {
    if (blackHole) return;
    void readBody(request).then((body) => {
      if (remaining <= 0) status = 200;
      remaining -= 1;
      const contentType = request.headers['content-type'] ?? '';
      requests.push({ contentType, encoding: request.headers['content-encoding'] });
      if (status === 200) {
        spans.push(
          ...(contentType.includes('json') ? decodeJsonTraceRequest(body.toString('utf8')) : decodeTraceRequest(body)),
        );
      }
      response.writeHead(status, {
        'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf',
      });
      response.end(contentType.includes('json') ? '{}' : undefined);
    });
  });
  let connections = 0;
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    get connections() {
      return connections;
    },
    respondWith: (next, times = Infinity) => {
      status = next;
      remaining = times;
    },
    blackHole: () => {
      blackHole = true;
    },
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (predicate(spans)) return spans;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(
        `OTLP receiver: expected spans did not arrive within ${timeoutMs} ms; got ${JSON.stringify(spans.map((span) => span.name))}`,
      );
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// --- canonical form of a whole request, for comparing two encoders ---------------------------------------------
// Which fields of each message are messages themselves (opentelemetry/proto trace/v1, common/v1, resource/v1).
type MessageName =
  | 'request'
  | 'resourceSpans'
  | 'resource'
  | 'keyValue'
  | 'anyValue'
  | 'arrayValue'
  | 'keyValueList'
  | 'scopeSpans'
  | 'scope'
  | 'span'
  | 'event'
  | 'link'
  | 'status';
const MESSAGE_FIELDS: Record<MessageName, Record<number, MessageName>> = {
  request: { 1: 'resourceSpans' },
  resourceSpans: { 1: 'resource', 2: 'scopeSpans' },
  resource: { 1: 'keyValue' },
  keyValue: { 2: 'anyValue' },
  anyValue: { 5: 'arrayValue', 6: 'keyValueList' },
  arrayValue: { 1: 'anyValue' },
  keyValueList: { 1: 'keyValue' },
  scopeSpans: { 1: 'scope', 2: 'span' },
  scope: { 3: 'keyValue' },
  span: { 9: 'keyValue', 11: 'event', 13: 'link', 15: 'status' },
  event: { 3: 'keyValue' },
  link: { 4: 'keyValue' },
  status: {},
};
// Singular message fields whose empty value means the same as no value.
const OPTIONAL_MESSAGES = new Set(['span.15', 'resourceSpans.1', 'scopeSpans.1']);

/** A decoded message: [field number, value] in wire order per field, fields sorted by number. */
export type CanonicalMessage = [number, string | CanonicalMessage][];

function canonical(buffer: Uint8Array, message: MessageName): CanonicalMessage {
  const out: CanonicalMessage = [];
  for (const field of fields(buffer)) {
    const nested = MESSAGE_FIELDS[message][field.number];
    if (nested !== undefined) {
      const value = canonical(bytes(field), nested);
      if (value.length === 0 && OPTIONAL_MESSAGES.has(`${message}.${field.number}`)) continue;
      out.push([field.number, value]);
      continue;
    }
    // proto3: a scalar with its default value (0, empty) is the same as an absent one.
    if (field.wireType === 2) {
      if ((field.value as Uint8Array).length === 0) continue;
      out.push([field.number, Buffer.from(bytes(field)).toString('hex')]);
    } else {
      if (field.value === 0n) continue;
      out.push([field.number, (field.value as bigint).toString()]);
    }
  }
  // Stable: repeated fields keep their order.
  return out.sort((a, b) => a[0] - b[0]);
}

/** The content of an ExportTraceServiceRequest, independent of field order and of explicit default values. */
export function canonicalTraceRequest(body: Uint8Array): CanonicalMessage {
  return canonical(body, 'request');
}
