// Timestamped cumulative totals of one pod, so any window is `latest − snapshot at the window's start`.
import { emptyTotals, subtractTotals, type Totals } from './totals.ts';

/** Snapshots kept per pod at most (older ones are thinned to this resolution). */
export const MAX_HISTORY_ENTRIES = 600;

/**
 * A pod's cumulative totals over time. Bounded in age and in size: snapshots closer together than
 * `1.2 × maxAgeMs / 600` replace each other (the latest is always exact), so a large fleet at a short interval
 * stays within 600 snapshots per pod and a window's start is exact to that resolution (7.2 s for an hour).
 */
export class TotalsHistory {
  readonly #entries: { at: number; totals: Totals }[] = [];
  readonly #maxAgeMs: number;
  readonly #spacingMs: number;

  constructor(maxAgeMs: number) {
    this.#maxAgeMs = maxAgeMs;
    // Entries end up one spacing apart at most; 1.2× leaves room for the exact latest and the one at the cutoff.
    this.#spacingMs = (1.2 * maxAgeMs) / MAX_HISTORY_ENTRIES;
  }

  /** Appends a snapshot (ignores one older than the latest). */
  add(at: number, totals: Totals): void {
    const last = this.#entries.at(-1);
    if (last !== undefined && at < last.at) return;
    const before = this.#entries.at(-2);
    if (last !== undefined && (at === last.at || (before !== undefined && at - before.at < this.#spacingMs))) {
      this.#entries.pop();
    }
    this.#entries.push({ at, totals });
    const cutoff = at - this.#maxAgeMs;
    let drop = 0;
    // Keep one entry at or before the cutoff so windows that start there stay exact.
    while (drop + 1 < this.#entries.length && this.#entries[drop + 1]!.at <= cutoff) drop += 1;
    if (drop > 0) this.#entries.splice(0, drop);
  }

  latest(): { at: number; totals: Totals } | undefined {
    return this.#entries.at(-1);
  }

  /**
   * Totals accumulated since `from`: latest minus the last snapshot at or before `from`. When the history starts
   * after `from`, everything since `podStartedAt ≥ from` counts; otherwise from the oldest snapshot.
   */
  since(from: number, podStartedAt?: number): Totals {
    const last = this.#entries.at(-1);
    if (last === undefined) return emptyTotals();
    let base: Totals | undefined;
    for (let index = this.#entries.length - 1; index >= 0; index -= 1) {
      if (this.#entries[index]!.at <= from) {
        base = this.#entries[index]!.totals;
        break;
      }
    }
    if (base === undefined) {
      if (podStartedAt !== undefined && podStartedAt >= from) return last.totals;
      base = this.#entries[0]!.totals;
    }
    return subtractTotals(last.totals, base);
  }

  get size(): number {
    return this.#entries.length;
  }
}
