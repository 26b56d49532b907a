// The agent against the app built from the real packages (real-app.ts): @gantry/telemetry's /q/metrics (identity
// labels on every series, `__unmatched__`, OpenMetrics when asked, target_info), @gantry/health's MicroProfile
// probes, /q/info and graceful shutdown, @gantry/migrations' `schema` section from a real database, and
// @gantry/flags' `flags` section. Healthy, failing, slow, flapping, crash-looping, failed-migration and terminating
// versions, each judged by the gates a rollout controller would ask.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { createMigrator } from '@gantry/migrations';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseExposition } from '../src/exposition.ts';
import { totalsFromExposition } from '../src/totals.ts';
import { drive, type Behaviour } from './app.ts';
import { startPodWith, type JsonBody, type Pod } from './helpers.ts';
import { startRealApp, type RealApp, type RealAppOptions } from './real-app.ts';

const pods: Pod<RealApp>[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((pod) => pod.close()));
});

async function pod(
  behaviour: Partial<Behaviour> = {},
  options: Parameters<typeof startPodWith>[2] = {},
  appOptions: RealAppOptions = {},
): Promise<Pod<RealApp>> {
  const created = await startPodWith((initial) => startRealApp(initial, appOptions), behaviour, options);
  pods.push(created);
  return created;
}

describe('slo gate against the real packages', () => {
  it('counts exactly the API requests: its own probe, info and metrics scrapes are not traffic', async () => {
    const { agent, app, call } = await pod();
    await call('/gate/v1/analysis?gate=slo&runId=real-1');
    // Several cycles first: each one reads /q/health/live, /q/health/ready, /q/info and /q/metrics.
    for (let index = 0; index < 3; index += 1) await agent.cycle();
    await drive(app.url, 40);
    for (let index = 0; index < 3; index += 1) await agent.cycle();
    const pending = (await call('/gate/v1/analysis?gate=slo&runId=real-1')).body;
    expect(pending).toMatchObject({ verdict: 'pending', reasonCode: 'INSUFFICIENT_DATA' });
    expect(pending.evidence.samples).toBe(40);
    await drive(app.url, 110);
    await agent.cycle();
    const passed = (await call('/gate/v1/analysis?gate=slo&runId=real-1')).body;
    expect(passed).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
    expect(passed.evidence.samples).toBe(150);
    expect(passed.metrics.errorRate).toBe(0);
  });

  it('fails a version with a 10% error rate after two cycles', async () => {
    const { agent, app, call } = await pod({ errorRate: 0.1 });
    await call('/gate/v1/analysis?gate=slo&runId=real-2');
    await drive(app.url, 200);
    await agent.cycle();
    expect((await call('/gate/v1/analysis?gate=slo&runId=real-2')).body).toMatchObject({
      verdict: 'pending',
      reasonCode: 'SLO_ERROR_RATE',
    });
    await drive(app.url, 50);
    await agent.cycle();
    const failed = (await call('/gate/v1/analysis?gate=slo&runId=real-2')).body;
    expect(failed).toMatchObject({ verdict: 'fail', reasonCode: 'SLO_ERROR_RATE' });
    expect(failed.metrics.errorRate).toBeGreaterThan(0.05);
  });

  it('fails a slow version on its p99 from the real histogram', async () => {
    const { agent, app, call } = await pod(
      { delayMs: 300 },
      { policy: { slo: { minSamples: 60, maxLatencyMs: 250 }, failAfter: 1 } },
    );
    await call('/gate/v1/analysis?gate=slo&runId=real-3');
    await drive(app.url, 80, 20);
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=slo&runId=real-3');
    expect(body).toMatchObject({ verdict: 'fail', reasonCode: 'SLO_LATENCY' });
    expect(body.metrics.p99Ms).toBeGreaterThan(250);
  });

  it('counts requests to unknown paths (one `__unmatched__` series) as traffic, not as errors', async () => {
    const { agent, app, call } = await pod({}, { policy: { slo: { minSamples: 50 } } });
    await call('/gate/v1/analysis?gate=slo&runId=real-4');
    await Promise.all(Array.from({ length: 30 }, (_, index) => fetch(`${app.url}/scanner/${index}`)));
    await drive(app.url, 30);
    await agent.cycle();
    const text = await (await fetch(`${app.url}/q/metrics`)).text();
    const unmatched = parseExposition(text, (name) => name === 'http_server_request_duration_seconds_count').filter(
      (sample) => sample.labels['http_route'] === '__unmatched__',
    );
    expect(unmatched).toHaveLength(1);
    expect(unmatched[0]!.labels).toMatchObject({ http_response_status_code: '404', service: 'orders' });
    const { body } = await call('/gate/v1/analysis?gate=slo&runId=real-4');
    expect(body).toMatchObject({ verdict: 'pass', evidence: { samples: 60 } });
    expect(body.metrics.errorRate).toBe(0);
  });
});

