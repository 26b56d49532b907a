// The real Prometheus scrapes /q/metrics (OpenMetrics negotiated), PromQL over our histogram returns the traffic we
// sent, the alert rules load and evaluate cleanly, and every dashboard expression parses in the real Prometheus.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { addScrapeTarget, queryPrometheus, reloadPrometheus, waitForQuery } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { initTelemetry, type Telemetry } from '../src/telemetry.ts';

const PACKAGE = join(import.meta.dirname, '..');
const SERVICE = `prom-test-${process.pid}`;
const COUNT = `http_server_request_duration_seconds_count{service="${SERVICE}", http_route="/work/:id"}`;
const REQUESTS_PER_SECOND = 10;
const TRAFFIC_SECONDS = 9;

let telemetry: Telemetry;
let app: FastifyInstance;
let removeTarget: () => void;
let sent = 0;
let failed = 0;
/** Unix seconds when the last response arrived: rate windows end there, not when the query happens to run. */
let trafficEnd = 0;

beforeAll(async () => {
  const prometheus = server('prometheus');
  telemetry = initTelemetry({
    serviceName: SERVICE,
    serviceVersion: '2.0.0',
    tracing: false,
    logger: { level: 'silent' },
    metrics: { registry: new Registry() },
  });
  app = Fastify();
  await app.register(fastifyTelemetry, { telemetry });
  app.get('/work/:id', async (request, reply) => {
    await sleep(30);
    if (Number((request.params as { id: string }).id) % 5 === 0) return reply.code(500).send({ error: 'failed' });
    return { ok: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  removeTarget = addScrapeTarget(prometheus, {
    address: `127.0.0.1:${port}`,
    metricsPath: '/q/metrics',
    labels: { job: 'gantry-telemetry-test' },
  });
  await waitForQuery(prometheus, `up{job="gantry-telemetry-test"} == 1`, undefined, 30_000);
  // Steady traffic: REQUESTS_PER_SECOND for TRAFFIC_SECONDS, every fifth request a 500.
  const base = `http://127.0.0.1:${port}`;
  const begin = Date.now();
  const responses: Promise<unknown>[] = [];
  while (Date.now() - begin < TRAFFIC_SECONDS * 1000) {
    const due = begin + (sent * 1000) / REQUESTS_PER_SECOND;
    if (Date.now() < due) await sleep(due - Date.now());
    sent += 1;
    const id = sent;
    if (id % 5 === 0) failed += 1;
    responses.push(fetch(`${base}/work/${id}`).then((response) => response.arrayBuffer()));
  }
  await Promise.all(responses);
  trafficEnd = Date.now() / 1000;
  // Scraped every second: wait for the scrape that has every request (a busy machine may skip a few).
  await waitForQuery(prometheus, `sum(max_over_time(${COUNT}[5m]))`, (samples) => samples[0]?.value === sent, 30_000);
}, 120_000);

afterAll(async () => {
  removeTarget?.();
  await app?.close();
  await telemetry?.shutdown();
});

describe('Prometheus scraping /q/metrics', () => {
  it('sees the request rate, the error ratio and the latency we produced', async () => {
    const prometheus = server('prometheus');
    const total = await queryPrometheus(prometheus, `sum(max_over_time(${COUNT}[5m]))`);
    expect(total[0]?.value).toBe(sent);
    const errors = await queryPrometheus(
      prometheus,
      `sum(max_over_time(http_server_request_duration_seconds_count{service="${SERVICE}", http_response_status_code="500"}[5m]))`,
    );
    expect(errors[0]?.value).toBe(failed);
    // rate() over the traffic window (ending when the traffic ended), against the rate we sent.
    const window = `${TRAFFIC_SECONDS - 2}s`;
    const at = `@ ${trafficEnd.toFixed(3)}`;
    const rate = await queryPrometheus(prometheus, `sum(rate(${COUNT}[${window}] ${at}))`);
    expect(rate[0]?.value).toBeGreaterThan(REQUESTS_PER_SECOND * 0.6);
    expect(rate[0]?.value).toBeLessThan(REQUESTS_PER_SECOND * 1.4);
    const ratio = await queryPrometheus(
      prometheus,
      `sum(rate(http_server_request_duration_seconds_count{service="${SERVICE}", http_response_status_code=~"5.."}[${window}] ${at}))` +
        ` / sum(rate(${COUNT}[${window}] ${at}))`,
    );
    expect(ratio[0]?.value).toBeGreaterThan(0.12);
    expect(ratio[0]?.value).toBeLessThan(0.28);
    // The handler sleeps 30 ms: the median lands in the 25–50 ms bucket (seconds, OTel buckets). Windows of 5 m
    // hold the whole traffic even when a busy machine delays these queries.
    const p50 = await queryPrometheus(
      prometheus,
      `histogram_quantile(0.5, sum by (le) (rate(http_server_request_duration_seconds_bucket{service="${SERVICE}"}[5m])))`,
    );
    expect(p50[0]?.value).toBeGreaterThanOrEqual(0.025);
    expect(p50[0]?.value).toBeLessThanOrEqual(0.1);
    // Probes and the metrics route itself are not recorded; the identity is on target_info.
    expect(
      await queryPrometheus(
        prometheus,
        `http_server_request_duration_seconds_count{service="${SERVICE}", http_route="/q/metrics"}`,
      ),
    ).toEqual([]);
    const info = await queryPrometheus(prometheus, `target_info{service_name="${SERVICE}"}`);
    expect(info[0]?.metric['service_version']).toBe('2.0.0');
  });

  it('loads the alert rules, which evaluate without error against our metrics', async () => {
    const prometheus = server('prometheus');
    const rules = readdirSync(join(PACKAGE, 'alerts')).filter((file) => file.endsWith('.yml'));
    expect(rules.length).toBeGreaterThan(0);
    const copied = rules.map((file) => {
      const target = join(prometheus.rulesDirectory, `gantry-telemetry-test-${file}`);
      copyFileSync(join(PACKAGE, 'alerts', file), target);
      return target;
    });
    try {
      await reloadPrometheus(prometheus);
      const deadline = Date.now() + 20_000;
      let ours: { name: string; health: string; lastError?: string; lastEvaluation: string }[] = [];
      while (Date.now() < deadline) {
        const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as {
          data: {
            groups: {
              name: string;
              file: string;
              rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
            }[];
          };
        };
        ours = body.data.groups
          .filter((group) => group.file.includes('gantry-telemetry-test-'))
          .flatMap((group) => group.rules);
        if (
          ours.length > 0 &&
          ours.every((rule) => rule.health !== 'unknown' && !rule.lastEvaluation.startsWith('0001'))
        )
          break;
        await sleep(250);
      }
      expect(ours.map((rule) => rule.name)).toEqual(
        expect.arrayContaining([
          'GantryHttpErrorRateHigh',
          'GantryHttpErrorRateCritical',
          'GantryHttpLatencyHigh',
          'GantryProcessRestarting',
        ]),
      );
      expect(ours.filter((rule) => rule.health !== 'ok')).toEqual([]);
      // The recording rule sees the 20% error ratio of our traffic.
      const recorded = await waitForQuery(prometheus, `service:http_server_error_ratio:rate5m{service="${SERVICE}"}`);
      expect(recorded[0]?.value).toBeGreaterThan(0.1);
      expect(recorded[0]?.value).toBeLessThan(0.3);
    } finally {
      for (const file of copied) rmSync(file, { force: true });
      await reloadPrometheus(prometheus);
    }
  });

  it('has dashboards whose every PromQL expression the real Prometheus accepts', async () => {
    const prometheus = server('prometheus');
    const files = readdirSync(join(PACKAGE, 'dashboards')).filter((file) => file.endsWith('.json'));
    expect(files.sort()).toEqual(['gantry-http-red.json', 'gantry-process.json']);
    let checked = 0;
    for (const file of files) {
      const dashboard = JSON.parse(readFileSync(join(PACKAGE, 'dashboards', file), 'utf8')) as {
        uid: string;
        title: string;
        panels: { title: string; targets: { expr: string }[] }[];
        templating: { list: { name: string; query: string | { query: string } }[] };
      };
      expect(dashboard.uid).toMatch(/^gantry-/);
      const expressions = [
        ...dashboard.panels.flatMap((panel) =>
          panel.targets.map((target) => ({ where: panel.title, expr: target.expr })),
        ),
      ];
      for (const { where, expr } of expressions) {
        const promql = expr
          .replaceAll('$__rate_interval', '1m')
          .replaceAll('$__range', '5m')
          .replaceAll('$service', SERVICE)
          .replaceAll('$route', '.*');
        expect(promql, `${file} / ${where}`).not.toContain('$');
        // queryPrometheus throws with Prometheus's error on a parse or evaluation error.
        await queryPrometheus(prometheus, promql);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(16);
    const perRoute = await queryPrometheus(
      prometheus,
      `sum by (http_route) (rate(http_server_request_duration_seconds_count{service="${SERVICE}", http_route=~".*"}[5m]))`,
    );
    expect(perRoute.map((sample) => sample.metric['http_route'])).toEqual(['/work/:id']);
  });

  it('passes promtool check rules', () => {
    const which = spawnSync('bash', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    const promtool = which.stdout.trim();
    if (promtool === '') {
      throw new Error("promtool is missing: it ships with Debian's prometheus package (apt-get install prometheus)");
    }
    const files = readdirSync(join(PACKAGE, 'alerts')).map((file) => join(PACKAGE, 'alerts', file));
    const result = spawnSync(promtool, ['check', 'rules', ...files], { encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`).toContain('SUCCESS');
    expect(result.status, result.stderr).toBe(0);
  });
});
