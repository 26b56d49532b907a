// Request lines written to a file destination: they go to its descriptor in batches, bypassing the stream, so
// this checks what a log shipper reading that file sees — every line whole, valid JSON, in request order, next to
// the lines the app logs through pino.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { LogController } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { initTelemetry, type Telemetry } from '../src/telemetry.ts';

let telemetry: Telemetry | undefined;
let directory: string | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  directory = undefined;
});

function readLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('request lines to a file destination', () => {
  it('writes whole JSON lines in request order, with non-ASCII tenants intact, beside pino lines', async () => {
    directory = mkdtempSync(join(tmpdir(), 'gantry-request-lines-'));
    const path = join(directory, 'app.log');
    telemetry = initTelemetry({
      serviceName: 'orders',
      tracing: false,
      instrumentations: [],
      logger: { destination: path },
      metrics: { registry: new Registry(), processMetrics: false },
    });
    const app = Fastify({
      loggerInstance: telemetry.logger,
      logController: new LogController({ disableRequestLogging: true }),
    });
    await app.register(fastifyTelemetry, { telemetry });
    app.get('/orders/:id', async (request) => {
      request.log.info({ event: 'orders.read' }, 'reading order');
      return { id: (request.params as { id: string }).id };
    });
    await app.ready();
    const tenants = ['acme', 'Zürich-Ωmega', '東京'];
    // 600 requests of ~300 bytes: several 16 KiB batches, and a last one written at the end of its turn.
    for (let index = 0; index < 600; index += 1) {
      const response = await app.inject({
        url: `/orders/${index}`,
        headers: { 'x-tenant-id': tenants[index % tenants.length]! },
      });
      expect(response.statusCode).toBe(200);
    }
    await new Promise((resolve) => setImmediate(resolve));
    await app.close();

    const lines = readLines(path);
    const requests = lines.filter((line) => line['event'] === 'http.request.completed');
    expect(requests).toHaveLength(600);
    expect(requests.map((line) => line['tenant_id'])).toEqual(
      Array.from({ length: 600 }, (_, index) => tenants[index % tenants.length]),
    );
    for (const line of requests) {
      expect(line).toMatchObject({ level: 30, service: 'orders', http_route: '/orders/:id', msg: 'request completed' });
    }
    expect(lines.filter((line) => line['event'] === 'orders.read')).toHaveLength(600);
  });
});
