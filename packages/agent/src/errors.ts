/** Stable error codes of @gantry/agent; every one is listed in the package README. */
export type AgentErrorCode =
  | 'GANTRY_AGENT_INVALID_OPTION'
  | 'GANTRY_AGENT_CONFIG_FILE'
  | 'GANTRY_AGENT_INVALID_CALENDAR'
  | 'GANTRY_AGENT_LISTEN'
  | 'GANTRY_AGENT_METRICS_PARSE'
  | 'GANTRY_AGENT_FLEET'
  | 'GANTRY_AGENT_SINK'
  | 'GANTRY_AGENT_STATE';

/** Every code, for documentation checks and exhaustive handling. */
export const AGENT_ERROR_CODES: readonly AgentErrorCode[] = Object.freeze([
  'GANTRY_AGENT_INVALID_OPTION',
  'GANTRY_AGENT_CONFIG_FILE',
  'GANTRY_AGENT_INVALID_CALENDAR',
  'GANTRY_AGENT_LISTEN',
  'GANTRY_AGENT_METRICS_PARSE',
  'GANTRY_AGENT_FLEET',
  'GANTRY_AGENT_SINK',
  'GANTRY_AGENT_STATE',
]);

/**
 * The one error class of @gantry/agent. `code` is stable; `field` names the offending option for configuration
 * errors (the CLI prints it and exits with code 2).
 * @example
 * try { createAgent({ intervalMs: -1 }); } catch (error) { if (isAgentError(error)) console.log(error.code, error.field); }
 */
export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly field: string | undefined;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.field = options?.field;
  }
}

/**
 * Whether `value` is an {@link AgentError} (also across package copies, by shape).
 * @example
 * if (isAgentError(error) && error.code === 'GANTRY_AGENT_INVALID_OPTION') process.exitCode = 2;
 */
export function isAgentError(value: unknown): value is AgentError {
  return (
    value instanceof AgentError ||
    (value instanceof Error &&
      typeof (value as { code?: unknown }).code === 'string' &&
      (AGENT_ERROR_CODES as readonly string[]).includes((value as unknown as { code: string }).code))
  );
}

/** Renders a received value for an error message (short, never throws). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Builds the standard configuration error: names the field, what was expected and what was received. */
export function invalidOption(field: string, expected: string, received: unknown): AgentError {
  return new AgentError(
    'GANTRY_AGENT_INVALID_OPTION',
    `Expected \`${field}\` to be ${expected}, got ${describeValue(received)}`,
    { field },
  );
}
