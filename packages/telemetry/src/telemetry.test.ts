import { context, propagation, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { getRequestContext, withRequestContext } from './context.ts';
import { createTestTelemetry, type TestTelemetry } from './testing.ts';
import { traceOperation } from './trace-operation.ts';

let t: TestTelemetry | undefined;
afterEach(async () => {
  await t?.shutdown();
  t = undefined;
});

describe('traceOperation', () => {
  it('wraps sync and async work, records exceptions and sets the status', async () => {
    t = createTestTelemetry();
    expect(traceOperation('sync', { a: 1 }, () => 41 + 1)).toBe(42);
    await expect(traceOperation('async', async () => 'done')).resolves.toBe('done');
    expect(() =>
      traceOperation('throws', () => {
        throw new Error('sync failure');
      }),
    ).toThrow('sync failure');
    await expect(
      traceOperation('rejects', async () => {
        throw new Error('async failure');
      }),
    ).rejects.toThrow('async failure');
    const byName = Object.fromEntries(t.spans().map((span) => [span.name, span]));
    expect(byName['sync']!.attributes).toEqual({ a: 1 });
    expect(byName['sync']!.status.code).toBe(1);
    expect(byName['async']!.status.code).toBe(1);
    expect(byName['throws']!.status).toEqual({ code: 2, message: 'sync failure' });
    expect(byName['rejects']!.events[0]!.name).toBe('exception');
    expect(byName['rejects']!.events[0]!.attributes?.['exception.message']).toBe('async failure');
  });

  it('nests spans and correlates logs written inside', async () => {
    t = createTestTelemetry();
    await traceOperation('outer', async () => {
      await traceOperation('inner', async () => {
        t!.telemetry.logger.info({ event: 'work.done' }, 'done');
      });
    });
    const [inner, outer] = t.spans();
    expect(inner!.parentSpanContext?.spanId).toBe(outer!.spanContext().spanId);
    expect(t.logs.lines.find((line) => line['event'] === 'work.done')).toMatchObject({
      trace_id: outer!.spanContext().traceId,
      span_id: inner!.spanContext().spanId,
    });
  });
});

describe('request context', () => {
  it('carries tenant and user as baggage that any package reads through @opentelemetry/api', () => {
    t = createTestTelemetry();
    withRequestContext({ tenantId: 'acme', userId: 'u-1' }, () => {
      expect(getRequestContext()).toEqual({ tenantId: 'acme', userId: 'u-1' });
      expect(propagation.getBaggage(context.active())?.getEntry('tenant.id')?.value).toBe('acme');
      const headers: Record<string, string> = {};
      propagation.inject(context.active(), headers);
      expect(headers['baggage']).toContain('tenant.id=acme');
      t!.telemetry.logger.info({ event: 'x' }, 'x');
    });
    expect(getRequestContext()).toEqual({ tenantId: undefined, userId: undefined });
    expect(t.logs.lines.find((line) => line['event'] === 'x')).toMatchObject({ tenant_id: 'acme', user_id: 'u-1' });
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
