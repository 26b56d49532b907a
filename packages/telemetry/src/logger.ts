// A pino logger that carries the service identity, the active trace (trace_id/span_id/trace_flags through a
// mixin, so it works in ESM and whatever the load order) and the request's tenant and user, with secrets redacted.
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { context, isSpanContextValid, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { TENANT_BAGGAGE_KEY, USER_BAGGAGE_KEY } from './context.ts';
import { invalidOption } from './errors.ts';
import { createRedactor, REDACTED, redactQueryParameters } from './redact.ts';

/**
 * The pino-shaped logger every Gantry package accepts (declared structurally, so no package needs pino).
 * @example
 * const log: TelemetryLogger = telemetry.logger.child({ component: 'billing' });
 */
export interface TelemetryLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  child(bindings: Record<string, unknown>): TelemetryLogger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** @default 'info' */
  readonly level?: Level | 'silent';
  /** Human-readable output through pino-pretty (an optional dependency); only when asked. @default false */
  readonly pretty?: boolean;
  /** Where lines go: a stream, a file descriptor or a file path. @default standard output */
  readonly destination?: DestinationStream | NodeJS.WritableStream | number | string;
  /** Redact secrets by key name. @default true */
  readonly redact?: boolean;
  /** Extra key names to redact (case-insensitive), on top of the defaults. @default [] */
  readonly redactKeys?: readonly string[];
  /** Fields added to every line, after the identity fields. @default {} */
  readonly base?: Readonly<Record<string, unknown>>;
  /** Add trace_id/span_id/trace_flags and tenant_id/user_id from the active context. @default true */
  readonly correlation?: boolean;
}

/** Identity fields of every line (`service`, `version`, `environment`, `instance`). */
export interface LoggerIdentity {
  readonly name: string;
  readonly version: string;
  readonly environment: string;
  readonly instanceId: string;
}

/**
 * Internal: writes telemetry's own request lines straight to the logger's stream, in pino's line format. Every
 * field of those lines is set by telemetry (ids, route template, status, tenant) and none is secret, so they skip
 * pino's generic serialization, the mixin and redaction. Lines of one event-loop turn go out in one write (at the
 * end of the turn, at 16 KiB, on flush() and at process exit): a write per request was the largest part of a
 * request line's cost.
 */
export interface RequestLineWriter {
  isEnabled(level: 'info' | 'error'): boolean;
  /** `fields` is a JSON object body without braces (`"a":1,"b":"x"`). */
  write(level: 'info' | 'error', fields: string, message: string): void;
  flush(): void;
}

const REQUEST_LINE_BUFFER_BYTES = 16_384;

const requestLineWriters = new WeakMap<object, RequestLineWriter>();

