// The structural contracts other Gantry packages build against (ARCHITECTURE.md, "Shared contracts").
// They import these with `import type` only, so @gantry/health stays an optional peer for them.

/** Outcome of one check. */
export type CheckStatus = 'UP' | 'DOWN';

/**
 * What a check reports: its status and, optionally, flat data shown in the MicroProfile Health response.
 * Data values must never hold secrets; they are served to anyone who can reach the probe port.
 */
export interface CheckResult {
  readonly status: CheckStatus;
  readonly data?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A health check. `run` must honour `signal`: when the check's timeout passes, the signal aborts and the work
 * should stop (cancel the query, abort the request). A check that throws or times out counts as DOWN.
 * @example
 * const check: Check = {
 *   name: 'postgres',
 *   timeoutMs: 500,
 *   run: async (signal) => {
 *     await pool.query({ text: 'SELECT 1', signal });
 *     return { status: 'UP' };
 *   },
 * };
 */
export interface Check {
  /** Unique within one health registry; shown as `name` in the response. */
  readonly name: string;
  /** A DOWN non-critical check shows in the response data but leaves the probe UP. @default true */
  readonly critical?: boolean;
  /** How long one run may take before it is aborted and counted DOWN. */
  readonly timeoutMs?: number;
  run(signal: AbortSignal): Promise<CheckResult>;
}

/**
 * Adds a section to `/q/info`: e.g. migrations add `schema`, flags add a snapshot hash. Called per request, so it
 * must answer from memory.
 */
export interface InfoContributor {
  /** Top-level key of the section in the `/q/info` document. */
  readonly name: string;
  contribute(): Readonly<Record<string, unknown>>;
}

/**
 * A step of the graceful shutdown (flush telemetry, disconnect Kafka, end a pool). Hooks run in reverse order of
 * registration, each bounded by its own timeout; `signal` aborts when that timeout passes.
 */
export interface ShutdownHook {
  readonly name: string;
  readonly timeoutMs?: number;
  run(signal: AbortSignal): Promise<void>;
}
