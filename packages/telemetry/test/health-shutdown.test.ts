// telemetry.shutdownHook run by @gantry/health's real shutdown sequence in a child process: requests in flight at
// SIGTERM finish (the drain), their spans are delivered to the OTLP receiver before the process exits, and the
// process exits on its own, cleanly, within the grace period. A control run without the hook shows the spans are
// lost otherwise (the batch delay is one minute), so the test can tell the difference.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'health-shutdown-app.ts');
const GRACE_PERIOD_MS = 12_000;
const REQUESTS = 6;

const children: ChildProcess[] = [];
let receiver: OtlpReceiver | undefined;
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await receiver?.close();
  receiver = undefined;
});

interface Run {
  readonly statuses: number[];
  readonly exit: { code: number | null; signal: NodeJS.Signals | null };
  readonly msFromSigterm: number;
  /** Spans the receiver held when the process exited. */
  readonly spansAtExit: ReceivedSpan[];
  readonly logs: string[];
}

async function runShutdown(mode: 'hook' | 'no-hook'): Promise<Run> {
  receiver = await startOtlpReceiver();
  const child = spawn(process.execPath, [FIXTURE, receiver.url, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const logs: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  const own = receiver;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number; spans: ReceivedSpan[] }>(
    (resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now(), spans: [...own.spans] })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture did not start:\n${logs.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => reject(new Error(`fixture exited early:\n${logs.join('\n')}`)));
  });
  // Requests that take 1.5 s each: all of them are in flight when SIGTERM arrives.
  const requests = Array.from({ length: REQUESTS }, (_, index) =>
    fetch(`http://127.0.0.1:${port}/orders/${index}`).then(
      async (response) => {
        await response.arrayBuffer();
        return response.status;
      },
      () => 0,
    ),
  );
  await sleep(300);
  const sigtermAt = performance.now();
  child.kill('SIGTERM');
  const statuses = await Promise.all(requests);
  const exit = await exited;
  return {
    statuses,
    exit: { code: exit.code, signal: exit.signal },
    msFromSigterm: exit.at - sigtermAt,
    spansAtExit: exit.spans,
    logs,
  };
}

describe('telemetry flushed by the health shutdown sequence', () => {
  it('delivers the spans of requests in flight at SIGTERM before the process exits, within the grace period', async () => {
    const run = await runShutdown('hook');
    expect(run.statuses).toEqual(Array.from({ length: REQUESTS }, () => 200));
    expect(run.exit, run.logs.join('\n')).toEqual({ code: 0, signal: null });
    expect(run.msFromSigterm).toBeLessThan(GRACE_PERIOD_MS);
    const servers = run.spansAtExit.filter((span) => span.name === 'GET /orders/:id');
    const loads = run.spansAtExit.filter((span) => span.name === 'orders.load');
    expect(servers).toHaveLength(REQUESTS);
    expect(loads).toHaveLength(REQUESTS);
    // Each inner span belongs to its request's server span, and the resource is the service's identity.
    for (const load of loads) {
      expect(servers.some((span) => span.spanId === load.parentSpanId && span.traceId === load.traceId)).toBe(true);
    }
    expect(servers[0]!.resource).toMatchObject({ 'service.name': 'shutdown-fixture', 'service.version': '2.0.0' });
    const events = run.logs.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
    const hooks = events.filter((event) => event['event'] === 'health.shutdown.hook.completed').map((e) => e['hook']);
    // fastify.close() first (registered last), then telemetry's flush.
    expect(hooks).toEqual(['fastify', 'telemetry']);
    expect(events.find((event) => event['event'] === 'health.shutdown.completed')).toMatchObject({ exitCode: 0 });
  });

  it('control: without the hook the same spans are still buffered when the process exits', async () => {
    const run = await runShutdown('no-hook');
    expect(run.statuses).toEqual(Array.from({ length: REQUESTS }, () => 200));
    expect(run.spansAtExit).toEqual([]);
  });
});
