// The logger shape Gantry packages accept (pino's): leveled methods taking an optional object and a message.

/** A pino-compatible logger. */
export interface Logger {
  info(obj: object, message?: string): void;
  warn(obj: object, message?: string): void;
  error(obj: object, message?: string): void;
  debug(obj: object, message?: string): void;
  child(bindings: object): Logger;
}

/**
 * A logger that drops everything (the default).
 * @example createAgent({ logger: SILENT_LOGGER })
 */
export const SILENT_LOGGER: Logger = Object.freeze({
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  child: () => SILENT_LOGGER,
});

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** Log levels of {@link createJsonLogger}. */
export type LogLevel = keyof typeof LEVELS;

/**
 * A minimal JSON-lines logger for the CLI (pino's line format: `level`, `time`, `msg`, fields).
 * @example createJsonLogger({ level: 'info' }).info({ event: 'agent.started' }, 'listening');
 */
export function createJsonLogger(
  options: { level?: LogLevel; write?: (line: string) => void; bindings?: object } = {},
): Logger {
  const threshold = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const bindings = options.bindings ?? {};
  const emit =
    (level: LogLevel) =>
    (obj: object, message?: string): void => {
      if (LEVELS[level] < threshold) return;
      write(`${JSON.stringify({ level: LEVELS[level], time: Date.now(), ...bindings, ...obj, msg: message })}\n`);
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (more) => createJsonLogger({ ...options, bindings: { ...bindings, ...more } }),
  };
}
