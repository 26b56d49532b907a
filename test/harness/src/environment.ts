import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above test/harness/src). */
export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Cache shared by runs: the Kafka jars and anything else that is slow to fetch. Git-ignored. */
export const CACHE_DIR = process.env['GANTRY_CACHE_DIR'] ?? join(REPOSITORY_ROOT, '.cache');

/** Keeps the logs of this many past runs under the harness folder in the system temp directory. */
const KEPT_RUNS = 5;

/** Asks the kernel for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * A folder for one harness run: logs and data of the servers it starts. World-traversable so that a server
 * running as another user (postgres when we are root) can reach its own sub-folder.
 */
export function createRunDirectory(label: string): string {
  const base = join(tmpdir(), 'gantry-harness');
  mkdirSync(base, { recursive: true });
  chmodSync(base, 0o755);
  pruneOldRuns(base);
  const dir = mkdtempSync(join(base, `${label}-`));
  chmodSync(dir, 0o755);
  return dir;
}

function pruneOldRuns(base: string): void {
  let entries: { path: string; mtime: number }[];
  try {
    entries = readdirSync(base).map((name) => {
      const path = join(base, name);
      return { path, mtime: statSync(path).mtimeMs };
    });
  } catch {
    return;
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  const anHourAgo = Date.now() - 3_600_000;
  for (const entry of entries.slice(KEPT_RUNS)) {
    // Another run may still be using a recent folder; only old ones go.
    if (entry.mtime < anHourAgo) rmSync(entry.path, { recursive: true, force: true });
  }
}

/** The user a server process should run as: `postgres` when we are root (initdb refuses root), else ourselves. */
export interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  readonly name: string;
}

/** Resolves the unprivileged account to run PostgreSQL under. */
export function postgresRunAs(): RunAs {
  if (process.getuid?.() !== 0) return { name: userInfo().username };
  const lookup = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: lookup('-u'), gid: lookup('-g'), name: 'postgres' };
  } catch {
    // No such user yet: as root we may create it, a system account without a home or a shell.
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return { uid: lookup('-u'), gid: lookup('-g'), name: 'postgres' };
  }
}

/** Creates `dir` owned by `runAs` (when it names another user). */
export function makeOwnedDirectory(dir: string, runAs: RunAs): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined && runAs.gid !== undefined) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}
