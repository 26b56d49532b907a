// @gantry/telemetry against bare fastify and the usual hand-wired stack, side by side in one run.
// HTTP: hello-world fastify under autocannon, each server variant in its own child process (instrumentation must
// load before fastify), spans batched to a local OTLP sink in this process. Logger: raw pino vs our logger writing
// the same line to /dev/null, in this process. Rounds alternate the order of the variants; the best round counts.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { createLogger } from '@gantry/telemetry';
import { publishReport, type BenchRow } from './report.ts';

const VARIANTS = [
  { id: 'bare', label: 'bare fastify' },
  { id: 'gantry', label: 'Gantry full (traces 100% + metrics + request logs)' },
  { id: 'usual', label: 'usual stack (auto-instr + @fastify/otel + fastify-metrics + pino-http)' },
  { id: 'gantry-spans', label: 'spans only: Gantry hooks' },
  { id: 'fastify-otel-spans', label: 'spans only: @fastify/otel on the same SDK' },
] as const;
type VariantId = (typeof VARIANTS)[number]['id'];
const ROUNDS = 3;
const WARMUP_SECONDS = 2;
const MEASURE_SECONDS = 5;
const CONNECTIONS = 50;
// Pipelining keeps the load generator cheap per request, so the server's own cost decides (as in fastify's and
// Platformatic's published runs).
const PIPELINING = 10;
const LOG_LINES = 100_000;
const LOG_ROUNDS = 5;

// --- OTLP sink: accepts and counts export requests ------------------------------------------------------------
let sinkRequests = 0;
let sinkBytes = 0;
const sink = createServer((request, response) => {
  sinkRequests += 1;
  request.on('data', (chunk: Buffer) => (sinkBytes += chunk.length));
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/x-protobuf' });
    response.end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;

async function startServer(variant: VariantId): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'telemetry-server.ts'), variant, sinkUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, OTEL_LOG_LEVEL: 'none' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${variant} did not start: ${output}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /READY (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`${variant} exited with ${code}: ${output}`)));
  });
  return { child, port };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

// CPU seconds (user + system) a process used so far, from /proc (Linux clock ticks are 1/100 s).
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface HttpResult {
  /** Requests per CPU second of the server process: its capacity, robust to a busy machine. */
  requestsPerCpuSecond: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  exports: number;
  exportKiB: number;
}

async function measure(variant: VariantId): Promise<HttpResult> {
  const { child, port } = await startServer(variant);
  try {
    const url = `http://127.0.0.1:${port}/`;
    await autocannon({ url, connections: CONNECTIONS, pipelining: PIPELINING, duration: WARMUP_SECONDS });
    const requestsBefore = sinkRequests;
    const bytesBefore = sinkBytes;
    const cpuBefore = cpuSeconds(child.pid!);
    const result = await autocannon({
      url,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      duration: MEASURE_SECONDS,
    });
    const cpu = cpuSeconds(child.pid!) - cpuBefore;
    return {
      requestsPerCpuSecond: result.requests.total / cpu,
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.non2xx,
      exports: sinkRequests - requestsBefore,
      exportKiB: (sinkBytes - bytesBefore) / 1024,
    };
  } finally {
    await stopServer(child);
  }
}

const best = new Map<VariantId, HttpResult>();
for (let round = 0; round < ROUNDS; round += 1) {
  const order = round % 2 === 0 ? [...VARIANTS] : [...VARIANTS].reverse();
  for (const variant of order) {
    const result = await measure(variant.id);
    process.stdout.write(
      `  round ${round + 1} ${variant.id}: ${result.requestsPerSecond.toFixed(0)} req/s, ` +
        `${result.requestsPerCpuSecond.toFixed(0)} req/CPU-s\n`,
    );
    const previous = best.get(variant.id);
    if (previous === undefined || result.requestsPerCpuSecond > previous.requestsPerCpuSecond)
      best.set(variant.id, result);
  }
}
sink.close();

