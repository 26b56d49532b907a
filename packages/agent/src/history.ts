// Timestamped cumulative totals of one pod, so any window is `latest − snapshot at the window's start`.
import { emptyTotals, subtractTotals, type Totals } from './totals.ts';

/** A pod's cumulative totals over time (bounded). */
export class TotalsHistory {
  readonly #entries: { at: number; totals: Totals }[] = [];
  readonly #maxAgeMs: number;

  constructor(maxAgeMs: number) {
    this.#maxAgeMs = maxAgeMs;
  }

  /** Appends a snapshot (ignores one older than the latest). */
  add(at: number, totals: Totals): void {
    const last = this.#entries.at(-1);
    if (last !== undefined && at < last.at) return;
    if (last !== undefined && at === last.at) this.#entries.pop();
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
