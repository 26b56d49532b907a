import { describe, expect, it } from 'vitest';
import { MAX_HISTORY_ENTRIES, TotalsHistory } from './history.ts';
import { histogramFromSamples } from './stats-testing.ts';

const totals = (requests: number) => histogramFromSamples(new Array<number>(requests).fill(0.01), [0.005, 0.05]);

describe('totals history', () => {
  it('stays bounded for a pod reporting every second for hours, with windows exact to the thinning resolution', () => {
    const history = new TotalsHistory(3_600_000);
    for (let second = 0; second <= 3 * 3_600; second += 1) history.add(second * 1_000, totals(second));
    expect(history.size).toBeLessThanOrEqual(MAX_HISTORY_ENTRIES + 2);
    const lastFiveMinutes = history.since((3 * 3_600 - 300) * 1_000).requests;
    expect(lastFiveMinutes).toBeGreaterThanOrEqual(300);
    expect(lastFiveMinutes).toBeLessThanOrEqual(300 + 8);
    expect(history.latest()?.totals.requests).toBe(3 * 3_600);
  });

  it('counts everything of a pod that started after the window began, and restarts from zero after a reset', () => {
    const history = new TotalsHistory(3_600_000);
    history.add(10_000, totals(50));
    history.add(11_000, totals(80));
    expect(history.since(5_000, 9_000).requests).toBe(80);
    history.add(12_000, totals(5));
    expect(history.since(10_500).requests).toBe(5);
  });
});
