// @gantry/telemetry against bare fastify and the usual hand-wired stack, side by side in one run.
// HTTP: hello-world fastify under autocannon, each server variant in its own child process (instrumentation must
// load before fastify), spans batched to a local OTLP sink in a third process that counts them. Logger: raw pino
// vs our logger writing the same line to /dev/null, in this process. Rounds alternate the order of the variants.
// On a shared machine whole rounds run fast or slow together (bare fastify itself moved by ±15% between rounds
// here), so each variant is compared with bare and the usual stack of the same round, and the median of those
// per-round ratios counts; the spread is printed beside it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { createLogger } from '@gantry/telemetry';
import { median, publishReport, type BenchRow } from './report.ts';

const VARIANTS = [
  { id: 'bare', label: 'bare fastify' },
  { id: 'gantry', label: 'Gantry full (traces 100% + metrics + request logs)' },
  { id: 'usual', label: 'usual stack (auto-instr + @fastify/otel + fastify-metrics + pino-http)' },
  { id: 'gantry-spans', label: 'spans only: Gantry hooks' },
  { id: 'fastify-otel-spans', label: 'spans only: @fastify/otel on the same SDK' },
] as const;
type VariantId = (typeof VARIANTS)[number]['id'];
const ROUNDS = 5;
const WARMUP_SECONDS = 2;
const MEASURE_SECONDS = 5;
const CONNECTIONS = 50;
// Pipelining keeps the load generator cheap per request, so the server's own cost decides (as in fastify's and
// Platformatic's published runs).
const PIPELINING = 10;
// Every traced variant gets the same batch settings. With the OpenTelemetry defaults (batches of 512, a queue of
// 2048, one export in flight) a saturated event loop answers export responses too late to keep up with 100%
// sampling at ~20k req/s, and a variant that drops spans skips their work: the comparison would flatter it. Larger
// batches keep every variant's export pipe ahead of its span rate; spans/req in the table checks it.
const BATCH_ENV = { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048', OTEL_BSP_MAX_QUEUE_SIZE: '8192' };
const LOG_LINES = 100_000;
const LOG_ROUNDS = 5;

// --- OTLP sink: its own process (telemetry-sink.ts), so it answers exports promptly while autocannon keeps this
// process busy; a sink slowed by the load generator made the servers drop spans that then cost them nothing.
interface SinkStats {
  requests: number;
  bytes: number;
  spans: number;
}
// CPU pinning: the server under test gets the last CPU to itself; this process (autocannon) and the sink share the
// others. Unpinned, the scheduler moved all three across both cores and the load generator's bursts landed on the
// server's core, round by round.
const cpuCount = availableParallelism();
const pinning = cpuPinning();
function cpuPinning(): { server: string[]; rest: string[] } | undefined {
  const count = cpuCount;
  if (count < 2 || process.platform !== 'linux') return undefined;
  if (spawnSync('taskset', ['-p', '-c', `0-${count - 2}`, String(process.pid)], { stdio: 'ignore' }).status !== 0) {
    return undefined;
  }
  return { server: ['taskset', '-c', String(count - 1)], rest: ['taskset', '-c', `0-${count - 2}`] };
}
function pinned(which: 'server' | 'rest', script: string, args: string[]): [string, string[]] {
  const prefix = pinning?.[which];
  return prefix === undefined
    ? [process.execPath, [script, ...args]]
    : [prefix[0]!, [...prefix.slice(1), process.execPath, script, ...args]];
}

const sinkProcess = spawn(...pinned('rest', join(import.meta.dirname, 'telemetry-sink.ts'), []), {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const sinkPort = await new Promise<number>((resolve, reject) => {
  let output = '';
  sinkProcess.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const match = /READY (\d+)/.exec(output);
    if (match) resolve(Number(match[1]));
  });
  sinkProcess.once('exit', (code) => reject(new Error(`the OTLP sink exited with ${code}: ${output}`)));
});
process.once('exit', () => sinkProcess.kill('SIGTERM'));
const sinkUrl = `http://127.0.0.1:${sinkPort}/v1/traces`;
async function sinkStats(): Promise<SinkStats> {
  const response = await fetch(`http://127.0.0.1:${sinkPort}/stats`);
  return (await response.json()) as SinkStats;
}

async function startServer(variant: VariantId): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(...pinned('server', join(import.meta.dirname, 'telemetry-server.ts'), [variant, sinkUrl]), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, OTEL_LOG_LEVEL: 'none', ...BATCH_ENV },
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
  /** Spans the server exported over its whole run (warm-up and the final flush included) per response counted. */
  spansPerRequest: number;
}

async function measure(variant: VariantId): Promise<HttpResult> {
  const before = await sinkStats();
  const { child, port } = await startServer(variant);
  let result: HttpResult;
  let responses = 0;
  try {
    const url = `http://127.0.0.1:${port}/`;
    const warmup = await autocannon({
      url,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      duration: WARMUP_SECONDS,
    });
    responses += warmup.requests.total;
    const measuring = await sinkStats();
    const cpuBefore = cpuSeconds(child.pid!);
    const measured = await autocannon({
      url,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      duration: MEASURE_SECONDS,
    });
    const cpu = cpuSeconds(child.pid!) - cpuBefore;
    const sinkAfter = await sinkStats();
    responses += measured.requests.total;
    result = {
      requestsPerCpuSecond: measured.requests.total / cpu,
      requestsPerSecond: measured.requests.average,
      p50: measured.latency.p50,
      p99: measured.latency.p99,
      errors: measured.errors + measured.non2xx,
      exports: sinkAfter.requests - measuring.requests,
      exportKiB: (sinkAfter.bytes - measuring.bytes) / 1024,
      spansPerRequest: 0,
    };
  } finally {
    // The server flushes its queued spans on SIGTERM before it exits.
    await stopServer(child);
  }
  const after = await sinkStats();
  return { ...result, spansPerRequest: (after.spans - before.spans) / responses };
}