describe("telemetry's /q/metrics as the agent reads it", () => {
  it('gives the same totals in OpenMetrics (with exemplars) as in the text format, identity on every series', async () => {
    const { app } = await pod({ errorRate: 0.2 });
    await drive(app.url, 60);
    const [text, openMetrics] = await Promise.all([
      fetch(`${app.url}/q/metrics`).then((response) => response.text()),
      fetch(`${app.url}/q/metrics`, {
        headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
      }).then(async (response) => {
        expect(response.headers.get('content-type')).toContain('application/openmetrics-text');
        return response.text();
      }),
    ]);
    expect(openMetrics).toMatch(/http_server_request_duration_seconds_bucket\{[^}]*\} \d+ # \{trace_id="[0-9a-f]{32}"/);
    expect(openMetrics.trimEnd().endsWith('# EOF')).toBe(true);
    const plain = totalsFromExposition(text);
    expect(plain.requests).toBe(60);
    expect(plain.errors).toBeGreaterThan(0);
    expect(totalsFromExposition(openMetrics)).toEqual(plain);
    expect(plain.bounds).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    const samples = parseExposition(text);
    expect(samples.find((sample) => sample.name === 'target_info')?.labels).toMatchObject({
      service_name: 'orders',
      service_version: '1.0.0',
    });
    // Every series carries the identity, except that prom-client's nodejs_version_info keeps its own `version`.
    for (const sample of samples) {
      if (sample.name === 'nodejs_version_info') expect(sample.labels).toMatchObject({ version: process.version });
      else expect(sample.labels).toMatchObject({ service: 'orders', version: '1.0.0' });
    }
  });
});

describe('probes, /q/info and restarts', () => {
  it("reads identity from health's /q/info and the flags section from @gantry/flags", async () => {
    const { agent, call } = await pod(
      { version: '1.8.0' },
      { identity: { pod: 'orders-6f99-x7k2p', podTemplateHash: '6f9989bdd5' } },
    );
    await agent.cycle();
    const version = (await call('/version', { token: null })).body;
    expect(version).toMatchObject({ service: 'orders', version: '1.8.0', commit: 'abc1234' });
    expect(version.flagsHash).toMatch(/^[0-9a-f]+$/);
    expect(Date.parse(version.startedAt)).toBeLessThanOrEqual(Date.now());
    expect(version.schema).toMatchObject({ current: '1.2.0', appSupports: { min: '1.1.0', max: '1.2.0' } });
    expect((await call('/readyz', { token: null })).status).toBe(200);
  });

  it('recommends rollback after five failed health cycles and names the DOWN check', async () => {
    const { agent, app, call } = await pod();
    await agent.cycle();
    await app.set({ down: true });
    for (let index = 0; index < 4; index += 1) await agent.cycle();
    expect((await call('/gate/v1/analysis?gate=rollback')).body.verdict).toBe('pass');
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=rollback');
    expect(body).toMatchObject({ verdict: 'fail', reasonCode: 'HEALTH_FAILING' });
    expect(body.reason).toMatch(/5 consecutive failed health checks \(HTTP 503 \(db DOWN\)\)/);
    expect((await call('/health', { token: null })).status).toBe(503);
  });

  it('detects a flapping readiness probe', async () => {
    const { agent, app, call } = await pod();
    for (let index = 0; index < 8; index += 1) {
      await app.set({ down: index % 2 === 1 });
      await agent.cycle();
    }
    const { body } = await call('/gate/v1/analysis?gate=rollback');
    expect(body.verdict).toBe('fail');
    expect(body.reason).toMatch(/readiness flapped \d+ times/);
  });

  it('counts real process restarts as a crash loop', async () => {
    // Two restarts instead of the default three: each one is a new process (a few seconds on a busy machine).
    const { agent, app, call } = await pod({}, { policy: { triggers: { restarts: 2 } } });
    await drive(app.url, 10);
    await agent.cycle();
    for (let index = 0; index < 2; index += 1) {
      await app.restart();
      await agent.cycle();
    }
    const { body } = await call('/gate/v1/analysis?gate=rollback');
    expect(body).toMatchObject({ verdict: 'fail', reasonCode: 'CRASHLOOP' });
    expect(body.reason).toMatch(/restarted 2 times/);
  });
});

