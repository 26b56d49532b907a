// The logger shape every Gantry package accepts (pino's). Default: silent.

/** One logging method: pino's `(obj?, msg?)` form. */
export type LogMethod = (obj: Readonly<Record<string, unknown>> | string, msg?: string) => void;

/**
 * A pino-compatible logger. Fields used here: `event` (a dotted name such as `secrets.rotation.completed`) plus
 * event data. No field ever holds a password, token, JWT, secret ID or KV value.
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  child(bindings: Readonly<Record<string, unknown>>): Logger;
}

const noop = (): void => undefined;

/** A logger that drops everything. */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => SILENT_LOGGER,
});

/** Error fields that are safe to log: our code/kind/status and pg's SQLSTATE, plus the message. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { err: String(error) };
  const fields: Record<string, unknown> = { err: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') fields['errCode'] = code;
  const kind = (error as { kind?: unknown }).kind;
  if (typeof kind === 'string') fields['errKind'] = kind;
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') fields['status'] = status;
  return fields;
}
