// Memory thresholds: V8 heap against its limit, and optionally absolute heap / RSS bounds.
import { getHeapStatistics } from 'node:v8';
import type { Check } from '../contracts.ts';
import { invalid, numberOption, stringOption } from '../options.ts';

/** Options of {@link createMemoryCheck}. */
export interface MemoryCheckOptions {
  /** @default 'memory' */
  readonly name?: string;
  /** DOWN when used heap exceeds this fraction of V8's heap limit (`--max-old-space-size`). @default 0.9 */
  readonly maxHeapUsedRatio?: number;
  /** DOWN above this many bytes of used heap. @default no bound */
  readonly maxHeapUsedBytes?: number;
  /** DOWN above this resident set size in bytes. @default no bound */
  readonly maxRssBytes?: number;
  /** @default true */
  readonly critical?: boolean;
}

/** Default `maxHeapUsedRatio`. @default 0.9 */
export const DEFAULT_MAX_HEAP_USED_RATIO = 0.9;

/**
 * Reports heap and RSS use and turns DOWN past a threshold.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for bad thresholds.
 * @example
 * health.addCheck(createMemoryCheck({ maxRssBytes: 512 * 1024 ** 2 }), { groups: ['liveness'] });
 */
export function createMemoryCheck(options: MemoryCheckOptions = {}): Check {
  const name = stringOption('name', options.name) ?? 'memory';
  const ratio = numberOption('maxHeapUsedRatio', options.maxHeapUsedRatio, DEFAULT_MAX_HEAP_USED_RATIO);
  if (ratio <= 0 || ratio > 1) throw invalid('maxHeapUsedRatio', 'a number in (0, 1]', ratio);
  const maxHeap = numberOption('maxHeapUsedBytes', options.maxHeapUsedBytes, Number.POSITIVE_INFINITY, { min: 1 });
  const maxRss = numberOption('maxRssBytes', options.maxRssBytes, Number.POSITIVE_INFINITY, { min: 1 });
  return {
    name,
    critical: options.critical ?? true,
    run: async () => {
      const usage = process.memoryUsage();
      const limit = getHeapStatistics().heap_size_limit;
      const usedRatio = usage.heapUsed / limit;
      const reasons: string[] = [];
      if (usedRatio > ratio) reasons.push(`heap ${(usedRatio * 100).toFixed(1)}% of limit > ${ratio * 100}%`);
      if (usage.heapUsed > maxHeap) reasons.push(`heap ${usage.heapUsed} B > ${maxHeap} B`);
      if (usage.rss > maxRss) reasons.push(`rss ${usage.rss} B > ${maxRss} B`);
      const data: Record<string, string | number> = {
        heapUsedBytes: usage.heapUsed,
        heapLimitBytes: limit,
        heapUsedRatio: Math.round(usedRatio * 1000) / 1000,
        rssBytes: usage.rss,
      };
      if (reasons.length > 0) data['reason'] = reasons.join('; ');
      return { status: reasons.length > 0 ? 'DOWN' : 'UP', data };
    },
  };
}
