// @gantry/health probe throughput against a bare fastify route, lightship and @godaddy/terminus, and our probe's
// p99 while a dependency check hangs. Every server runs in its own child process (health-server.ts); autocannon
// runs here, so load generation never shares a server's event loop. Rounds rotate the order of the servers and the
// median is reported, to spread the noise of a shared machine evenly.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { median, publishReport, type BenchRow } from './report.ts';

const ROUNDS = 5;
const DURATION_S = 3;
const WARMUP_S = 1;
const CONNECTIONS = 50;
const HUNG_RATE = 1_000;
const HUNG_CONNECTIONS = 10;
const HUNG_DURATION_S = 4;
const FIXED_ROUNDS = 4;

type Kind =
  'bare-fastify' | 'gantry-fastify' | 'gantry-node' | 'gantry-port' | 'lightship' | 'terminus' | 'gantry-hung';

const LABELS: Record<Kind, string> = {
  'bare-fastify': '(a) bare fastify route, same JSON',
  'gantry-fastify': '(b) gantry ready, fastify plugin, 3 checks',
  'gantry-node': "(b') gantry ready, node:http handler",
  'gantry-port': "(b'') gantry ready, separate probe port",
  lightship: '(c) lightship /ready (own port)',
  terminus: '(d) terminus /ready (node:http)',
  'gantry-hung': 'gantry ready, dependency check hangs',
};

const PATHS: Record<Kind, string> = {
  'bare-fastify': '/q/health/ready',
  'gantry-fastify': '/q/health/ready',
  'gantry-node': '/q/health/ready',
  'gantry-port': '/q/health/ready',
  lightship: '/ready',
  terminus: '/q/health/ready',
  'gantry-hung': '/q/health/ready',
};

const children: ChildProcess[] = [];

interface Child {
  readonly url: string;
  /** CPU time (user + system, µs) the server process has used so far. */
  cpuMicros(): Promise<number>;
}

async function startServer(kind: Kind, dependency: 'healthy' | 'hung', body = '{}'): Promise<Child> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'health-server.ts'), kind, dependency, body], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (): Promise<string> => new Promise((resolve) => waiting.push(resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
    void nextLine().then((line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  return {
    url: `http://127.0.0.1:${port}${PATHS[kind]}`,
    cpuMicros: async () => {
      const line = nextLine();
      child.stdin.write('cpu\n');
      return (JSON.parse(await line) as { cpuMicros: number }).cpuMicros;
    },
  };
}

async function waitForStatus(url: string, status: number): Promise<string> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const response = await fetch(url);
    const text = await response.text();
    if (response.status === status) return text;
    if (performance.now() > deadline) throw new Error(`${url} answered ${response.status}, wanted ${status}: ${text}`);
    await sleep(200);
  }
}

function cannon(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (error: unknown, result) =>
      error ? reject(error instanceof Error ? error : new Error('autocannon failed')) : resolve(result),
    );
  });
}

interface Sample {
  rps: number[];
  cpuPerRequest: number[];
  p50: number[];
  p99: number[];
  bad: number;
}

/** One autocannon run with the server's CPU time per request measured around it. */
async function measure(child: Child, options: Omit<autocannon.Options, 'url'>) {
  const before = await child.cpuMicros();
  const result = await cannon({ url: child.url, ...options });
  const after = await child.cpuMicros();
  return { result, cpuPerRequest: (after - before) / Math.max(1, result.requests.total) };
}

