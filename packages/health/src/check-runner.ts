// Runs one check: on an interval in the background (or on demand), never two runs at once, each run bounded by a
// timeout that aborts the check's signal. Results go through flap damping and expire after a staleness bound.
import type { Check, CheckResult, CheckStatus } from './contracts.ts';
import type { Clock, TimerHandle } from './clock.ts';
import { HealthError } from './errors.ts';
import type { HealthGroup } from './options.ts';
import { describeError } from './reason.ts';

/** Data values as MicroProfile Health allows them. */
export type CheckData = Readonly<Record<string, string | number | boolean>>;

/** One entry of a probe response. */
export interface CheckView {
  readonly name: string;
  readonly status: CheckStatus;
  readonly data?: CheckData;
}

/** The resolved scheduling of one check. */
export interface ResolvedPolicy {
  readonly groups: readonly HealthGroup[];
  readonly mode: 'background' | 'on-demand';
  readonly critical: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly staleAfterMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly cacheMs: number;
}

/** What the runner tells its owner after each run. */
export interface RunReport {
  readonly name: string;
  readonly raw: CheckStatus;
  readonly status: CheckStatus;
  readonly changed: boolean;
  readonly durationMs: number;
  readonly timedOut: boolean;
  readonly reason: string | undefined;
}

interface LastResult {
  readonly status: CheckStatus;
  readonly data: CheckData | undefined;
  readonly reason: string | undefined;
  readonly at: number;
}

async function microtasks(count: number): Promise<undefined> {
  for (let index = 0; index < count; index += 1) await Promise.resolve();
  return undefined;
}

const VALUE_TYPES = new Set(['string', 'number', 'boolean']);

/** A frozen copy of valid MicroProfile data (flat string/number/boolean values), or `false`. */
function copyData(data: unknown): CheckData | undefined | false {
  if (data === undefined) return undefined;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  try {
    const copy: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(data)) {
      if (!VALUE_TYPES.has(typeof value)) return false;
      copy[key] = value as string | number | boolean;
    }
    return Object.freeze(copy);
  } catch {
    return false;
  }
}

export class CheckRunner {
  readonly check: Check;
  readonly policy: ResolvedPolicy;
  readonly #clock: Clock;
  readonly #onRun: (report: RunReport) => void;
  #status: CheckStatus | 'PENDING' = 'PENDING';
  #last: LastResult | undefined;
  #failures = 0;
  #successes = 0;
  /** Settles when the current run's result is recorded (on completion or timeout). */
  #pending: Promise<void> | undefined;
  /** Set while the check's own promise has not settled, even past its timeout: no new run starts meanwhile. */
  #busySince: number | undefined;
  #controller: AbortController | undefined;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;

  constructor(check: Check, policy: ResolvedPolicy, clock: Clock, onRun: (report: RunReport) => void) {
    this.check = check;
    this.policy = policy;
    this.#clock = clock;
    this.#onRun = onRun;
  }

  get name(): string {
    return this.check.name;
  }

  /** The damped status, `PENDING` before the first result. */
  get status(): CheckStatus | 'PENDING' {
    return this.#status;
  }