// --- logger micro-benchmark --------------------------------------------------------------------------------------
const identity = { name: 'bench', version: '1.0.0', environment: 'bench', instanceId: 'bench-1' };
const raw = pino(
  { base: { service: 'bench', version: '1.0.0', environment: 'bench', instance: 'bench-1' } },
  pino.destination({ dest: '/dev/null', sync: true }),
);
const ours = createLogger(identity, { destination: '/dev/null' });
function logRate(logger: { info(obj: object, msg: string): void }): number {
  const begin = performance.now();
  for (let index = 0; index < LOG_LINES; index += 1) {
    logger.info({ event: 'orders.created', order_id: index, customer: 'ann', items: 3 }, 'order created');
  }
  return LOG_LINES / ((performance.now() - begin) / 1000);
}
let rawBest = 0;
let oursBest = 0;
for (let round = 0; round < LOG_ROUNDS; round += 1) {
  rawBest = Math.max(rawBest, logRate(raw));
  oursBest = Math.max(oursBest, logRate(ours));
}

const bare = best.get('bare')!;
const usual = best.get('usual')!;
const gantry = best.get('gantry')!;
const rows: BenchRow[] = VARIANTS.map((variant) => {
  const result = best.get(variant.id)!;
  return {
    variant: variant.label,
    'req/CPU-s': Math.round(result.requestsPerCpuSecond),
    '× bare': result.requestsPerCpuSecond / bare.requestsPerCpuSecond,
    '× usual': result.requestsPerCpuSecond / usual.requestsPerCpuSecond,
    'req/s': Math.round(result.requestsPerSecond),
    'p50 ms': result.p50,
    'p99 ms': result.p99,
    'OTLP exports': result.exports,
    'OTLP KiB': Math.round(result.exportKiB),
    errors: result.errors,
  };
});
// Ratios of capacity (requests per CPU second of the server): on an idle machine a saturated single-threaded
// server's req/s is this figure; on a shared one req/s mostly measures the neighbours.
const gantryVsBare = gantry.requestsPerCpuSecond / bare.requestsPerCpuSecond;
const gantryVsUsual = gantry.requestsPerCpuSecond / usual.requestsPerCpuSecond;
const loggerRatio = oursBest / rawBest;
publishReport({
  name: 'telemetry',
  description: 'hello-world fastify under autocannon; logger lines/s to /dev/null',
  environment: {
    node: process.versions.node,
    cpus: `${availableParallelism()}× ${cpus()[0]?.model.trim() ?? '?'}`,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    seconds: MEASURE_SECONDS,
    rounds: `${ROUNDS} (best)`,
  },
  tables: [
    { title: 'HTTP throughput (ratios from req per server CPU second; req/s as observed)', rows },
    {
      title: 'Logger (one object + message per line, best of rounds)',
      rows: [
        { logger: 'raw pino', 'lines/s': Math.round(rawBest), '× raw pino': 1 },
        {
          logger: 'Gantry logger (mixin, redaction, identity)',
          'lines/s': Math.round(oursBest),
          '× raw pino': loggerRatio,
        },
      ],
    },
  ],
  targets: [
    { target: 'Gantry full ≥ 0.6× bare', measured: `${gantryVsBare.toFixed(2)}×`, met: gantryVsBare >= 0.6 },
    { target: 'Gantry full ≥ 2× usual stack', measured: `${gantryVsUsual.toFixed(2)}×`, met: gantryVsUsual >= 2 },
    { target: 'Gantry logger ≥ 0.9× raw pino', measured: `${loggerRatio.toFixed(2)}×`, met: loggerRatio >= 0.9 },
  ],
});
const failedVariants = [...best.values()].filter((result) => result.errors > 0);
if (failedVariants.length > 0) {
  process.stderr.write('some variants answered with errors: the figures are not comparable\n');
  process.exitCode = 1;
}
if (gantry.exports === 0 || usual.exports === 0) {
  process.stderr.write('a traced variant exported nothing to the sink: the comparison is not fair\n');
  process.exitCode = 1;
}
