// The second implementation of `TestApp`: the app built from the real Gantry packages (@gantry/health,
// @gantry/telemetry, @gantry/migrations, @gantry/flags) in its own process (fixtures/real-app-server.ts), so
// telemetry runs once per process as in production, a restart is a real process restart and SIGTERM runs health's
// real graceful shutdown. Commands travel over the IPC channel and resolve once the app applied them.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { HEALTHY_SCHEMA, type Behaviour } from './app.ts';

/** A migrations database for the app's schema monitor (the `schema` section then comes from it). */
export interface RealAppDatabase {
  readonly url: string;
  readonly directory: string;
  readonly supports: { readonly min: string; readonly max: string };
}

/** Options of {@link startRealApp}. */
export interface RealAppOptions {
  readonly database?: RealAppDatabase;
  /** health's shutdown settings. @default { delayMs: 300, drainTimeoutMs: 2_000, gracePeriodMs: 10_000 } */
  readonly shutdown?: { readonly delayMs?: number; readonly drainTimeoutMs?: number; readonly gracePeriodMs?: number };
}

/** The real app's handle: the `TestApp` operations, awaitable, plus process control. */
export interface RealApp {
  readonly url: string;
  /** Applies the behaviour in the app; `version` cannot change without a new process (use `startRealApp`). */
  set(behaviour: Partial<Omit<Behaviour, 'version'>>): Promise<void>;
  /** Kills the process (SIGKILL, a crash) and starts a new one on the same port: counters reset, startedAt moves. */
  restart(): Promise<void>;
  /** Makes the schema monitor read the database now (after a migration ran). */
  refreshSchema(): Promise<void>;
  /** Sends a signal and resolves when the process exits, with how it exited. */
  terminate(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What the process wrote to stderr (health's JSON log lines). */
  stderr(): string;
  /** Kills the process. */
  close(): Promise<void>;
}

const SERVER = join(import.meta.dirname, 'fixtures', 'real-app-server.ts');
let appsStarted = 0;

/**
 * Starts the real app on 127.0.0.1 (port 0) in a child process.
 * @example const app = await startRealApp({ errorRate: 0.1 }); await app.set({ down: true });
 */
export async function startRealApp(initial: Partial<Behaviour> = {}, options: RealAppOptions = {}): Promise<RealApp> {
  const { version = '1.0.0', ...rest } = initial;
  const behaviour: Omit<Behaviour, 'version'> = {
    errorRate: 0,
    delayMs: 0,
    flapMs: 0,
    down: false,
    schema: HEALTHY_SCHEMA,
    ...rest,
  };
  appsStarted += 1;
  const seed = appsStarted * 7_919;
  let port = 0;
  let child: ChildProcess;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let stderr = '';
  let nextId = 0;
  const pending = new Map<number, () => void>();

  const spawn = async (): Promise<void> => {
    const config = {
      port,
      seed,
      version,
      behaviour,
      shutdown: { delayMs: 300, drainTimeoutMs: 2_000, gracePeriodMs: 10_000, ...options.shutdown },
      ...(options.database === undefined ? {} : { database: options.database }),
    };
    child = fork(SERVER, [], {
      execArgv: [],
      env: { ...process.env, GANTRY_REAL_APP: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-200_000);
    });
    const current = child;
    exited = new Promise((resolve) => current.once('exit', (code, signal) => resolve({ code, signal })));
    current.on('message', (message: { type: string; id?: number; port?: number }) => {
      if (message.type === 'ack' && message.id !== undefined) pending.get(message.id)?.();
    });
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`real app did not start within 30 s:\n${stderr}`)), 30_000);
      current.on('message', (message: { type: string; port?: number }) => {
        if (message.type === 'listening' && message.port !== undefined) {
          clearTimeout(timer);
          resolve(message.port);
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`real app exited before listening (${code ?? signal}):\n${stderr}`));
      });
    });
  };

  const command = (type: string, extra: Record<string, unknown> = {}): Promise<void> =>
    new Promise((resolve, reject) => {
      nextId += 1;
      const id = nextId;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`real app did not acknowledge ${type}`));
      }, 10_000);
      pending.set(id, () => {
        clearTimeout(timer);
        pending.delete(id);
        resolve();
      });
      child.send({ type, id, ...extra });
    });

  await spawn();
  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill(signal);
    return exited;
  };
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    async set(partial) {
      if ('version' in partial) throw new Error('the real app cannot change its version while running');
      Object.assign(behaviour, partial);
      await command('set', { behaviour: partial });
    },
    async restart() {
      await stop('SIGKILL');
      stderr = '';
      await spawn();
    },
    refreshSchema: () => command('refresh-schema'),
    terminate: (signal = 'SIGTERM') => stop(signal),
    stderr: () => stderr,
    async close() {
      await stop('SIGKILL');
    },
  };
}
