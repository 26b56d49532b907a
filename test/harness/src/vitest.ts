// Test-side access to the shared servers that the global setup started.
import { inject } from 'vitest';
import type { KafkaInfo } from './kafka.ts';
import type { PostgresInfo } from './postgres.ts';
import type { PrometheusInfo } from './prometheus.ts';
import type { HarnessInfo, ServerName } from './servers.ts';
import type { UnleashInfo } from './unleash.ts';
import './global-setup.ts';

interface ServerInfo {
  postgres: PostgresInfo;
  unleash: UnleashInfo;
  kafka: KafkaInfo;
  prometheus: PrometheusInfo;
}

/** Connection details of every shared server of this run. */
export function harness(): HarnessInfo {
  const info = inject('harness') as HarnessInfo | undefined;
  if (info === undefined) {
    throw new Error(
      'The Gantry test harness did not run: use the root vitest.config.ts (its globalSetup starts the servers).',
    );
  }
  return info;
}

/**
 * Connection details of one shared server.
 * @throws Error saying how to enable the server when this run did not start it.
 * @example
 * const pg = server('postgres');
 * const pool = new pg.Pool({ ...pg });
 */
export function server<N extends ServerName>(name: N): ServerInfo[N] {
  const info = harness()[name] as ServerInfo[N] | undefined;
  if (info === undefined) {
    throw new Error(
      `This test needs the shared ${name} server, which this run did not start ` +
        `(GANTRY_TEST_SERVERS=${process.env['GANTRY_TEST_SERVERS'] ?? ''}); add "${name}" or unset it.`,
    );
  }
  return info;
}
