// Every error @gantry/telemetry throws or reports, with a stable code. The README lists each code; a unit test
// keeps the two in step.

/** Stable codes of {@link TelemetryError}. */
export const TELEMETRY_ERROR_CODES = {
  /** An option (or the environment variable behind it) has a value that cannot work. */
  invalidOption: 'GANTRY_TELEMETRY_INVALID_OPTION',
  /** `initTelemetry()` was called while another instance still owns the global OpenTelemetry providers. */
  alreadyInitialized: 'GANTRY_TELEMETRY_ALREADY_INITIALIZED',
  /** A metric label name is not allowed (reserved, unbounded such as a tenant id, or malformed). */
  forbiddenLabel: 'GANTRY_TELEMETRY_FORBIDDEN_LABEL',
  /** A module that telemetry should instrument was loaded but never patched (ESM loader hook missing, load order). */
  instrumentationNotApplied: 'GANTRY_TELEMETRY_INSTRUMENTATION_NOT_APPLIED',
  /** Sending spans to the OTLP endpoint failed (reported in logs, never thrown into the host). */
  exportFailed: 'GANTRY_TELEMETRY_EXPORT_FAILED',
  /** `shutdown()` did not flush everything before its deadline (or a step failed). */
  shutdownIncomplete: 'GANTRY_TELEMETRY_SHUTDOWN_INCOMPLETE',
} as const;

/** One of the {@link TELEMETRY_ERROR_CODES}. */
export type TelemetryErrorCode = (typeof TELEMETRY_ERROR_CODES)[keyof typeof TELEMETRY_ERROR_CODES];

/**
 * The one error class of @gantry/telemetry. `code` is stable; `cause` keeps the underlying error.
 * @example
 * try { initTelemetry({ sampleRatio: 2 }); } catch (error) {
 *   if (isTelemetryError(error) && error.code === 'GANTRY_TELEMETRY_INVALID_OPTION') console.error(error.message);
 * }
 */
export class TelemetryError extends Error {
  readonly code: TelemetryErrorCode;

  constructor(code: TelemetryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TelemetryError';
    this.code = code;
  }
}

/**
 * Whether `value` is a {@link TelemetryError} (works across duplicated copies of the package).
 * @example
 * if (isTelemetryError(error)) logger.warn({ code: error.code }, error.message);
 */
export function isTelemetryError(value: unknown): value is TelemetryError {
  return (
    value instanceof TelemetryError ||
    (value instanceof Error &&
      value.name === 'TelemetryError' &&
      typeof (value as { code?: unknown }).code === 'string' &&
      (Object.values(TELEMETRY_ERROR_CODES) as string[]).includes((value as unknown as { code: string }).code))
  );
}

/** Renders a received value for an option error message, without ever echoing long strings in full. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value;
}

/** Builds the standard `Expected ... got ...` option error. */
export function invalidOption(name: string, expected: string, received: unknown): TelemetryError {
  return new TelemetryError(
    TELEMETRY_ERROR_CODES.invalidOption,
    `Expected \`${name}\` to be ${expected}, got ${describeValue(received)}`,
  );
}