/** Internal: the request-line writer of a logger made by {@link createLogger}, or one that goes through pino. */
export function requestLineWriter(logger: Logger): RequestLineWriter {
  return (
    requestLineWriters.get(logger) ?? {
      isEnabled: (level) => logger.isLevelEnabled(level),
      write: (level, fields, message) => logger[level](JSON.parse(`{${fields}}`) as object, message),
      flush: () => undefined,
    }
  );
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const NO_FIELDS = Object.freeze({});

/**
 * The mixin behind log correlation: reads the active span and baggage. Exported for users who build their own
 * pino logger (`pino({ mixin: correlationFields })`).
 * @example
 * const logger = pino({ mixin: correlationFields });
 */
export function correlationFields(): Record<string, string> {
  const active = context.active();
  const span = trace.getSpan(active);
  const baggage = propagation.getBaggage(active);
  if (span === undefined && baggage === undefined) return NO_FIELDS;
  const fields: Record<string, string> = {};
  if (span !== undefined) {
    const spanContext = span.spanContext();
    if (isSpanContextValid(spanContext)) {
      fields['trace_id'] = spanContext.traceId;
      fields['span_id'] = spanContext.spanId;
      fields['trace_flags'] = (spanContext.traceFlags & (TraceFlags.SAMPLED as number)) !== 0 ? '01' : '00';
    }
  }
  if (baggage !== undefined) {
    const tenant = baggage.getEntry(TENANT_BAGGAGE_KEY)?.value;
    if (tenant !== undefined) fields['tenant_id'] = tenant;
    const user = baggage.getEntry(USER_BAGGAGE_KEY)?.value;
    if (user !== undefined) fields['user_id'] = user;
  }
  return fields;
}

// pino merges the log object into the mixin's result; the shared empty result must stay untouched.
function mergeCorrelation(mergeObject: object, mixinObject: object): object {
  return mixinObject === NO_FIELDS ? mergeObject : Object.assign(mixinObject, mergeObject);
}

function prettyStream(): DestinationStream | undefined {
  try {
    // Resolved from the app's point of view as well as ours: pino-pretty is the user's optional dependency.
    const require = createRequire(`${process.cwd()}/package.json`);
    let target: string;
    try {
      target = require.resolve('pino-pretty');
    } catch {
      target = createRequire(import.meta.url).resolve('pino-pretty');
    }
    return pino.transport({ target, options: { colorize: process.stdout.isTTY } });
  } catch {
    process.emitWarning('GANTRY_TELEMETRY: pretty logs were asked for but pino-pretty is not installed; writing JSON');
    return undefined;
  }
}

/**
 * Creates the service logger: pino with the identity as base fields, trace and tenant correlation through a
 * mixin, secrets redacted by key name (password, token, authorization, secret, keys ending in `_key`…), an
 * `event` field by convention (`logger.info({ event: 'orders.created' }, '...')`).
 * @throws TelemetryError `GANTRY_TELEMETRY_INVALID_OPTION` on a bad level or destination.
 * @example
 * const logger = createLogger({ name: 'orders', version: '1.4.0', environment: 'prod', instanceId: 'pod-1' });
 * logger.info({ event: 'orders.created', order_id: 42 }, 'order created');
 */
export function createLogger(identity: LoggerIdentity, options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (!LEVELS.includes(level)) throw invalidOption('logger.level', `one of ${LEVELS.join(', ')}`, level);
  const redact = options.redact ?? true;
  if (typeof redact !== 'boolean') throw invalidOption('logger.redact', 'a boolean', redact);
  const extraKeys = options.redactKeys ?? [];
  if (!Array.isArray(extraKeys) || extraKeys.some((key) => typeof key !== 'string')) {
    throw invalidOption('logger.redactKeys', 'an array of strings', extraKeys);
  }
  const redactor = redact ? createRedactor(extraKeys, REDACTED) : undefined;
  const base = {
    service: identity.name,
    version: identity.version,
    environment: identity.environment,
    instance: identity.instanceId,
    ...(redactor === undefined ? options.base : redactor({ ...options.base })),
  };
  let stream: DestinationStream | undefined;
  // The synchronous file destination this function opened itself, if any: request lines are written to its file
  // descriptor directly (see writeLines).
  let ownFile: object | undefined;
  const destination = options.destination;
  if (options.pretty === true) stream = prettyStream();
  if (stream === undefined) {
    if (destination === undefined) stream = ownFile = pino.destination({ dest: 1, sync: true });
    else if (typeof destination === 'number' || typeof destination === 'string') {
      stream = ownFile = pino.destination({ dest: destination, sync: true });
    } else if (typeof (destination as { write?: unknown }).write === 'function') {
      stream = destination;
    } else {
      throw invalidOption('logger.destination', 'a writable stream, a file descriptor or a path', destination);
    }
  }
  const correlation = options.correlation ?? true;
  const logger = pino(
    {
      level,
      base,
      ...(correlation ? { mixin: correlationFields, mixinMergeStrategy: mergeCorrelation } : {}),
      ...(redactor === undefined
        ? {}
        : {
            formatters: {
              log: (object: Record<string, unknown>) => redactor(object),
              bindings: (bindings: Record<string, unknown>) => redactor(bindings),
            },
            hooks: { streamWrite: (line: string) => redactQueryParameters(line) },
          }),
    },
    stream,
  );
  const baseFields = JSON.stringify(base).slice(1, -1);
  const levelNumbers = { info: 30, error: 50 } as const;
  // The request lines' messages are a couple of constants: their JSON is kept, not re-encoded per line.
  let lastMessage = '';
  let lastMessageJson = '""';
  let pending = '';
  let scheduled = false;
  const flushLines = (): void => {
    scheduled = false;
    if (pending === '') return;
    const lines = pending;
    pending = '';
    const fd = ownFile === undefined ? undefined : (ownFile as { fd?: unknown }).fd;
    if (typeof fd === 'number' && fd >= 0) writeLines(fd, lines, stream);
    else stream.write(lines);
  };
  process.once('exit', flushLines);
  requestLineWriters.set(logger, {
    isEnabled: (lineLevel) => logger.isLevelEnabled(lineLevel),
    write: (lineLevel, fields, message) => {
      if (message !== lastMessage) {
        lastMessage = message;
        lastMessageJson = JSON.stringify(message);
      }
      pending += `{"level":${levelNumbers[lineLevel]},"time":${Date.now()},${baseFields},${fields},"msg":${lastMessageJson}}\n`;
      if (pending.length >= REQUEST_LINE_BUFFER_BYTES) flushLines();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flushLines);
      }
    },
    flush: flushLines,
  });
  if (redactor !== undefined) {
    // pino applies the bindings formatter to the root only; children inherit this `child`, so every level of
    // `logger.child({ db_password })` is redacted too.
    // Unbound on purpose: a child's `child` must build on that child (its bindings and serializers), not the root.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const pinoChild = logger.child;
    const redactedChild = function (this: Logger, bindings: Record<string, unknown>, childOptions?: object): Logger {
      return (pinoChild as unknown as (this: Logger, ...args: unknown[]) => Logger).call(
        this,
        redactor(bindings),
        childOptions,
      );
    };
    (logger as unknown as { child: typeof redactedChild }).child = redactedChild;
  }
  return logger;
}

/**
 * Writes a batch of request lines to a synchronous destination's file descriptor: encoded once, where the stream's
 * `write` would measure, encode and copy the string again (sonic-boom 4). Safe to bypass the stream because a
 * synchronous sonic-boom holds nothing between writes, so lines keep their order. A descriptor that cannot take
 * the bytes now (EAGAIN on a non-blocking pipe) or fails gets the rest through the stream, which retries or
 * reports as it does for every other line.
 */
function writeLines(fd: number, lines: string, stream: DestinationStream): void {
  const bytes = Buffer.from(lines);
  let offset = 0;
  try {
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
  } catch {
    // A write cut inside a character already spoiled that character; start the rest at the next one.
    while (offset < bytes.length && ((bytes[offset] ?? 0) & 0xc0) === 0x80) offset += 1;
    if (offset < bytes.length) stream.write(offset === 0 ? lines : bytes.toString('utf8', offset));
  }
}

/** A logger that writes nothing (the default of every Gantry package). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
