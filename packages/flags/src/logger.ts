/** The part of pino's logger this package uses. Pass a pino logger, or anything with the same shape. */
export interface FlagsLogger {
  debug(object: Record<string, unknown>, message?: string): void;
  info(object: Record<string, unknown>, message?: string): void;
  warn(object: Record<string, unknown>, message?: string): void;
  error(object: Record<string, unknown>, message?: string): void;
  child(bindings: Record<string, unknown>): FlagsLogger;
}

const noop = (): void => undefined;

/** A logger that drops everything: the default. */
export const SILENT_LOGGER: FlagsLogger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => SILENT_LOGGER,
};

/** Renders an unknown thrown value for a log field without leaking more than its message. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}
