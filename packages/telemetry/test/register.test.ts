// The ESM-safe preload: a .ts app run by Node directly with --import @gantry/telemetry/register gets pg and kafkajs
// spans exported; an app that imports pg before telemetry starts is told so, loudly.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { postgresUrl } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.ts';

const run = promisify(execFile);
const PACKAGE = join(import.meta.dirname, '..');
let receiver: OtlpReceiver | undefined;

afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GANTRY_TELEMETRY_LOG_LEVEL: 'warn', ...extra };
  delete env['NODE_OPTIONS'];
  delete env['VITEST'];
  return env;
}

describe('--import @gantry/telemetry/register', () => {
  it('instruments pg and kafkajs in a TypeScript ESM app and exports their spans', async () => {
    receiver = await startOtlpReceiver();
    const postgres = server('postgres');
    const kafka = server('kafka');
    const topic = `gantry-telemetry-register-${process.pid}`;
    const { stdout } = await run(
      process.execPath,
      ['--import', '@gantry/telemetry/register', 'test/fixtures/instrumented-app.ts'],
      {
        cwd: PACKAGE,
        timeout: 60_000,
        env: baseEnv({
          DATABASE_URL: postgresUrl(postgres),
          KAFKA_BROKERS: kafka.brokers.join(','),
          KAFKA_TOPIC: topic,
          OTEL_SERVICE_NAME: 'register-fixture',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
          OTEL_BSP_SCHEDULE_DELAY: '100',
        }),
      },
    );
    const status = JSON.parse(/^STATUS (.*)$/m.exec(stdout)![1]!) as { name: string; state: string }[];
    expect(status).toEqual([
      { name: 'http', state: 'applied' },
      { name: 'pg', state: 'applied' },
      { name: 'kafkajs', state: 'applied' },
    ]);
    expect(JSON.parse(/^SHUTDOWN (.*)$/m.exec(stdout)![1]!)).toMatchObject({ ok: true });
    const spans = receiver.spans;
    const work = spans.find((span) => span.name === 'fixture.work');
    expect(work, JSON.stringify(spans.map((span) => span.name))).toBeDefined();
    const query = spans.find(
      (span) => span.attributes['db.system.name'] === 'postgresql' || span.attributes['db.system'] === 'postgresql',
    );
    expect(query, JSON.stringify(spans.map((span) => [span.name, span.attributes]))).toBeDefined();
    expect(query!.traceId).toBe(work!.traceId);
    expect(query!.parentSpanId).toBe(work!.spanId);
    const send = spans.find((span) => span.scope.includes('kafkajs') && span.name.includes(topic));
    expect(send, JSON.stringify(spans.map((span) => [span.name, span.scope]))).toBeDefined();
    expect(send!.traceId).toBe(work!.traceId);
    expect(work!.resource['service.name']).toBe('register-fixture');
  }, 90_000);

  it('says loudly when pg was imported before telemetry started', async () => {
    const { stdout, stderr } = await run(process.execPath, ['test/fixtures/late-init-app.ts'], {
      cwd: PACKAGE,
      timeout: 30_000,
      env: baseEnv({ OTEL_TRACES_EXPORTER: 'none' }),
    });
    const status = JSON.parse(/^STATUS (.*)$/m.exec(stdout)![1]!) as { name: string; state: string; reason?: string }[];
    expect(status.find((item) => item.name === 'pg')).toMatchObject({ state: 'not-applied' });
    expect(stdout).toMatch(/"event":"telemetry.instrumentation.missing".*"instrumentation":"pg"/);
    expect(stderr).toContain('GANTRY_TELEMETRY_INSTRUMENTATION_NOT_APPLIED');
    expect(stderr).toContain('pg instrumentation did NOT apply');
    expect(/^METRIC (.*)$/m.exec(stdout)![1]).toMatch(/ 0$/);
  }, 60_000);

  it('never stops the app when the environment is invalid, and says why on stderr', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', '@gantry/telemetry/register', '-e', 'console.log("app ran")'],
      { cwd: PACKAGE, timeout: 30_000, env: baseEnv({ OTEL_TRACES_SAMPLER: 'xray' }) },
    );
    expect(stdout).toContain('app ran');
    expect(stderr).toContain('[@gantry/telemetry] NOT STARTED');
    expect(stderr).toContain('OTEL_TRACES_SAMPLER');
  }, 60_000);
});
