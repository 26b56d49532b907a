// The logger shape every Gantry package accepts: pino's, declared structurally so pino stays optional.

type LogMethod = {
  (object: Record<string, unknown>, message?: string): void;
  (message: string): void;
};

/**
 * A pino-compatible logger. Pass `pino()` or `fastify.log`; the default is silent.
 * @example
 * createHealth({ logger: pino({ name: 'orders' }) });
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => undefined;

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
