#!/usr/bin/env node
// Entry point: `node --import @gantry/telemetry/register src/main.ts`. The preload starts telemetry from OTEL_* and
// GANTRY_TELEMETRY_* before pg and kafkajs load, so their spans are recorded; the service is imported afterwards.
import { getTelemetry, initTelemetry, telemetryOptionsFromEnv } from '@gantry/telemetry';
import { ordersConfigFromEnv } from './config.ts';

async function main(): Promise<void> {
  const config = ordersConfigFromEnv();
  const telemetry =
    getTelemetry() ??
    initTelemetry({ serviceName: config.service, serviceVersion: config.version, ...telemetryOptionsFromEnv() });
  if (telemetry.identity.name !== config.service || telemetry.identity.version !== config.version) {
    telemetry.logger.warn(
      {
        event: 'orders.telemetry.identity_mismatch',
        telemetry: telemetry.identity,
        service: config.service,
        version: config.version,
      },
      'telemetry started with another identity: set OTEL_SERVICE_NAME and GANTRY_TELEMETRY_SERVICE_VERSION',
    );
  }
  const { createOrdersService } = await import('./service.ts');
  try {
    await createOrdersService({ config, telemetry });
  } catch (error) {
    telemetry.logger.error({ event: 'orders.start_failed', err: String(error) }, 'orders could not start');
    await telemetry.shutdown({ timeoutMs: 2_000 });
    process.exitCode = 1;
  }
}

await main();
