// Benchmark of the gantry-agent sidecar, run as users run it: the CLI in its own process, watching a real fastify
// app at a 1 s interval while the app serves traffic. Measures the agent's RSS idle and under 200 gate requests/s,
// the gate latency (p50/p99, client side, keep-alive), and CPU per scrape-and-evaluate cycle (from /proc). The peer
// is what Argo's prometheus provider and Flagger's builtin checks do at every analysis step: an instant PromQL query
// for the error rate against a real Prometheus scraping the same app, at the same request rate.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { addScrapeTarget, createRunDirectory, freePort, startPrometheus, waitForQuery } from '@gantry/test-harness';
import { publishReport, quantile } from './report.ts';

const TOKEN = 'bench-token-0123456789abcdef';
const PACKAGE = join(import.meta.dirname, '..', '..', 'packages', 'agent');
// The shipped artefact: the built CLI with the same Node flags as the Dockerfile's ENTRYPOINT.
const CLI = join(PACKAGE, 'dist', 'cli.js');
const NODE_FLAGS = ['--max-semi-space-size=1', '--lite-mode'];
const TICKS = 100; // clock ticks per second for /proc/<pid>/stat (Linux default)

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime + stime
}

function findPid(fragment: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(fragment)) return Number(entry);
    } catch {
      // process went away
    }
  }
  return undefined;
}

// A light keep-alive client for the load phases (global fetch costs the load generator more CPU, which on a
// shared machine shows up in everyone's latency).
const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 64 });
function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      {
        method: init.method ?? 'GET',
        headers: {
          ...init.headers,
          ...(init.body === undefined ? {} : { 'content-length': Buffer.byteLength(init.body) }),
        },
        agent: keepAlive,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(init.body);
  });
}

/** Open-loop load: `rate` requests per second for `seconds`, latencies in ms. */
async function load(
  rate: number,
  seconds: number,
  request: (index: number) => Promise<void>,
  onTick?: () => void,
): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const started = performance.now();
  const inflight = new Set<Promise<void>>();
  while (performance.now() - started < seconds * 1_000) {
    const due = Math.floor(((performance.now() - started) / 1_000) * rate);
    while (sent < due) {
      const index = sent;
      sent += 1;
      const begin = performance.now();
      const task = request(index)
        .then(() => {
          latencies.push(performance.now() - begin);
        })
        .catch(() => {
          errors += 1;
        })
        .finally(() => inflight.delete(task));
      inflight.add(task);
    }
    onTick?.();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all(inflight);
  return { latencies, errors };
}

/** p-quantile (ms) of the agent's own gate handling time, from its histogram (routes analysis + flagger). */
async function serverQuantile(url: string, q: number): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    const match =
      /^gantry_agent_http_request_duration_seconds_bucket\{le="([^"]+)",route="(analysis|flagger)"\} (\d+)/.exec(line);
    if (match === null) continue;
    const le = match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(match[3]));
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const found = sorted.find(([, count]) => count >= q * total);
  return (found?.[0] ?? Number.NaN) * 1_000;
}