async function main(): Promise<void> {
  const servers = new Map<Kind, Child>();
  try {
    servers.set('gantry-fastify', await startServer('gantry-fastify', 'healthy'));
    const body = await waitForStatus(servers.get('gantry-fastify')!.url, 200);
    servers.set('bare-fastify', await startServer('bare-fastify', 'healthy', body));
    for (const kind of ['gantry-node', 'gantry-port', 'lightship', 'terminus'] as const) {
      servers.set(kind, await startServer(kind, 'healthy'));
    }
    servers.set('gantry-hung', await startServer('gantry-hung', 'hung'));
    for (const kind of ['bare-fastify', 'gantry-node', 'gantry-port', 'lightship', 'terminus'] as const) {
      await waitForStatus(servers.get(kind)!.url, 200);
    }
    const hungBody = await waitForStatus(servers.get('gantry-hung')!.url, 503);
    process.stdout.write(`probe body: ${body}\nwith a hung dependency: ${hungBody}\n`);

    const throughputKinds: Kind[] = [
      'bare-fastify',
      'gantry-fastify',
      'gantry-node',
      'gantry-port',
      'lightship',
      'terminus',
    ];
    const samples = new Map<Kind, Sample>();
    for (const kind of throughputKinds) samples.set(kind, { rps: [], cpuPerRequest: [], p50: [], p99: [], bad: 0 });
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = throughputKinds.map((_, index) => throughputKinds[(index + round * 2) % throughputKinds.length]!);
      for (const kind of order) {
        const child = servers.get(kind)!;
        await cannon({ url: child.url, connections: CONNECTIONS, duration: WARMUP_S });
        const { result, cpuPerRequest } = await measure(child, { connections: CONNECTIONS, duration: DURATION_S });
        const sample = samples.get(kind)!;
        sample.rps.push(result.requests.average);
        sample.cpuPerRequest.push(cpuPerRequest);
        sample.p50.push(result.latency.p50);
        sample.p99.push(result.latency.p99);
        sample.bad += result.errors + result.timeouts + result.non2xx;
        process.stdout.write(
          `round ${round + 1} ${kind}: ${Math.round(result.requests.average)} req/s, ${cpuPerRequest.toFixed(1)} µs CPU/request\n`,
        );
      }
    }

    // Latency at a fixed, moderate rate: the machine's floor (bare fastify), our probe healthy, and our probe with
    // one check hanging. Alternated over four rounds (two left single slow runs in the median), medians reported.
    const fixedKinds: Kind[] = ['bare-fastify', 'gantry-fastify', 'gantry-hung'];
    const fixed = new Map<Kind, { p50: number[]; p99: number[]; max: number[]; rps: number[]; errors: number }>();
    for (const kind of fixedKinds) fixed.set(kind, { p50: [], p99: [], max: [], rps: [], errors: 0 });
    // The hung-dependency server takes no part in the throughput rounds above, so without this it would be measured
    // with a cold JIT against servers warmed by hundreds of thousands of requests. One full-speed run each first.
    for (const kind of fixedKinds)
      await cannon({ url: servers.get(kind)!.url, connections: CONNECTIONS, duration: DURATION_S });
    for (let round = 0; round < FIXED_ROUNDS; round += 1) {
      for (const kind of fixedKinds) {
        const url = servers.get(kind)!.url;
        await cannon({ url, connections: HUNG_CONNECTIONS, duration: WARMUP_S, overallRate: HUNG_RATE });
        const result = await cannon({
          url,
          connections: HUNG_CONNECTIONS,
          duration: HUNG_DURATION_S,
          overallRate: HUNG_RATE,
        });
        const entry = fixed.get(kind)!;
        entry.p50.push(result.latency.p50);
        entry.p99.push(result.latency.p99);
        entry.max.push(result.latency.max);
        entry.rps.push(result.requests.average);
        entry.errors += result.errors + result.timeouts;
      }
    }

    const rps = (kind: Kind): number => median(samples.get(kind)!.rps);
    const cpu = (kind: Kind): number => median(samples.get(kind)!.cpuPerRequest);
    const ratio = (a: Kind, b: Kind): number => rps(a) / rps(b);
    const cpuRatio = (a: Kind, b: Kind): number => cpu(b) / cpu(a);
    const against: Partial<Record<Kind, Kind>> = {
      'gantry-fastify': 'bare-fastify',
      'gantry-node': 'terminus',
      'gantry-port': 'lightship',
    };
    const throughputRows: BenchRow[] = throughputKinds.map((kind) => {
      const sample = samples.get(kind)!;
      const peer = against[kind];
      return {
        server: LABELS[kind],
        'req/s (median)': Math.round(rps(kind)),
        'CPU µs/req': cpu(kind),
        'p50 ms': median(sample.p50),
        'p99 ms': median(sample.p99),
        'errors+non2xx': sample.bad,
        'vs peer (req/s, CPU)':
          peer === undefined ? '' : `${ratio(kind, peer).toFixed(2)}×, ${cpuRatio(kind, peer).toFixed(2)}× ${peer}`,
      };
    });
    const comparisons: [string, Kind, Kind, string][] = [
      ['(b) fastify plugin ÷ (a) bare fastify', 'gantry-fastify', 'bare-fastify', '≥ 0.90'],
      ["(b'') separate port ÷ (c) lightship", 'gantry-port', 'lightship', '≥ 1.00'],
      ['(b) fastify plugin ÷ (c) lightship', 'gantry-fastify', 'lightship', '(info)'],
      ["(b') node:http ÷ (d) terminus", 'gantry-node', 'terminus', '≥ 1.00'],
      ['(b) fastify plugin ÷ (d) terminus', 'gantry-fastify', 'terminus', '(info)'],
    ];
    const ratioRows: BenchRow[] = comparisons.map(([comparison, a, b, target]) => ({
      comparison,
      'req/s ratio': ratio(a, b),
      'CPU-per-request ratio': cpuRatio(a, b),
      target,
    }));
    const fixedRow = (kind: Kind, label: string, status: number): BenchRow => {
      const entry = fixed.get(kind)!;
      return {
        run: label,
        status,
        'req/s': Math.round(median(entry.rps)),
        'p50 ms': median(entry.p50),
        'p99 ms': median(entry.p99),
        'max ms': median(entry.max),
        errors: entry.errors,
      };
    };
    const hungP99 = median(fixed.get('gantry-hung')!.p99);
    const floorP99 = median(fixed.get('bare-fastify')!.p99);
    publishReport({
      name: 'health',
      description:
        'readiness probe throughput (autocannon here, each server in its own child process) and p99 with a hung dependency',
      environment: {
        node: process.version,
        cpus: cpus().length,
        load: loadavg()
          .map((value) => value.toFixed(2))
          .join('/'),
        rounds: ROUNDS,
        seconds: DURATION_S,
        connections: CONNECTIONS,
      },
      tables: [
        { title: 'Throughput (median of rounds; CPU µs/req = server CPU time ÷ requests)', rows: throughputRows },
        { title: 'Ratios (> 1 means ours is faster)', rows: ratioRows },
        {
          title: `Latency at ${HUNG_RATE} req/s over ${HUNG_CONNECTIONS} connections (check timeout 1 s, interval 1 s)`,
          rows: [
            fixedRow('bare-fastify', '(a) bare fastify: the machine floor', 200),
            fixedRow('gantry-fastify', '(b) our probe, dependencies healthy', 200),
            fixedRow('gantry-hung', 'our probe, one dependency check hangs', 503),
          ],
        },
      ],
      targets: [
        {
          target: '(b) ≥ 0.9× bare fastify (a), req/s',
          measured: `${ratio('gantry-fastify', 'bare-fastify').toFixed(2)}× (CPU ${cpuRatio('gantry-fastify', 'bare-fastify').toFixed(2)}×)`,
          met: ratio('gantry-fastify', 'bare-fastify') >= 0.9,
        },
        {
          target: "≥ 1.0× lightship (c), separate port (b''), req/s",
          measured: `${ratio('gantry-port', 'lightship').toFixed(2)}× (CPU ${cpuRatio('gantry-port', 'lightship').toFixed(2)}×)`,
          met: ratio('gantry-port', 'lightship') >= 1,
        },
        {
          target: "≥ 1.0× terminus (d), node:http (b'), req/s",
          measured: `${ratio('gantry-node', 'terminus').toFixed(2)}× (CPU ${cpuRatio('gantry-node', 'terminus').toFixed(2)}×)`,
          met: ratio('gantry-node', 'terminus') >= 1,
        },
        {
          target: `p99 < 5 ms with a hung dependency (${HUNG_RATE} req/s)`,
          measured: `${hungP99} ms (bare fastify at the same rate: ${floorP99} ms)`,
          met: hungP99 < 5,
        },
      ],
    });
  } finally {
    for (const child of children) child.kill('SIGKILL');
  }
}

await main();