const rounds: Map<VariantId, HttpResult>[] = [];
for (let round = 0; round < ROUNDS; round += 1) {
  const order = round % 2 === 0 ? [...VARIANTS] : [...VARIANTS].reverse();
  const results = new Map<VariantId, HttpResult>();
  for (const variant of order) {
    const result = await measure(variant.id);
    process.stdout.write(
      `  round ${round + 1}/${ROUNDS} ${variant.id}: ${result.requestsPerSecond.toFixed(0)} req/s, ` +
        `${result.requestsPerCpuSecond.toFixed(0)} req/CPU-s\n`,
    );
    results.set(variant.id, result);
  }
  rounds.push(results);
}
sinkProcess.kill('SIGTERM');

/** Per-round ratios of a variant's capacity to a reference variant's in the same round. */
const ratios = (variant: VariantId, reference: VariantId): number[] =>
  rounds.map((round) => round.get(variant)!.requestsPerCpuSecond / round.get(reference)!.requestsPerCpuSecond);
/** A variant's figures over the rounds: medians, and errors summed (any error spoils the comparison). */
const summary = (variant: VariantId): HttpResult => {
  const all = rounds.map((round) => round.get(variant)!);
  const mid = (pick: (result: HttpResult) => number) => median(all.map(pick));
  return {
    requestsPerCpuSecond: mid((result) => result.requestsPerCpuSecond),
    requestsPerSecond: mid((result) => result.requestsPerSecond),
    p50: mid((result) => result.p50),
    p99: mid((result) => result.p99),
    errors: all.reduce((sum, result) => sum + result.errors, 0),
    exports: mid((result) => result.exports),
    exportKiB: mid((result) => result.exportKiB),
    // The fewest spans per request of any round: a round that dropped spans must show.
    spansPerRequest: Math.min(...all.map((result) => result.spansPerRequest)),
  };
};
const summaries = new Map<VariantId, HttpResult>(VARIANTS.map((variant) => [variant.id, summary(variant.id)]));

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

const gantry = summaries.get('gantry')!;
const usual = summaries.get('usual')!;
function spread(values: readonly number[]): string {
  return `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
}
const rows: BenchRow[] = VARIANTS.map((variant) => {
  const result = summaries.get(variant.id)!;
  return {
    variant: variant.label,
    'req/CPU-s': Math.round(result.requestsPerCpuSecond),
    '× bare': median(ratios(variant.id, 'bare')),
    '× bare (range)': spread(ratios(variant.id, 'bare')),
    '× usual': median(ratios(variant.id, 'usual')),
    'req/s': Math.round(result.requestsPerSecond),
    'p50 ms': result.p50,
    'p99 ms': result.p99,
    'OTLP exports': result.exports,
    'OTLP KiB': Math.round(result.exportKiB),
    'spans/req': Math.round(result.spansPerRequest * 100) / 100,
    errors: result.errors,
  };
});
// Ratios of capacity (requests per CPU second of the server): on an idle machine a saturated single-threaded
// server's req/s is this figure; on a shared one req/s mostly measures the neighbours.
const gantryVsBare = median(ratios('gantry', 'bare'));
const gantryVsUsual = median(ratios('gantry', 'usual'));
const loggerRatio = oursBest / rawBest;
publishReport({
  name: 'telemetry',
  description: 'hello-world fastify under autocannon; logger lines/s to /dev/null',
  environment: {
    node: process.versions.node,
    cpus: `${cpuCount}× ${cpus()[0]?.model.trim() ?? '?'}`,
    pinning: pinning === undefined ? 'none' : `server ${pinning.server.at(-1)}, load and sink ${pinning.rest.at(-1)}`,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    seconds: MEASURE_SECONDS,
    rounds: `${ROUNDS} (medians; ratios per round)`,
  },
  tables: [
    {
      title: 'HTTP throughput (median over rounds; ratios of req per server CPU second within each round)',
      rows,
    },
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
    {
      target: 'Gantry full ≥ 0.6× bare',
      measured: `${gantryVsBare.toFixed(2)}× (rounds ${spread(ratios('gantry', 'bare'))})`,
      met: gantryVsBare >= 0.6,
    },
    {
      target: 'Gantry full ≥ 2× usual stack',
      measured: `${gantryVsUsual.toFixed(2)}× (rounds ${spread(ratios('gantry', 'usual'))})`,
      met: gantryVsUsual >= 2,
    },
    { target: 'Gantry logger ≥ 0.9× raw pino', measured: `${loggerRatio.toFixed(2)}×`, met: loggerRatio >= 0.9 },
  ],
});
const failedVariants = [...summaries.values()].filter((result) => result.errors > 0);
if (failedVariants.length > 0) {
  process.stderr.write('some variants answered with errors: the figures are not comparable\n');
  process.exitCode = 1;
}
// Gantry full samples 100%: a span missing per request would mean it dropped work the others did.
if (gantry.spansPerRequest < 0.99) {
  process.stderr.write(`Gantry full exported ${gantry.spansPerRequest.toFixed(3)} spans per request, not 1\n`);
  process.exitCode = 1;
}
if (gantry.exports === 0 || usual.exports === 0) {
  process.stderr.write('a traced variant exported nothing to the sink: the comparison is not fair\n');
  process.exitCode = 1;
}
