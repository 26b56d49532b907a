// Regression: a service whose start-up awaits `pool.start()` (or `vault.start()`) while nothing else keeps its
// event loop busy exited with code 13 ("unsettled top-level await") instead of retrying, because the back-off
// between start-up attempts used an unref'd timer. Found by the orders-service demo: two pods asking Vault for
// credentials at once made the first attempt fail and the pod vanished without a log line.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBed, type TestBed } from './helpers.ts';

const run = promisify(execFile);
let bed: TestBed;

beforeAll(async () => {
  bed = await createTestBed();
});
afterAll(async () => {
  await bed.close();
});

/** A child process that does nothing but await start(), like a service's main module. */
const CHILD = `
import pg from 'pg';
import { createRotatingPool, createVault } from '${join(import.meta.dirname, '..', 'src', 'index.ts')}';
const [endpoint, roleId, secretId, host, port, database] = process.argv.slice(1);
const vault = createVault({ endpoint, auth: { method: 'approle', roleId, secretId }, retryInitialDelayMs: 200 });
const pool = createRotatingPool({ vault, role: 'app', Pool: pg.Pool, pool: { host, port: Number(port), database, max: 1 } });
await pool.start();
const { rows } = await pool.query('SELECT count(*)::int AS n FROM items');
console.log('ROWS ' + rows[0].n);
await pool.close();
await vault.close();
`;

describe('start-up retries', () => {
  it('keep a process that only awaits pool.start() alive until the credentials work', async () => {
    const { roleId, secretId } = bed.vault.addAppRole('starter');
    // The first two credential requests fail the way a busy Vault answers: start() must back off and retry.
    bed.vault.inject({ kind: 'internal-error', path: 'database/creds/', times: 2 });
    const { host, port, database } = bed.pgSettings;
    const result = await run(
      process.execPath,
      ['--input-type=module', '-e', CHILD, bed.vault.address, roleId, secretId, host, String(port), database],
      { cwd: join(import.meta.dirname, '..'), timeout: 30_000 },
    ).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
    // Exit code 13 is Node's "the awaited start-up promise never settled because the event loop emptied".
    expect('code' in result ? result.code : 0, result.stderr).toBe(0);
    expect(result.stdout).toContain('ROWS 100');
  });
});
