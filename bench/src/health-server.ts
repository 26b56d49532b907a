// One server per child process for health.bench.ts, so the load generator never shares a server's event loop.
// Usage: node health-server.ts <kind> <healthy|hung> [bodyJson]
// Prints {"port":N} on stdout once ready, then answers each line on stdin with {"cpuMicros":N} (user + system CPU
// time of this process so far), so the bench can compute CPU time per request, which contention on a shared
// machine distorts far less than throughput.
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { createTerminus } from '@godaddy/terminus';
import Fastify from 'fastify';
import { createLightship } from 'lightship';
import {
  createEventLoopDelayCheck,
  createHealth,
  createHttpCheck,
  createMemoryCheck,
  type Health,
} from '@gantry/health';
import { healthPlugin } from '@gantry/health/fastify';
import { createHealthHandler, startHealthServer } from '@gantry/health/node-http';

const [kind, dependencyMode = 'healthy', body = '{}'] = process.argv.slice(2);
const ready = (port: number): void => {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  createInterface({ input: process.stdin }).on('line', () => {
    const usage = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuMicros: usage.user + usage.system })}\n`);
  });
};

// The dependency the HTTP check calls lives in this process (one request a second): either a server that answers,
// or one that accepts connections and never answers.
async function startDependency(): Promise<string> {
  const server =
    dependencyMode === 'hung' ? createTcpServer(() => undefined) : createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}
const dependencyUrl = kind?.startsWith('gantry') === true ? await startDependency() : '';
const addressPort = (address: AddressInfo | string | null): number => (address as AddressInfo).port;

/** Our registry with three readiness checks: event loop, memory and an HTTP dependency, run every second. */
function gantry(): Health {
  const health = createHealth({ service: 'bench', checkIntervalMs: 1_000, shutdown: { signals: [] } });
  health.addCheck(createEventLoopDelayCheck());
  health.addCheck(createMemoryCheck());
  health.addCheck(createHttpCheck({ name: 'dependency', url: dependencyUrl }));
  health.start();
  return health;
}

switch (kind ?? '') {
  case 'bare-fastify': {
    // The same JSON document as our probe, served by a plain fastify route (fastify serializes it per request).
    const document: unknown = JSON.parse(body);
    const app = Fastify();
    app.get('/q/health/ready', async () => document);
    await app.listen({ port: 0, host: '127.0.0.1' });
    ready(addressPort(app.server.address()));
    break;
  }
  case 'gantry-fastify':
  case 'gantry-hung': {
    const app = Fastify();
    await app.register(healthPlugin, { health: gantry() });
    await app.listen({ port: 0, host: '127.0.0.1' });
    ready(addressPort(app.server.address()));
    break;
  }
  case 'gantry-node': {
    const probes = createHealthHandler(gantry());
    const server = createServer((req, res) => {
      if (!probes(req, res)) res.end('app');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ready(addressPort(server.address()));
    break;
  }
  case 'gantry-port': {
    const probes = await startHealthServer(gantry(), { port: 0, host: '127.0.0.1' });
    ready(probes.port);
    break;
  }
  case 'lightship': {
    const lightship = await createLightship({ detectKubernetes: false, port: 0, signals: [] });
    lightship.signalReady();
    ready(addressPort(lightship.server.address()));
    break;
  }
  case 'terminus': {
    // terminus calls the function on every request; it returns cached state (no I/O), the same work as ours.
    const state = { eventLoop: 'UP', memory: 'UP', dependency: 'UP' };
    const server = createServer((_req, res) => res.end('app'));
    createTerminus(server, { healthChecks: { '/q/health/ready': async () => state }, signals: [] });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ready(addressPort(server.address()));
    break;
  }
  default:
    process.stderr.write(`unknown server kind ${String(kind)}\n`);
    process.exitCode = 2;
}
