// Internal hooks from a telemetry instance to its fastify plugin, kept out of the public Telemetry interface.
import type { ServerSpanStarter } from './server-span.ts';

/** What the fastify plugin needs beyond the public Telemetry. */
export interface TelemetryInternals {
  /** Starts server spans on the tracer provider's sampler, limits and processors (none when tracing is off). */
  readonly serverSpans: ServerSpanStarter | undefined;
}

const registry = new WeakMap<object, TelemetryInternals>();

/** Remembers the internals of a telemetry instance. */
export function registerInternals(owner: object, internals: TelemetryInternals): void {
  registry.set(owner, internals);
}

/** The internals of a telemetry instance made by initTelemetry(), if it was. */
export function internalsOf(owner: object): TelemetryInternals | undefined {
  return registry.get(owner);
}
