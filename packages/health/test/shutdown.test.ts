// Graceful shutdown of a real server in a child process under keep-alive load: SIGTERM must not fail a single
// request and the process must exit on its own within the deadline. A control run without draining shows that the
// same load does fail requests, so the test can tell the difference.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, createServer, request, type Server } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'shutdown-server.ts');
const CONNECTIONS = 50;
const LOAD_BEFORE_SIGTERM_MS = 1_000;
const LOAD_AFTER_SIGTERM_MS = 2_500;

const children: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

interface Started {
  child: ChildProcess;
  port: number;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

async function startFixture(kind: 'fastify' | 'node', drainTimeoutMs: number, extra: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [FIXTURE, kind, String(drainTimeoutMs), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const logs: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture did not start:\n${logs.join('\n')}`)), 20_000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => reject(new Error(`fixture exited early:\n${logs.join('\n')}`)));
  });
  return { child, port, logs, exited };
}

/** Another replica of the service, where the load balancer sends new connections once the pod is unready. */
async function startOtherReplica(): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  servedByPodAfterSigterm: number;
  closeHeaders: number;
}

/**
 * Keep-alive clients behind an emulated L4 load balancer (kube-proxy): an existing connection keeps going to the
 * pod it was opened to; a new connection goes to the pod only while the balancer, polling readiness every 100 ms,
 * still sees it ready.
 */
async function runLoad(podPort: number, otherPort: number, sigterm: () => void): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: [], servedByPodAfterSigterm: 0, closeHeaders: 0 };
  let podReady = true;
  let signalled = false;
  let stop = false;
  const poller = (async () => {
    while (!stop) {
      try {
        // A probe slower than 300 ms counts as not ready, as a kubelet with a short timeoutSeconds would see it:
        // the balancer then stops new connections well within the pod's 1 s delay even on a busy machine.
        const response = await fetch(`http://127.0.0.1:${podPort}/q/health/ready`, {
          signal: AbortSignal.timeout(300),
        });
        await response.arrayBuffer();
        if (response.status !== 200) podReady = false;
      } catch {
        podReady = false;
      }
      await sleep(100);
    }
  })();
  const worker = async (): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const socketPod = new WeakMap<object, boolean>();
    agent.createConnection = () => {
      const toPod = podReady;
      const socket = createConnection({ host: '127.0.0.1', port: toPod ? podPort : otherPort });
      socketPod.set(socket, toPod);
      return socket;
    };
    while (!stop) {
      try {
        await new Promise<void>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: podPort, path: '/work', agent }, (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) {
                result.ok += 1;
                if (signalled && socketPod.get(req.socket!) === true) result.servedByPodAfterSigterm += 1;
                if (res.headers.connection === 'close') result.closeHeaders += 1;
                resolve();
              } else reject(new Error(`status ${res.statusCode}`));
            });
            res.on('error', reject);
          });
          req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
          req.on('error', reject);
          req.end();
        });
      } catch (error) {
        result.failed += 1;
        if (result.errors.length < 5)
          result.errors.push(
            error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error),
          );
      }
    }
    agent.destroy();
  };
  const workers = Array.from({ length: CONNECTIONS }, () => worker());
  await sleep(LOAD_BEFORE_SIGTERM_MS);
  signalled = true;
  sigterm();
  await sleep(LOAD_AFTER_SIGTERM_MS);
  stop = true;
  await Promise.all([...workers, poller]);
  return result;
}

async function shutdownUnderLoad(kind: 'fastify' | 'node', drainTimeoutMs: number) {
  const otherPort = await startOtherReplica();
  const pod = await startFixture(kind, drainTimeoutMs);
  let sigtermAt = 0;
  const load = await runLoad(pod.port, otherPort, () => {
    sigtermAt = performance.now();
    pod.child.kill('SIGTERM');
  });
  const exit = await Promise.race([pod.exited, sleep(15_000).then(() => undefined)]);
  process.stderr.write(
    `[shutdown ${kind} drain=${drainTimeoutMs}] ok=${load.ok} failed=${load.failed} ` +
      `podAfterSigterm=${load.servedByPodAfterSigterm} connectionClose=${load.closeHeaders} ` +
      `exit=${JSON.stringify(exit?.code)} after ${exit === undefined ? 'never' : Math.round(exit.at - sigtermAt)} ms\n`,
  );
  return {
    load,
    exit,
    exitAfterMs: exit === undefined ? Number.POSITIVE_INFINITY : exit.at - sigtermAt,
    logs: pod.logs,
  };
}

describe('graceful shutdown under keep-alive load (child process)', () => {
  it.each(['fastify', 'node'] as const)(
    '%s: SIGTERM fails no request and the process exits by itself within the deadline',
    async (kind) => {
      const { load, exit, exitAfterMs, logs } = await shutdownUnderLoad(kind, 3_000);
      const context = `${JSON.stringify(load)}\n${logs.join('\n')}`;
      expect(load.failed, context).toBe(0);
      expect(load.ok, context).toBeGreaterThan(CONNECTIONS);
      // Keep-alive traffic really kept reaching the terminating pod, and was moved off with Connection: close.
      expect(load.servedByPodAfterSigterm, context).toBeGreaterThan(0);
      expect(load.closeHeaders, context).toBeGreaterThan(0);
      expect(exit, context).toMatchObject({ code: 0, signal: null });
      // Not before the load-balancer delay, and well within the 6 s grace period (deadline 5 s).
      expect(exitAfterMs, context).toBeGreaterThanOrEqual(1_000);
      expect(exitAfterMs, context).toBeLessThan(5_000);
      expect(
        logs.some((line) => line.includes('"event":"health.shutdown.completed"')),
        context,
      ).toBe(true);
    },
    40_000,
  );

  it('control: the same load with draining disabled (drainTimeoutMs 0) fails requests', async () => {
    const { load, exit, logs } = await shutdownUnderLoad('fastify', 0);
    const context = `${JSON.stringify(load)}\n${logs.join('\n')}`;
    expect(load.failed, context).toBeGreaterThan(0);
    expect(exit, context).toMatchObject({ code: 1 });
    expect(
      logs.some((line) => line.includes('"event":"health.shutdown.drain.forced"')),
      context,
    ).toBe(true);
  }, 40_000);

  it('ends a process whose event loop does not empty by re-raising the signal before the grace period ends', async () => {
    const pod = await startFixture('node', 3_000, ['linger']);
    const sigtermAt = performance.now();
    pod.child.kill('SIGTERM');
    const exit = await Promise.race([pod.exited, sleep(15_000).then(() => undefined)]);
    const context = pod.logs.join('\n');
    expect(exit, context).toMatchObject({ code: null, signal: 'SIGTERM' });
    // Sequence ~1.1 s (delay + hook), then at most 1 s of backstop: well inside the 6 s grace period.
    expect(exit!.at - sigtermAt, context).toBeLessThan(5_000);
  }, 30_000);
});