  /** Starts the background loop (first run at once). On-demand checks only run when asked. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    if (this.policy.mode === 'background') this.#schedule(0);
  }

  /** Stops the loop and aborts a run in progress; the last result stays readable. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller?.abort(new HealthError('GANTRY_HEALTH_CLOSED', 'the health registry was closed'));
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Whether an on-demand check's cached result is too old to serve. */
  needsRefresh(now: number): boolean {
    if (this.policy.mode !== 'on-demand' || this.#stopped) return false;
    return this.#last === undefined || now - this.#last.at >= this.policy.cacheMs;
  }

  /** Runs the check now unless a run is in progress, in which case it waits for that one. */
  runOnce(): Promise<void> {
    if (this.#pending !== undefined) return this.#pending;
    if (this.#busySince !== undefined || this.#stopped) return Promise.resolve();
    this.#pending = this.#run().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** The earliest time at which this check's view changes by the passage of time alone (it goes stale). */
  staleAt(): number {
    if (this.#last === undefined || this.#stopped) return Number.POSITIVE_INFINITY;
    return this.#last.at + this.policy.staleAfterMs;
  }

  /** The check as a probe shows it at `now`. */
  view(now: number): CheckView {
    const extra: Record<string, string | number | boolean> = {};
    if (!this.policy.critical) extra['critical'] = false;
    const last = this.#last;
    if (this.#status === 'PENDING' || last === undefined) {
      const busy = this.#busySince !== undefined ? '; first run in progress' : '';
      return { name: this.name, status: 'DOWN', data: { ...extra, reason: `no result yet${busy}` } };
    }
    const data: Record<string, string | number | boolean> = { ...last.data, ...extra };
    const age = now - last.at;
    if (!this.#stopped && age > this.policy.staleAfterMs) {
      const busy =
        this.#busySince !== undefined
          ? `; a run has been going for ${Math.round(now - this.#busySince)} ms (the check ignores its AbortSignal)`
          : '';
      data['reason'] = `stale: last result ${Math.round(age)} ms ago${busy}`;
      return { name: this.name, status: 'DOWN', data };
    }
    if (last.reason !== undefined) data[this.#status === last.status ? 'reason' : 'lastFailure'] = last.reason;
    if (this.#status !== last.status) {
      data[last.status === 'DOWN' ? 'consecutiveFailures' : 'consecutiveSuccesses'] =
        last.status === 'DOWN' ? this.#failures : this.#successes;
    }
    return Object.keys(data).length === 0
      ? { name: this.name, status: this.#status }
      : { name: this.name, status: this.#status, data };
  }

  #schedule(delayMs: number): void {
    if (!this.#running || this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      // #run records every failure of the check itself; nothing may escape a background loop.
      this.runOnce().catch(() => undefined);
    }, delayMs);
  }

  async #run(): Promise<void> {
    const clock = this.#clock;
    const controller = new AbortController();
    this.#controller = controller;
    const started = clock.now();
    this.#busySince = started;
    const timeoutMs = this.policy.timeoutMs;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = clock.setTimeout(() => resolve('timeout'), timeoutMs);
    });
    let work: Promise<CheckResult>;
    try {
      work = Promise.resolve(this.check.run(controller.signal));
    } catch (error) {
      work = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const settled = work.then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    // The next background run is scheduled only once the check's own promise settles: a check that ignores its
    // signal can hold one run open, never a pile of them.
    void settled.then(() => {
      this.#busySince = undefined;
      if (this.#controller === controller) this.#controller = undefined;
      if (this.policy.mode === 'background') this.#schedule(this.policy.intervalMs);
    });
    const outcome = await Promise.race([settled, timeout]);
    if (timer !== undefined) clock.clearTimeout(timer);
    const durationMs = clock.now() - started;
    if (this.#stopped) return;
    if (outcome === 'timeout') {
      const reason = new HealthError(
        'GANTRY_HEALTH_CHECK_TIMEOUT',
        `check "${this.name}" timed out after ${timeoutMs} ms`,
      );
      controller.abort(reason);
      // A check that rejects synchronously on abort may say why it was stuck (e.g. "pool exhausted"); give its
      // rejection a few microtasks to arrive, never a timer.
      const late = await Promise.race([settled, microtasks(8)]);
      const detail =
        late !== undefined && 'error' in late && late.error !== reason ? `: ${describeError(late.error)}` : '';
      this.#record('DOWN', undefined, `timed out after ${timeoutMs} ms${detail}`, durationMs, true);
    } else if ('error' in outcome) {
      this.#record('DOWN', undefined, describeError(outcome.error), durationMs, false);
    } else {
      const result = outcome.result as Partial<CheckResult> | undefined;
      const status = typeof result === 'object' && result !== null ? result.status : undefined;
      const data = status === undefined ? false : copyData(result?.data);
      if ((status !== 'UP' && status !== 'DOWN') || data === false) {
        this.#record(
          'DOWN',
          undefined,
          'invalid result: expected { status: "UP" | "DOWN", data?: flat string/number/boolean values }',
          durationMs,
          false,
        );
      } else {
        this.#record(status, data, undefined, durationMs, false);
      }
    }
  }

  #record(
    raw: CheckStatus,
    data: CheckData | undefined,
    reason: string | undefined,
    durationMs: number,
    timedOut: boolean,
  ): void {
    const now = this.#clock.now();
    if (raw === 'UP') {
      this.#successes += 1;
      this.#failures = 0;
    } else {
      this.#failures += 1;
      this.#successes = 0;
    }
    const before = this.#status;
    if (before === 'PENDING') this.#status = raw;
    else if (before === 'UP' && this.#failures >= this.policy.failureThreshold) this.#status = 'DOWN';
    else if (before === 'DOWN' && this.#successes >= this.policy.successThreshold) this.#status = 'UP';
    this.#last = { status: raw, data, reason, at: now };
    this.#onRun({
      name: this.name,
      raw,
      status: this.#status as CheckStatus,
      changed: before !== this.#status,
      durationMs,
      timedOut,
      reason,
    });
  }
}
