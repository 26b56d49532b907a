// One ordered shutdown within a deadline: buffered spans are flushed before the process goes, a dead collector
// cannot hold the shutdown past its deadline, and @gantry/health can run it as a hook.
import type { ShutdownHook } from '@gantry/health';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { getTelemetry, initTelemetry, type Telemetry } from '../src/telemetry.ts';
import { LogCapture } from '../src/testing.ts';
import { traceOperation } from '../src/trace-operation.ts';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';

let receiver: OtlpReceiver | undefined;
let telemetry: Telemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown({ timeoutMs: 500 });
  await receiver?.close();
  telemetry = undefined;
  receiver = undefined;
});

function start(url: string, logs: LogCapture, shutdownTimeoutMs = 5_000): Telemetry {
  return initTelemetry({
    serviceName: 'shutdown-test',
    exporter: { endpoint: url, timeoutMs: 30_000 },
    // Nothing would be exported on its own for a minute: only shutdown can send these spans.
    batch: { scheduledDelayMs: 60_000 },
    instrumentations: [],
    logger: { destination: logs },
    metrics: { registry: new Registry(), processMetrics: false },
    shutdownTimeoutMs,
  });
}

describe('shutdown', () => {
  it('flushes buffered spans, then logs, then releases metrics and the globals', async () => {
    receiver = await startOtlpReceiver();
    const logs = new LogCapture();
    telemetry = start(receiver.url, logs);
    for (let index = 0; index < 5; index += 1) traceOperation(`job.${index}`, () => index);
    expect(receiver.spans).toHaveLength(0);
    const registry = telemetry.metrics!.registry;
    expect(registry.getSingleMetric('http_server_request_duration_seconds')).toBeDefined();
    const report = await telemetry.shutdown();
    expect(report.ok).toBe(true);
    expect(report.steps.map((step) => step.name)).toEqual(['spans', 'logs', 'metrics']);
    expect(receiver.spans.map((span) => span.name).sort()).toEqual(['job.0', 'job.1', 'job.2', 'job.3', 'job.4']);
    expect(logs.lines.some((line) => line['event'] === 'telemetry.shutdown.completed')).toBe(true);
    expect(registry.getSingleMetric('http_server_request_duration_seconds')).toBeUndefined();
    expect(getTelemetry()).toBeUndefined();
    // Idempotent: the second call returns the same report without doing anything again.
    expect(await telemetry.shutdown()).toBe(report);
    // And a new instance can start afterwards.
    const again = start(receiver.url, new LogCapture());
    await again.shutdown();
  });

  it('does not wait past its deadline for a collector that never answers', async () => {
    receiver = await startOtlpReceiver();
    receiver.blackHole();
    const logs = new LogCapture();
    telemetry = start(receiver.url, logs, 800);
    traceOperation('stuck', () => undefined);
    const begin = performance.now();
    const report = await telemetry.shutdown();
    const elapsed = performance.now() - begin;
    expect(report.ok).toBe(false);
    expect(report.steps.find((step) => step.name === 'spans')).toMatchObject({ ok: false });
    expect(report.steps.find((step) => step.name === 'logs')).toMatchObject({ ok: true });
    expect(elapsed).toBeLessThan(5_000);
    expect(logs.lines.find((line) => line['event'] === 'telemetry.shutdown.completed')?.['level']).toBe(40);
  });

  it('runs as a @gantry/health shutdown hook, rejecting with a coded error when incomplete', async () => {
    receiver = await startOtlpReceiver();
    receiver.blackHole();
    telemetry = start(receiver.url, new LogCapture(), 500);
    const hook: ShutdownHook = telemetry.shutdownHook;
    expect(hook.name).toBe('telemetry');
    expect(hook.timeoutMs).toBeGreaterThan(500);
    traceOperation('stuck', () => undefined);
    await expect(hook.run(AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: 'GANTRY_TELEMETRY_SHUTDOWN_INCOMPLETE',
      message: expect.stringContaining('spans'),
    });
  });

  it('writes the request lines of a turn by the next turn and loses none through shutdown', async () => {
    receiver = await startOtlpReceiver();
    const logs = new LogCapture();
    telemetry = start(receiver.url, logs);
    const { default: Fastify } = await import('fastify');
    const { fastifyTelemetry } = await import('../src/fastify.ts');
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry });
    app.get('/a', async () => 'ok');
    await app.ready();
    await app.inject('/a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(logs.lines.filter((line) => line['event'] === 'http.request.completed')).toHaveLength(1);
    // Two lines in one turn, then shutdown in the same turn: nothing is lost.
    await Promise.all([app.inject('/a'), app.inject('/a')]);
    await telemetry.shutdown();
    expect(logs.lines.filter((line) => line['event'] === 'http.request.completed')).toHaveLength(3);
    await app.close();
  });

  it('refuses a second instance while one runs', async () => {
    receiver = await startOtlpReceiver();
    telemetry = start(receiver.url, new LogCapture());
    expect(() => start(receiver!.url, new LogCapture())).toThrow(
      expect.objectContaining({ code: 'GANTRY_TELEMETRY_ALREADY_INITIALIZED' }),
    );
  });
});