async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((item) => item.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

const build = spawnSync('pnpm', ['--filter', '@gantry/agent', 'run', 'build'], { stdio: 'ignore' });
if (build.status !== 0) throw new Error('building @gantry/agent failed');
const appProcess = spawn(process.execPath, [join(import.meta.dirname, 'agent-app.ts'), '50'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const appUrl = await new Promise<string>((resolve) =>
  appProcess.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim())),
);
const app = { url: appUrl };
const runDirectory = createRunDirectory('bench-agent');
const prometheus = await startPrometheus({ runDirectory, intervalSeconds: 1 });
const removeTarget = addScrapeTarget(prometheus, {
  address: app.url.replace('http://', ''),
  metricsPath: '/q/metrics',
  labels: { app: 'orders' },
});
const port = await freePort();
const agentUrl = `http://127.0.0.1:${port}`;
const child = spawn(
  process.execPath,
  [
    ...NODE_FLAGS,
    CLI,
    '--app-url',
    app.url,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--interval',
    '1s',
    '--warmup',
    '0',
    '--log-level',
    'warn',
  ],
  {
    env: {
      PATH: process.env['PATH'] ?? '',
      GANTRY_AGENT_TOKEN: TOKEN,
      GANTRY_AGENT_POD_NAME: 'orders-bench-1',
      GANTRY_AGENT_POD_TEMPLATE_HASH: 'b3nch',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
const pid = child.pid!;

try {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    try {
      if ((await fetch(`${agentUrl}/readyz`)).ok) break;
    } catch {
      // starting
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await waitForQuery(
    prometheus,
    'sum(http_server_request_duration_seconds_count)',
    (samples) => samples.length > 0,
    30_000,
  );
  await new Promise((resolve) => setTimeout(resolve, 3_000));

  // Phase 1: idle (no gate requests) for 20 s at a 1 s interval: RSS and CPU per cycle.
  const idleSeconds = 20;
  const cyclesBefore = await metricValue(agentUrl, 'gantry_agent_cycle_duration_seconds_count');
  const cpuBefore = cpuSeconds(pid);
  const wallBefore = performance.now();
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1_000));
  const cpuIdle = cpuSeconds(pid) - cpuBefore;
  const wallIdle = (performance.now() - wallBefore) / 1_000;
  const cycles = (await metricValue(agentUrl, 'gantry_agent_cycle_duration_seconds_count')) - cyclesBefore;
  const rssIdle = rssMb(pid);
  const cpuShare = cpuIdle / wallIdle;

  // Phase 2: 200 gate requests/s for 20 s (Argo analysis + Flagger hooks), keep-alive.
  let rssPeak = rssMb(pid);
  let lastRssSample = 0;
  const gateCpuBefore = cpuSeconds(pid);
  const gate = await load(
    200,
    20,
    async (index) => {
      const response =
        index % 3 === 2
          ? await call(`${agentUrl}/gate/v1/flagger/rollout`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                name: 'orders',
                namespace: 'shop',
                phase: 'Progressing',
                checksum: `c${index % 5}`,
                metadata: { token: TOKEN },
              }),
            })
          : await call(
              `${agentUrl}/gate/v1/analysis?gate=${index % 3 === 0 ? 'promotion' : 'slo'}&expectHash=b3nch&runId=bench-${index % 10}`,
              {
                headers: { authorization: `Bearer ${TOKEN}` },
              },
            );
      const body = response.body;
      if (response.status >= 500 || !body.includes('"verdict"')) throw new Error(`bad answer ${response.status}`);
    },
    () => {
      const now = performance.now();
      if (now - lastRssSample >= 250) {
        lastRssSample = now;
        rssPeak = Math.max(rssPeak, rssMb(pid));
      }
    },
  );
  const gateCpu = (cpuSeconds(pid) - gateCpuBefore) / 20;
  const serverP99 = await serverQuantile(agentUrl, 0.99);

  // Peer: the same rate of instant PromQL queries (what a Prometheus-based gate asks at each analysis step).
  const promql = encodeURIComponent(
    'sum(rate(http_server_request_duration_seconds_count{http_response_status_code=~"5.."}[1m])) / sum(rate(http_server_request_duration_seconds_count[1m]))',
  );
  const prometheusPid = findPid(join(runDirectory, 'prometheus', 'prometheus.yml'));
  const peer = await load(200, 20, async () => {
    const response = await call(`${prometheus.url}/api/v1/query?query=${promql}`);
    const body = JSON.parse(response.body) as { status: string };
    if (body.status !== 'success') throw new Error('query failed');
  });
  const prometheusRss = prometheusPid === undefined ? Number.NaN : rssMb(prometheusPid);

  const gateSorted = [...gate.latencies].sort((a, b) => a - b);
  const peerSorted = [...peer.latencies].sort((a, b) => a - b);
  const agentP50 = quantile(gateSorted, 0.5);
  const agentP99 = quantile(gateSorted, 0.99);
  const peerP50 = quantile(peerSorted, 0.5);
  const peerP99 = quantile(peerSorted, 0.99);
  const cpuPerCycleMs = (cpuIdle * 1_000) / Math.max(1, cycles);
  publishReport({
    name: 'agent',
    description:
      'gantry-agent sidecar (CLI process) watching a fastify app at a 1 s interval; peer: instant PromQL query per analysis step',
    environment: {
      node: process.version,
      cpus: (await import('node:os')).cpus().length,
      appTraffic: '50 rps, 1% errors',
      gateLoad: '200 rps for 20 s (⅓ promotion, ⅓ slo, ⅓ Flagger rollout hook)',
    },
    tables: [
      {
        title: 'Gate answers at 200 requests/s (client side, keep-alive)',
        rows: [
          {
            subject: 'gantry-agent /gate/v1/*',
            'p50 ms': agentP50,
            'p99 ms': agentP99,
            requests: gate.latencies.length,
            errors: gate.errors,
            'p99 ratio': 1,
          },
          {
            subject: 'gantry-agent, server side (≤ bucket bound)',
            'p50 ms': Number.NaN,
            'p99 ms': serverP99,
            requests: gate.latencies.length,
            errors: 0,
            'p99 ratio': Number.NaN,
          },
          {
            subject: 'Prometheus instant query (error rate)',
            'p50 ms': peerP50,
            'p99 ms': peerP99,
            requests: peer.latencies.length,
            errors: peer.errors,
            'p99 ratio': peerP99 / agentP99,
          },
        ],
      },
      {
        title: 'Resources of the agent process',
        rows: [
          { measure: 'RSS idle (MB)', value: rssIdle, 'Prometheus RSS (MB)': prometheusRss },
          { measure: 'RSS peak under 200 gate req/s (MB)', value: rssPeak, 'Prometheus RSS (MB)': prometheusRss },
          { measure: 'CPU idle, % of a core (1 s interval)', value: cpuShare * 100, 'Prometheus RSS (MB)': '' },
          { measure: 'CPU per scrape-and-evaluate cycle (ms)', value: cpuPerCycleMs, 'Prometheus RSS (MB)': '' },
          { measure: 'cycles measured', value: cycles, 'Prometheus RSS (MB)': '' },
          { measure: 'CPU under 200 gate req/s, % of a core', value: gateCpu * 100, 'Prometheus RSS (MB)': '' },
        ],
      },
    ],
    targets: [
      { target: 'RSS ≤ 60 MB idle', measured: `${rssIdle.toFixed(1)} MB`, met: rssIdle <= 60 },
      { target: 'RSS ≤ 60 MB under 200 gate req/s', measured: `${rssPeak.toFixed(1)} MB`, met: rssPeak <= 60 },
      { target: 'gate p99 ≤ 5 ms (client side)', measured: `${agentP99.toFixed(2)} ms`, met: agentP99 <= 5 },
      { target: 'gate p99 ≤ 5 ms (agent side)', measured: `≤ ${serverP99} ms`, met: serverP99 <= 5 },
      {
        target: 'scrape-and-evaluate ≤ 2 % of a core at 1 s',
        measured: `${(cpuShare * 100).toFixed(2)} % (${cpuPerCycleMs.toFixed(1)} ms per cycle)`,
        met: cpuShare <= 0.02,
      },
      {
        target: 'gate p99 below a Prometheus query p99',
        measured: `${(agentP99 / peerP99).toFixed(2)}× the query's p99 (${agentP99.toFixed(2)} vs ${peerP99.toFixed(2)} ms)`,
        met: agentP99 < peerP99,
      },
    ],
  });
} finally {
  child.kill('SIGTERM');
  appProcess.kill('SIGTERM');
  await Promise.all([
    new Promise((resolve) => child.once('exit', resolve)),
    new Promise((resolve) => appProcess.once('exit', resolve)),
  ]);
  removeTarget();
  await prometheus.stop();
}
