import { describe, expect, it } from 'vitest';
import { FleetStore } from './fleet.ts';
import { Evaluator, type GateQuery } from './gates.ts';
import { TotalsHistory } from './history.ts';
import { HoldStore } from './holds.ts';
import { SILENT_LOGGER } from './logger.ts';
import { resolveAgentConfig } from './options.ts';
import { histogramFromSamples, OTEL_BUCKETS_FOR_TESTS } from './stats-testing.ts';
import { fleetServiceName, inSameFleet, type PodSummary } from './summary.ts';

function summary(pod: string, fields: Partial<PodSummary>, at = 1_000): PodSummary {
  return {
    schemaVersion: 1,
    pod,
    namespace: 'shop',
    podTemplateHash: undefined,
    version: '1.0.0',
    service: 'orders',
    imageDigest: undefined,
    agentStartedAt: 0,
    appStartedAt: 0,
    at,
    live: 'UP',
    ready: 'UP',
    consecutiveHealthFailures: 0,
    totals: histogramFromSamples([], OTEL_BUCKETS_FOR_TESTS),
    triggers: [],
    schema: null,
    restarts: 0,
    ...fields,
  };
}

describe('fleet membership', () => {
  it('is the same service (a Flagger "-primary" suffix aside) in the same namespace', () => {
    const self = { service: 'orders', namespace: 'shop' };
    expect(inSameFleet({ service: 'orders-primary', namespace: 'shop' }, self)).toBe(true);
    expect(inSameFleet({ service: 'payments', namespace: 'shop' }, self)).toBe(false);
    expect(inSameFleet({ service: 'orders', namespace: 'staging' }, self)).toBe(false);
    expect(inSameFleet({ service: undefined, namespace: 'shop' }, self)).toBe(false);
    expect(
      inSameFleet({ service: undefined, namespace: undefined }, { service: undefined, namespace: undefined }),
    ).toBe(true);
    expect(fleetServiceName('-primary')).toBe('-primary');
  });

  it('keeps no summary or history for pods another fleet publishes on the shared topic', () => {
    const self = summary('orders-a', {});
    const store = new FleetStore(3_600_000, 30_000, (peer) => inSameFleet(peer, self));
    store.update(self, 1_000, true);
    expect(store.update(summary('orders-b', {}), 1_000)).toBe(true);
    expect(store.update(summary('payments-a', { service: 'payments' }), 1_000)).toBe(false);
    expect(store.update(summary('orders-x', { namespace: 'staging' }), 1_000)).toBe(false);
    expect(store.views(1_000).map((view) => view.summary.pod)).toEqual(['orders-a', 'orders-b']);
  });
});

describe('compare gate without baselineHash', () => {
  it('takes the baseline from its own service only, never from every other hash on the fleet', () => {
    const now = 600_000;
    const config = resolveAgentConfig({ warmupMs: 0, policy: { compare: { minSamples: 100 } } });
    const evaluator = new Evaluator({
      policy: () => config.policy,
      holds: new HoldStore({ now: () => now, logger: SILENT_LOGGER }),
      intervalMs: 5_000,
      staleAfterMs: 30_000,
      warmupMs: 0,
    });
    const view = (pod: string, fields: Partial<PodSummary>, errors: number, isSelf = false) => {
      const history = new TotalsHistory(3_600_000);
      history.add(0, histogramFromSamples([], OTEL_BUCKETS_FOR_TESTS));
      const totals = histogramFromSamples(new Array<number>(2_000).fill(0.02), OTEL_BUCKETS_FOR_TESTS, errors);
      history.add(now, totals);
      return { summary: summary(pod, { ...fields, totals, at: now }), history, isSelf };
    };
    const self = view('orders-c', { podTemplateHash: 'canary' }, 100, true);
    const query: GateQuery = {
      gate: 'compare',
      runId: 'r',
      expectHash: undefined,
      expectVersion: undefined,
      expectDigest: undefined,
      baselineHash: undefined,
      windowMs: undefined,
      minSamples: undefined,
      maxErrorRate: undefined,
      maxP99Ms: undefined,
      insufficient: undefined,
      scope: 'version',
      waitMs: 0,
      tenant: undefined,
      expectPods: undefined,
      durationMs: undefined,
    };
    evaluator.run('r', 0); // the run started before the traffic
    const document = evaluator.evaluate(
      query,
      {
        now,
        cycle: 1,
        dataVersion: 1,
        self,
        pods: [
          self,
          view('orders-primary-b', { podTemplateHash: 'stable', service: 'orders-primary' }, 10),
          // A failing service next door: counted in, it made the canary's 5% look environmental.
          view('payments-a', { podTemplateHash: 'pay', service: 'payments' }, 800),
        ],
        metricsAgeMs: 0,
        lastShiftAt: undefined,
      },
      'r',
    );
    expect(document.fleet.baselinePods).toBe(1);
    expect(document.baseline).toMatchObject({ podTemplateHash: 'stable', samples: 2_000 });
    expect(document).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
  });
});
