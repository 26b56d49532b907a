// @gantry/health probe throughput against a bare fastify route, lightship and @godaddy/terminus, and our probe's
// p99 while a dependency check hangs. Every server runs in its own child process (health-server.ts); autocannon
// runs here, so load generation never shares a server's event loop. Rounds rotate the order of the servers and the
// median is reported, to spread the noise of a shared machine evenly.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { publishReport, type BenchRow } from './report.ts';

const ROUNDS = 5;
const DURATION_S = 3;
const WARMUP_S = 1;
const CONNECTIONS = 50;
const HUNG_RATE = 1_000;
const HUNG_CONNECTIONS = 10;
const HUNG_DURATION_S = 5;

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

async function startServer(kind: Kind, dependencyUrl: string, body = '{}'): Promise<string> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'health-server.ts'), kind, dependencyUrl, body], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 30_000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
  return `http://127.0.0.1:${port}${PATHS[kind]}`;
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

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  // A healthy dependency for the HTTP checks, and one that accepts connections and never answers.
  const dependency = createHttpServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => dependency.listen(0, '127.0.0.1', resolve));
  const hungSockets = new Set<Socket>();
  const hung = createTcpServer((socket) => {
    hungSockets.add(socket);
    socket.on('close', () => hungSockets.delete(socket));
  });
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  const healthyUrl = `http://127.0.0.1:${(dependency.address() as AddressInfo).port}/`;
  const hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/`;

  const urls = new Map<Kind, string>();
  try {
    urls.set('gantry-fastify', await startServer('gantry-fastify', healthyUrl));
    const body = await waitForStatus(urls.get('gantry-fastify')!, 200);
    urls.set('bare-fastify', await startServer('bare-fastify', healthyUrl, body));
    for (const kind of ['gantry-node', 'gantry-port', 'lightship', 'terminus'] as const) {
      urls.set(kind, await startServer(kind, healthyUrl));
    }
    urls.set('gantry-hung', await startServer('gantry-hung', hungUrl));
    for (const kind of ['bare-fastify', 'gantry-node', 'gantry-port', 'lightship', 'terminus'] as const) {
      await waitForStatus(urls.get(kind)!, 200);
    }
    const hungBody = await waitForStatus(urls.get('gantry-hung')!, 503);
    process.stdout.write(`probe body: ${body}\nwith a hung dependency: ${hungBody}\n`);

    const throughputKinds: Kind[] = [
      'bare-fastify',
      'gantry-fastify',
      'gantry-node',
      'gantry-port',
      'lightship',
      'terminus',
    ];
    const samples = new Map<Kind, { rps: number[]; p50: number[]; p99: number[]; errors: number }>();
    for (const kind of throughputKinds) samples.set(kind, { rps: [], p50: [], p99: [], errors: 0 });
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = throughputKinds.map((_, index) => throughputKinds[(index + round * 2) % throughputKinds.length]!);
      for (const kind of order) {
        const url = urls.get(kind)!;
        await cannon({ url, connections: CONNECTIONS, duration: WARMUP_S });
        const result = await cannon({ url, connections: CONNECTIONS, duration: DURATION_S });
        const sample = samples.get(kind)!;
        sample.rps.push(result.requests.average);
        sample.p50.push(result.latency.p50);
        sample.p99.push(result.latency.p99);
        sample.errors += result.errors + result.timeouts + result.non2xx;
        process.stdout.write(`round ${round + 1} ${kind}: ${Math.round(result.requests.average)} req/s\n`);
      }
    }

    // p99 at a fixed, moderate rate (what a kubelet and a sidecar see), healthy vs one check hanging.
    const fixedRate = async (kind: Kind): Promise<autocannon.Result> => {
      const url = urls.get(kind)!;
      await cannon({ url, connections: HUNG_CONNECTIONS, duration: WARMUP_S, overallRate: HUNG_RATE });
      return cannon({ url, connections: HUNG_CONNECTIONS, duration: HUNG_DURATION_S, overallRate: HUNG_RATE });
    };
    const healthyFixed = await fixedRate('gantry-fastify');
    const hungFixed = await fixedRate('gantry-hung');
    const hungSaturated = await cannon({
      url: urls.get('gantry-hung')!,
      connections: CONNECTIONS,
      duration: DURATION_S,
    });

    const rps = (kind: Kind): number => median(samples.get(kind)!.rps);
    const ratio = (a: Kind, b: Kind): number => rps(a) / rps(b);
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
        'p50 ms': median(sample.p50),
        'p99 ms': median(sample.p99),
        'errors+non2xx': sample.errors,
        'ratio vs peer': peer === undefined ? '' : `${ratio(kind, peer).toFixed(2)}× ${peer}`,
      };
    });
    const ratioRows: BenchRow[] = [
      {
        comparison: '(b) fastify plugin ÷ (a) bare fastify',
        ratio: ratio('gantry-fastify', 'bare-fastify'),
        target: '≥ 0.90',
      },
      { comparison: "(b'') separate port ÷ (c) lightship", ratio: ratio('gantry-port', 'lightship'), target: '≥ 1.00' },
      {
        comparison: '(b) fastify plugin ÷ (c) lightship',
        ratio: ratio('gantry-fastify', 'lightship'),
        target: '(info)',
      },
      { comparison: "(b') node:http ÷ (d) terminus", ratio: ratio('gantry-node', 'terminus'), target: '≥ 1.00' },
      { comparison: '(b) fastify plugin ÷ (d) terminus', ratio: ratio('gantry-fastify', 'terminus'), target: '(info)' },
    ];
    const hungRows: BenchRow[] = [
      {
        run: `healthy, ${HUNG_RATE} req/s fixed`,
        status: 200,
        'req/s': Math.round(healthyFixed.requests.average),
        'p50 ms': healthyFixed.latency.p50,
        'p99 ms': healthyFixed.latency.p99,
        'max ms': healthyFixed.latency.max,
        errors: healthyFixed.errors + healthyFixed.timeouts,
      },
      {
        run: `dependency hangs, ${HUNG_RATE} req/s fixed`,
        status: 503,
        'req/s': Math.round(hungFixed.requests.average),
        'p50 ms': hungFixed.latency.p50,
        'p99 ms': hungFixed.latency.p99,
        'max ms': hungFixed.latency.max,
        errors: hungFixed.errors + hungFixed.timeouts,
      },
      {
        run: `dependency hangs, saturated (${CONNECTIONS} conns)`,
        status: 503,
        'req/s': Math.round(hungSaturated.requests.average),
        'p50 ms': hungSaturated.latency.p50,
        'p99 ms': hungSaturated.latency.p99,
        'max ms': hungSaturated.latency.max,
        errors: hungSaturated.errors + hungSaturated.timeouts,
      },
    ];
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
        { title: 'Throughput (median of rounds)', rows: throughputRows },
        { title: 'Ratios', rows: ratioRows },
        { title: 'Our probe while one dependency check hangs (check timeout 1 s, interval 1 s)', rows: hungRows },
      ],
      targets: [
        {
          target: '(b) ≥ 0.9× bare fastify (a)',
          measured: `${ratio('gantry-fastify', 'bare-fastify').toFixed(2)}×`,
          met: ratio('gantry-fastify', 'bare-fastify') >= 0.9,
        },
        {
          target: "≥ 1.0× lightship (c), separate port (b'')",
          measured: `${ratio('gantry-port', 'lightship').toFixed(2)}×`,
          met: ratio('gantry-port', 'lightship') >= 1,
        },
        {
          target: "≥ 1.0× terminus (d), node:http (b')",
          measured: `${ratio('gantry-node', 'terminus').toFixed(2)}×`,
          met: ratio('gantry-node', 'terminus') >= 1,
        },
        {
          target: `p99 < 5 ms with a hung dependency (${HUNG_RATE} req/s)`,
          measured: `${hungFixed.latency.p99} ms`,
          met: hungFixed.latency.p99 < 5,
        },
      ],
    });
  } finally {
    for (const child of children) child.kill('SIGKILL');
    for (const socket of hungSockets) socket.destroy();
    hung.close();
    dependency.closeAllConnections();
    dependency.close();
  }
}

await main();