describe('a failed migration in the real schema section', () => {
  const folders: string[] = [];
  afterAll(() => {
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  it('fails the schema gate and recommends rollback once @gantry/migrations records the failure', async () => {
    const database = await createDatabase(server('postgres'), 'agent_real_app');
    const directory = mkdtempSync(join(tmpdir(), 'gantry-agent-migrations-'));
    folders.push(directory);
    writeFileSync(
      join(directory, 'V1__orders.sql'),
      '-- gantry:phase expand\nCREATE TABLE orders (id bigint PRIMARY KEY);\n',
    );
    writeFileSync(
      join(directory, 'V2__order_totals.sql'),
      '-- gantry:phase expand\nALTER TABLE order_lines ADD COLUMN total numeric;\n',
    );
    const migrator = createMigrator({ directory, connectionString: database.url });
    await migrator.migrate({ target: '1' });
    const { agent, app, call } = await pod(
      {},
      {},
      { database: { url: database.url, directory, supports: { min: '1', max: '2' } } },
    );
    await agent.cycle();
    expect((await call('/gate/v1/analysis?gate=schema')).body).toMatchObject({ verdict: 'pass' });
    expect((await call('/version', { token: null })).body.schema).toMatchObject({
      current: '1',
      pending: 1,
      failed: [],
      appSupports: { min: '1', max: '2' },
    });

    await expect(migrator.migrate()).rejects.toMatchObject({ code: 'GANTRY_MIGRATIONS_MIGRATION_FAILED' });
    await app.refreshSchema();
    await agent.cycle();
    const schema = (await call('/gate/v1/analysis?gate=schema')).body;
    expect(schema).toMatchObject({ verdict: 'fail', reasonCode: 'MIGRATION_FAILED' });
    expect(schema.reason).toContain('2');
    const rollback = (await call('/gate/v1/analysis?gate=rollback')).body;
    expect(rollback).toMatchObject({ verdict: 'fail', reasonCode: 'MIGRATION_FAILED' });
    expect(rollback.reason).toContain('order totals');
  });
});

describe("health's graceful shutdown in the agent's view", () => {
  it('sees readiness go DOWN with the shutdown entry while liveness stays UP, then the app gone', async () => {
    const events: JsonBody[] = [];
    const receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        events.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        response.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const { agent, app, call } = await pod(
        {},
        {
          events: {
            url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`,
            retryMinMs: 20,
            heartbeatMs: '1h',
          },
        },
        { shutdown: { delayMs: 3_000, drainTimeoutMs: 1_000 } },
      );
      await agent.cycle();
      expect((await call('/readyz', { token: null })).status).toBe(200);
      const exited = app.terminate('SIGTERM');
      // During the load-balancer delay: readiness DOWN (health's `shutdown` entry), liveness UP.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await agent.cycle();
      const health = (await call('/health', { token: null })).body;
      expect(health.checks['app:liveness'][0].observedValue).toBe('UP');
      expect(health.checks['app:readiness'][0].observedValue).toBe('DOWN');
      expect((await call('/readyz', { token: null })).status).toBe(503);
      // The shutdown runs to its end: delay, drain, fastify.close(), telemetry's flush, then a clean exit.
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(app.stderr()).toContain('"event":"health.shutdown.completed"');
      await agent.cycle();
      const gone = (await call('/health', { token: null })).body;
      expect(gone.checks['app:readiness'][0].observedValue).toBe('UNREACHABLE');
      await agent.close();
      const changes = events
        .filter((event) => event.type === 'dev.gantry.health.changed')
        .map((event) => `${event.data.probe} ${event.data.from}→${event.data.to} ${event.data.detail ?? ''}`);
      expect(changes).toEqual([
        'ready UP→DOWN HTTP 503 (shutdown DOWN)',
        expect.stringMatching(/^live UP→UNREACHABLE /),
        expect.stringMatching(/^ready DOWN→UNREACHABLE /),
      ]);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
