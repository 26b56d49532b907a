// `node --import @gantry/telemetry/register app.ts`: installs the ESM loader hook (so import-based apps get
// patched too), starts telemetry from the environment, and checks a few seconds later — and again when a fastify
// app becomes ready — that each instrumentation really applied, saying so loudly when one did not.
import { register as registerSyncHooks, supportsSyncHooks } from 'import-in-the-middle/register-hooks.mjs';
import { register as registerAsyncHooks } from 'node:module';
import { TELEMETRY_ERROR_CODES } from './errors.ts';
import { telemetryOptionsFromEnv } from './options.ts';
import { getTelemetry, initTelemetry } from './telemetry.ts';

/** The modules whose ESM form the loader hook intercepts; everything else loads untouched. */
const HOOKED = /\/node_modules\/(pg|pg-pool|kafkajs)\//;
const HOOKED_BUILTINS = new Set(['http', 'https', 'node:http', 'node:https']);
const HOOKED_SPECIFIERS = ['pg', 'pg-pool', 'kafkajs', ...HOOKED_BUILTINS];
const DEFAULT_VERIFY_DELAY_MS = 5_000;

function installLoaderHook(): void {
  if (supportsSyncHooks()) {
    // In-thread hooks (Node ≥ 22.22.3 / 24.11.1): no message channel, nothing to wait for.
    registerSyncHooks({
      shouldInclude: (url: string, specifier: string) => HOOKED_BUILTINS.has(specifier) || HOOKED.test(url),
    } as Parameters<typeof registerSyncHooks>[0]);
    return;
  }
  // Older Node: the loader thread, told up front which modules to intercept (so nothing has to be awaited here).
  registerAsyncHooks('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: HOOKED_SPECIFIERS } });
}

function start(): void {
  if (getTelemetry() !== undefined) return;
  installLoaderHook();
  let telemetry;
  try {
    telemetry = initTelemetry(telemetryOptionsFromEnv());
  } catch (error) {
    // A preload that throws kills the app before it starts; telemetry must never do that. Say why, loudly.
    const message = error instanceof Error ? error.message : String(error);
    process.emitWarning(`@gantry/telemetry/register did not start telemetry: ${message}`, {
      code: TELEMETRY_ERROR_CODES.invalidOption,
    });
    process.stderr.write(`[@gantry/telemetry] NOT STARTED: ${message}\n`);
    return;
  }
  const delay = Number(process.env['GANTRY_TELEMETRY_VERIFY_DELAY_MS'] ?? DEFAULT_VERIFY_DELAY_MS);
  const timer = setTimeout(
    () => {
      const statuses = telemetry.verifyInstrumentation();
      for (const status of statuses) {
        if (status.state === 'not-applied') {
          process.stderr.write(
            `[@gantry/telemetry] INSTRUMENTATION NOT APPLIED: ${status.name}: ${status.reason ?? ''}\n`,
          );
        }
      }
    },
    Number.isFinite(delay) && delay >= 0 ? delay : DEFAULT_VERIFY_DELAY_MS,
  );
  timer.unref();
}

start();
