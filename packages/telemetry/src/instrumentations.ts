// The few instrumentations Gantry ships (http client, pg, kafkajs) and the check that they really applied: an
// instrumentation that silently did nothing (ESM without the loader hook, a module loaded before telemetry) is the
// most common OpenTelemetry failure, so we look at what was loaded and whether it was patched.
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import { type Instrumentation, isWrapped, registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import type { TracerProvider } from '@opentelemetry/api';
import type { InstrumentationName, TelemetryConfig } from './options.ts';
import { createPathMatcher } from './paths.ts';

/** What became of one instrumentation. */
export type InstrumentationState =
  /** The module was loaded and patched. */
  | 'applied'
  /** The module was loaded but not patched: spans from it will be missing. */
  | 'not-applied'
  /** The app has not loaded the module (yet). */
  | 'not-loaded'
  /** Turned off in the options (or tracing is off). */
  | 'disabled';

/** Status of one instrumentation, from {@link InstalledInstrumentations.status}. */
export interface InstrumentationStatus {
  readonly name: InstrumentationName;
  readonly state: InstrumentationState;
  /** Why, in one line, for `not-applied`. */
  readonly reason?: string;
}

/** The installed instrumentations. */
export interface InstalledInstrumentations {
  status(): InstrumentationStatus[];
  disable(): void;
}

/**
 * The part of an instrumentation we inspect. Declared structurally: the instrumentation packages each bring their
 * own copy of @opentelemetry/instrumentation, whose classes do not unify.
 */
interface InspectableInstrumentation extends Instrumentation {
  // InstrumentationBase keeps the definitions it hooked here (getModuleDefinitions() builds fresh, unhooked ones);
  // the hook sets moduleExports when it patched a loaded module.
  readonly _modules?: readonly { moduleExports?: unknown; files: readonly { moduleExports?: unknown }[] }[];
}

const MODULES: Record<InstrumentationName, readonly string[]> = {
  http: ['http', 'https'],
  pg: ['pg', 'pg-pool'],
  kafkajs: ['kafkajs'],
};

/** Package folders (inside node_modules) of CommonJS modules loaded so far. */
function loadedPackages(): Set<string> {
  const require = createRequire(import.meta.url);
  const found = new Set<string>();
  const marker = `${sep}node_modules${sep}`;
  for (const file of Object.keys(require.cache)) {
    const index = file.lastIndexOf(marker);
    if (index < 0) continue;
    const rest = file.slice(index + marker.length).split(sep);
    const name = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : rest[0];
    if (name !== undefined) found.add(name);
  }
  return found;
}

function definitionApplied(instrumentation: InspectableInstrumentation): boolean {
  return (instrumentation._modules ?? []).some(
    (definition) =>
      definition.moduleExports !== undefined || definition.files.some((file) => file.moduleExports !== undefined),
  );
}

/**
 * Creates and enables the configured instrumentations against `tracerProvider`.
 * Must run before the app imports the instrumented modules (use `--import @gantry/telemetry/register`).
 */
export function installInstrumentations(
  config: TelemetryConfig,
  tracerProvider: TracerProvider | undefined,
): InstalledInstrumentations {
  const enabled = tracerProvider === undefined ? [] : config.instrumentations;
  const instances = new Map<InstrumentationName, InspectableInstrumentation>();
  const ignored = createPathMatcher([
    ...config.http.ignorePaths,
    ...(config.metrics === false || config.metrics.path === false ? [] : [config.metrics.path]),
  ]);
  for (const name of enabled) {
    switch (name) {
      case 'http':
        instances.set(
          name,
          new HttpInstrumentation({
            disableIncomingRequestInstrumentation: !config.httpServerSpans,
            ignoreIncomingRequestHook: (request) => ignored(request.url ?? '/'),
          }) as unknown as InspectableInstrumentation,
        );
        break;
      case 'pg':
        // Without a parent span, pool housekeeping would create root traces nobody asked for.
        instances.set(
          name,
          new PgInstrumentation({ requireParentSpan: true }) as unknown as InspectableInstrumentation,
        );
        break;
      case 'kafkajs':
        instances.set(name, new KafkaJsInstrumentation({}) as unknown as InspectableInstrumentation);
        break;
    }
  }
  if (instances.size > 0) {
    registerInstrumentations({
      instrumentations: [...instances.values()],
      ...(tracerProvider ? { tracerProvider } : {}),
    });
  }
  return {
    status() {
      const loaded = loadedPackages();
      const require = createRequire(import.meta.url);
      return (['http', 'pg', 'kafkajs'] as const).map((name): InstrumentationStatus => {
        const instrumentation = instances.get(name);
        if (instrumentation === undefined) return { name, state: 'disabled' };
        if (name === 'http') {
          const http = require('node:http') as { request: unknown };
          return isWrapped(http.request)
            ? { name, state: 'applied' }
            : {
                name,
                state: 'not-applied',
                reason: 'node:http.request is not wrapped: telemetry started after http was patched back or replaced',
              };
        }
        if (definitionApplied(instrumentation)) return { name, state: 'applied' };
        const isLoaded = MODULES[name].some((module) => loaded.has(module));
        if (!isLoaded) return { name, state: 'not-loaded' };
        return {
          name,
          state: 'not-applied',
          reason:
            `${name} was loaded but never patched: start the app with --import @gantry/telemetry/register ` +
            `(ESM needs the loader hook), or make sure ${name} is not imported before telemetry starts`,
        };
      });
    },
    disable() {
      for (const instrumentation of instances.values()) instrumentation.disable();
    },
  };
}
