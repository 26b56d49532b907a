// The OTLP/HTTP sink of the telemetry benchmark, in its own process: accepts trace exports, counts requests, bytes
// and spans, and answers GET /stats with those counts. Prints "READY <port>" when listening.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

// A protobuf field walk, enough to count ExportTraceServiceRequest.resource_spans[].scope_spans[].spans[] (field 1,
// then 2, then 2): both exporters post uncompressed protobuf. It proves every request's span was really exported.
function readVarint(buffer: Buffer, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  let position = offset;
  for (;;) {
    const byte = buffer[position++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

/** Counts the length-delimited fields numbered `path[0]` in `buffer`, descending through `path` as it goes. */
function countFields(buffer: Buffer, path: readonly number[]): number {
  let count = 0;
  let offset = 0;
  while (offset < buffer.length) {
    const [key, afterKey] = readVarint(buffer, offset);
    const wire = key % 8;
    offset = afterKey;
    if (wire === 0) offset = readVarint(buffer, offset)[1];
    else if (wire === 1) offset += 8;
    else if (wire === 5) offset += 4;
    else if (wire === 2) {
      const [length, start] = readVarint(buffer, offset);
      offset = start + length;
      if (Math.floor(key / 8) === path[0]) {
        count += path.length === 1 ? 1 : countFields(buffer.subarray(start, offset), path.slice(1));
      }
    } else throw new Error(`sink: unexpected wire type ${wire}`);
  }
  return count;
}

let sinkRequests = 0;
let sinkBytes = 0;
let sinkSpans = 0;
const sink = createServer((request, response) => {
  if (request.url === '/stats') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ requests: sinkRequests, bytes: sinkBytes, spans: sinkSpans }));
    return;
  }
  sinkRequests += 1;
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => {
    sinkBytes += chunk.length;
    chunks.push(chunk);
  });
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    if (request.headers['content-encoding'] !== undefined || !/protobuf/.test(request.headers['content-type'] ?? '')) {
      throw new Error(`sink: expected uncompressed protobuf, got ${request.headers['content-type']}`);
    }
    sinkSpans += countFields(body, [1, 2, 2]);
    response.writeHead(200, { 'content-type': 'application/x-protobuf' });
    response.end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
process.stdout.write(`READY ${(sink.address() as AddressInfo).port}\n`);
process.once('SIGTERM', () => process.exit(0));
// Never outlive the benchmark, even one that crashed.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1_000);
