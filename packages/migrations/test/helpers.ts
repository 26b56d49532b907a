// Shared helpers of the integration tests: a fresh database per file, migration folders written on the fly,
// and a pool that the test closes.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';

/** A fresh database on the shared server. */
export async function freshDatabase(prefix: string): Promise<{ url: string; pool: pg.Pool }> {
  const database = await createDatabase(server('postgres'), prefix);
  const pool = new pg.Pool({ connectionString: database.url, max: 8 });
  pool.on('error', () => undefined);
  return { url: database.url, pool };
}

const WORK = join(import.meta.dirname, '.work');

/**
 * Writes migration files into a new folder under test/.work (inside the package, so a backfill step can import
 * '@gantry/migrations' by name). Returns the folder and a function to add or change files.
 */
export function migrationFolder(files: Readonly<Record<string, string>> = {}): {
  directory: string;
  write(name: string, content: string): void;
  remove(): void;
} {
  const directory = join(WORK, randomBytes(6).toString('hex'));
  mkdirSync(directory, { recursive: true });
  const write = (name: string, content: string): void => {
    writeFileSync(join(directory, name), content);
  };
  for (const [name, content] of Object.entries(files)) write(name, content);
  return { directory, write, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

/** Resolves when `predicate` returns true, polling every 50 ms, or throws after `timeoutMs`. */
export async function waitFor(
  predicate: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Path of the CLI entry point. */
export const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
