import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, type PostgresInfo } from './postgres.ts';
import { HarnessError, ManagedProcess, waitUntilReady } from './process.ts';

const CHILD_ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'unleash-process.ts');

/** What a test needs to reach the harness's Unleash. */
export interface UnleashInfo {
  /** Base URL, e.g. `http://127.0.0.1:4242`; the client API is at `${url}/api/`. */
  readonly url: string;
  /** Admin API token (all projects, all environments). */
  readonly adminToken: string;
  /** Backend (server SDK) token for the `development` environment, all projects. */
  readonly clientToken: string;
  /** Backend token for the `production` environment, all projects. */
  readonly productionClientToken: string;
  /** The environment {@link clientToken} reads. */
  readonly environment: 'development';
  readonly logFile: string;
}

/** A running Unleash server. */
export interface UnleashServer extends UnleashInfo {
  /** Milliseconds from spawn until the admin API answered (includes Unleash's own schema migrations). */
  readonly startMs: number;
  /** Stops the server; its database is kept so `start()` brings back the same toggles. Idempotent. */
  stop(): Promise<void>;
  /** Starts a stopped server again on the same port. */
  start(): Promise<void>;
}

/** Options for {@link startUnleash}. */
export interface StartUnleashOptions {
  readonly runDirectory: string;
  /** The PostgreSQL server Unleash stores its data in (a fresh database is created on it). */
  readonly postgres: PostgresInfo;
  /** @default 'unleash' */
  readonly name?: string;
  /** @default 90_000 */
  readonly timeoutMs?: number;
}

const secret = (): string => randomBytes(16).toString('hex');

/**
 * Starts `unleash-server` (8.x) in a child process on its own database, with admin, backend and frontend API
 * tokens created at start-up so tests can drive it through the admin API straight away.
 * @throws HarnessError naming the log when it does not come up.
 */
export async function startUnleash(options: StartUnleashOptions): Promise<UnleashServer> {
  const name = options.name ?? 'unleash';
  const timeoutMs = options.timeoutMs ?? 90_000;
  const database = await createDatabase(options.postgres, 'unleash');
  const logFile = join(options.runDirectory, `${name}.log`);
  const portFile = join(options.runDirectory, `${name}.port`);
  const adminToken = `*:*.${secret()}`;
  const clientToken = `*:development.${secret()}`;
  const productionClientToken = `*:production.${secret()}`;
  const frontendToken = `*:development.${secret()}`;
  let port = 0;

  const makeProcess = (): ManagedProcess =>
    new ManagedProcess({
      name,
      command: process.execPath,
      args: ['--disable-warning=ExperimentalWarning', CHILD_ENTRY],
      logFile,
      cwd: dirname(CHILD_ENTRY),
      env: {
        ...process.env,
        NODE_ENV: 'production',
        TZ: 'UTC',
        SEND_TELEMETRY: 'false',
        CHECK_VERSION: 'false',
        GANTRY_UNLEASH_CONFIG: JSON.stringify({
          database: { ...options.postgres, database: database.name },
          port,
          portFile,
          adminToken,
          backendTokens: [clientToken, productionClientToken],
          frontendToken,
        }),
      },
    });

  let proc = makeProcess();
  const ready = async (): Promise<boolean> => {
    if (!existsSync(portFile)) return false;
    port = Number(readFileSync(portFile, 'utf8'));
    const response = await fetch(`http://127.0.0.1:${port}/api/admin/projects`, {
      headers: { Authorization: adminToken },
      signal: AbortSignal.timeout(2_000),
    });
    return response.ok;
  };
  const launch = async (): Promise<number> => {
    const begin = performance.now();
    rmSync(portFile, { force: true });
    await proc.spawn();
    try {
      await waitUntilReady(proc, ready, timeoutMs, 200);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
    return performance.now() - begin;
  };

  const startMs = await launch();
  if (port === 0) throw new HarnessError(name, 'did not report its port', logFile);
  return {
    url: `http://127.0.0.1:${port}`,
    adminToken,
    clientToken,
    productionClientToken,
    environment: 'development',
    logFile,
    startMs,
    stop: () => proc.stop('SIGTERM', 10_000),
    start: async () => {
      if (proc.running) return;
      // Same port as before, so clients configured with the old URL reconnect.
      proc = makeProcess();
      await launch();
    },
  };
}
