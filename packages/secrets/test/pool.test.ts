// The pg.Pool surface of the rotating pool on real PostgreSQL: checked-out clients and queued waiters survive a
// rotation, a server-terminated client cannot crash the process, leases are renewed (moving VALID UNTIL) until
// Vault caps them, warm-up rides out replica lag, and close() drains before it revokes.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createRotatingPool, createVault, isSecretsError, type RotatingPool, type Vault } from '../src/index.ts';
import { server } from '@gantry/test-harness/vitest';
import { createVaultDevServer, postgresRoleHooks } from '../src/testing.ts';
import { captureLogger, createTestBed, delay, events, liveRoles, until, type TestBed } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  role: Parameters<typeof createTestBed>[0] = { defaultTtlSeconds: 120, maxTtlSeconds: 600 },
  poolOptions: Partial<Parameters<typeof createRotatingPool>[0]> = {},
  max = 4,
): Promise<{ bed: TestBed; vault: Vault; pool: RotatingPool; logger: ReturnType<typeof captureLogger> }> {
  const bed = await createTestBed(role);
  cleanups.push(() => bed.close());
  const vault = createVault({
    endpoint: bed.vault.address,
    auth: { method: 'token', token: bed.vault.rootToken },
    registry: null,
    requestTimeoutMs: 1_000,
  });
  cleanups.push(() => vault.close());
  const logger = captureLogger();
  const pool = createRotatingPool({
    vault,
    role: 'app',
    pool: { ...bed.pgSettings, max },
    drainTimeoutMs: 2_000,
    warmupTimeoutMs: 2_000,
    safetyMarginMs: 200,
    registry: null,
    logger,
    ...poolOptions,
  });
  cleanups.push(() => pool.close());
  return { bed, vault, pool, logger };
}

const currentUser = async (pool: { query: RotatingPool['query'] }): Promise<string> =>
  (await pool.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;

describe('rotating pool', () => {
  it('lets a client checked out before a rotation finish its transaction; the lease is revoked only after release', async () => {
    const { bed, pool } = await setup();
    const client = await pool.connect();
    await client.query('BEGIN');
    const oldUser = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;
    await pool.rotate();
    expect(await currentUser(pool)).not.toBe(oldUser);
    await delay(300);
    const oldLease = bed.vault.leases().find((lease) => lease.username === oldUser)!;
    expect(oldLease.revoked).toBe(false); // still checked out: not drained, not revoked
    expect((await client.query('SELECT count(*) FROM items')).rows[0]).toEqual({ count: '100' });
    await client.query('COMMIT');
    client.release();
    await until(async () => !(await liveRoles(bed.admin)).includes(oldUser), 5_000, 'the old role dropped');
    expect(bed.vault.leaseState(oldLease.leaseId)!.revoked).toBe(true);
  });

  it('serves callers queued on the old pool instead of stranding them', async () => {
    const { pool } = await setup(undefined, {}, 1);
    const held = await pool.connect();
    const queued = pool.query<{ user: string }>('SELECT current_user AS user'); // waits on the old pool
    await pool.rotate();
    expect(pool.waitingCount).toBe(1);
    await delay(200);
    held.release();
    const { rows } = await queued;
    expect(rows[0]!.user).toMatch(/^v-/);
  });

  it('supports the callback forms of query and connect', async () => {
    const { pool } = await setup();
    const viaQuery = await new Promise<string>((resolve, reject) => {
      pool.query('SELECT 1 AS one', (error: Error | undefined, result: pg.QueryResult<{ one: number }>) =>
        error ? reject(error) : resolve(String(result.rows[0]!.one)),
      );
    });
    expect(viaQuery).toBe('1');
    const viaConnect = await new Promise<string>((resolve, reject) => {
      pool.connect((error, client, done) => {
        if (error || client === undefined) return reject(error ?? new Error('no client'));
        client.query('SELECT 2 AS two').then((result) => {
          done();
          resolve(String(result.rows[0].two));
        }, reject);
      });
    });
    expect(viaConnect).toBe('2');
  });

  it('does not crash the process when the server terminates a checked-out client', async () => {
    const { bed, pool, logger } = await setup();
    const client = await pool.connect();
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await bed.admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await until(() => events(logger.lines, 'secrets.pool.client_error').length > 0, 5_000, 'the client error');
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release(new Error('terminated'));
    expect(await currentUser(pool)).toMatch(/^v-/);
  });

  it('emits drain-timeout for an old pool still busy at the deadline, and ends it once released', async () => {
    const { bed, pool } = await setup(undefined, { drainTimeoutMs: 300 });
    const timeouts: { checkedOut: number }[] = [];
    pool.on('drain-timeout', (event) => timeouts.push(event));
    const client = await pool.connect();
    const oldUser = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;
    await pool.rotate();
    await until(() => timeouts.length === 1, 5_000, 'drain-timeout');
    expect(timeouts[0]!.checkedOut).toBe(1);
    expect(bed.vault.leases().find((lease) => lease.username === oldUser)!.revoked).toBe(false);
    client.release();
    await until(
      () => bed.vault.leases().find((lease) => lease.username === oldUser)!.revoked,
      5_000,
      'revoked after release',
    );
  });

  it('renews the lease (moving VALID UNTIL) until Vault caps it, then rotates', { timeout: 30_000 }, async () => {
    // Renewed at 3.6–4.2 s and 7.2–8.4 s (the second one capped at 12 s), rotated at 10.5 s: 1.5 s to obtain, warm,
    // switch and revoke before the cap, enough on a busy machine.
    const { bed, pool, logger } = await setup({ defaultTtlSeconds: 6, maxTtlSeconds: 12 }, { rotationLeadMs: 1_500 });
    await pool.start();
    const user = pool.state().username!;
    const validUntil = async () =>
      (
        await bed.admin.query<{ v: Date }>('SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1', [user])
      ).rows[0]?.v.getTime() ?? 0;
    const initial = await validUntil();
    await until(() => events(logger.lines, 'secrets.lease.renewed').length >= 1, 8_000, 'a renewal');
    expect(await validUntil()).toBeGreaterThan(initial);
    await until(() => pool.state().generation === 2, 15_000, 'a rotation after the cap');
    const renewed = events(logger.lines, 'secrets.lease.renewed');
    expect(renewed.some((line) => line.fields['truncated'] === true)).toBe(true);
    const first = bed.vault.leases().find((lease) => lease.username === user)!;
    await until(() => bed.vault.leaseState(first.leaseId)!.revoked, 5_000, 'the first lease revoked');
    expect(bed.vault.leaseState(first.leaseId)!.revokedAt!).toBeLessThan(first.issueTime + 12_000); // before its max TTL
  });

  it('rotates at once when a renewal finds the lease gone', { timeout: 20_000 }, async () => {
    const { bed, vault, pool } = await setup({ defaultTtlSeconds: 3, maxTtlSeconds: 60 }, { rotationLeadMs: 500 });
    await pool.start();
    const first = pool.state();
    const lease = bed.vault.leases().find((item) => item.username === first.username)!;
    await vault.revokeLease(lease.leaseId); // out of band
    await until(() => pool.state().generation === 2, 8_000, 'rotation after lease not found');
    expect(pool.state().effectiveExpiresAt!).toBeGreaterThan(first.effectiveExpiresAt!);
  });

  it('retries new credentials the database does not accept yet (replica lag) before switching', async () => {
    const bed = await createTestBed({ defaultTtlSeconds: 120 });
    cleanups.push(() => bed.close());
    // A second dev server whose role creation reaches the database 400 ms late.
    const admin = server('postgres');
    const hooks = postgresRoleHooks({ ...bed.pgSettings, user: admin.user, password: admin.password });
    cleanups.push(() => hooks.close());
    const lagging = await createVaultDevServer({
      database: {
        onCreate: (user, password) => {
          setTimeout(() => void hooks.onCreate(user, password), 400);
        },
        onRevoke: (user) => hooks.onRevoke(user),
      },
    });
    cleanups.push(() => lagging.close());
    lagging.addDatabaseRole('app', {
      creationStatements: [
        'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\'; GRANT SELECT ON items TO "{{name}}";',
      ],
    });
    const vault = createVault({
      endpoint: lagging.address,
      auth: { method: 'token', token: lagging.rootToken },
      registry: null,
    });
    cleanups.push(() => vault.close());
    const logger = captureLogger();
    const pool = createRotatingPool({
      vault,
      role: 'app',
      pool: bed.pgSettings,
      warmupTimeoutMs: 5_000,
      registry: null,
      logger,
    });
    cleanups.push(() => pool.close());
    await pool.start();
    expect(await currentUser(pool)).toMatch(/^v-/);
    expect(events(logger.lines, 'secrets.rotation.warmup_retry').length).toBeGreaterThan(0);
  });

  it('warms as many connections as the old pool had open, at most warmConcurrency at a time, before the switch', async () => {
    let inFlight = 0;
    let peak = 0;
    class CountingPool extends pg.Pool {
      override connect(): Promise<pg.PoolClient>;
      override connect(callback: Parameters<pg.Pool['connect']>[0]): void;
      override connect(callback?: Parameters<pg.Pool['connect']>[0]): Promise<pg.PoolClient> | void {
        if (callback !== undefined) return super.connect(callback);
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        return super.connect().finally(() => (inFlight -= 1));
      }
    }
    // A warm-up deadline no busy machine reaches: this test counts connections, it does not time them.
    const { bed, pool } = await setup(
      undefined,
      { Pool: CountingPool, warmConcurrency: 2, warmupTimeoutMs: 10_000 },
      6,
    );
    await pool.start();
    const clients = await Promise.all(Array.from({ length: 6 }, () => pool.connect()));
    for (const client of clients) client.release();
    const oldUser = await currentUser(pool);
    peak = 0;
    const opened = new Map<string, number>();
    pool.on('connect', (client) => {
      const user = (client as unknown as { user: string }).user;
      opened.set(user, (opened.get(user) ?? 0) + 1);
    });
    let atSwitch = -1;
    pool.once('rotated', ({ username }) => (atSwitch = opened.get(username) ?? 0));
    await pool.rotate();
    expect(atSwitch).toBe(6); // all six open before any caller moved over
    expect(peak).toBe(2);
    const newUser = await currentUser(pool);
    expect(newUser).not.toBe(oldUser);
    const { rows } = await bed.admin.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1',
      [newUser],
    );
    expect(Number(rows[0]!.n)).toBe(6);
  });

  it('fails start() with GANTRY_SECRETS_STARTUP_FAILED for an unknown role without retrying', async () => {
    const { vault } = await setup();
    const pool = createRotatingPool({ vault, role: 'nope', registry: null });
    const started = Date.now();
    const error: unknown = await pool.start().catch((failure: unknown) => failure);
    expect(isSecretsError(error) && error.code).toBe('GANTRY_SECRETS_STARTUP_FAILED');
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(pool.query('SELECT 1')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_STARTUP_FAILED' });
  });

  it('closes in order: timers stop, pools drain and end, then leases are revoked', async () => {
    const { bed, vault, pool, logger } = await setup();
    const client = await pool.connect();
    const heldUser = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;
    const closing = pool.close();
    await delay(200);
    expect(pool.ending).toBe(true);
    expect(bed.vault.leases().find((lease) => lease.username === heldUser)!.revoked).toBe(false); // a client is still out
    expect((await client.query('SELECT count(*) FROM items')).rowCount).toBe(1);
    client.release();
    await closing;
    expect(pool.ended).toBe(true);
    expect(bed.vault.leases().every((lease) => lease.revoked)).toBe(true);
    expect(await liveRoles(bed.admin, bed.vault)).toEqual([]);
    const order = logger.lines
      .map((line) => line.fields['event'])
      .filter((event) => event === 'secrets.pool.drained' || event === 'secrets.lease.revoked');
    expect(order.indexOf('secrets.lease.revoked')).toBeGreaterThan(order.indexOf('secrets.pool.drained'));
    await expect(pool.query('SELECT 1')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_CLOSED' });
    await pool.close(); // idempotent
    expect((await vault.databaseCredentials({ role: 'app' })).username).toMatch(/^v-/); // the vault stays open
  });

  it("with revokeMode 'shorten', cuts the old lease to shortenToSeconds instead of revoking it", async () => {
    const { bed, pool } = await setup(undefined, { revokeMode: 'shorten', shortenToSeconds: 7 });
    await pool.start();
    const oldUser = pool.state().username!;
    await pool.rotate();
    await until(
      () => bed.vault.requests.some((request) => request.path === 'sys/leases/renew'),
      5_000,
      'the shortening renewal',
    );
    const old = bed.vault.leases().find((lease) => lease.username === oldUser)!;
    expect(old.revoked).toBe(false);
    expect(old.expireTime - Date.now()).toBeLessThanOrEqual(7_000);
    expect(bed.vault.requests.some((request) => request.path === 'sys/leases/revoke')).toBe(false);
  });

  it('offers shutdown hooks that close the pool, then the Vault client', async () => {
    const { bed, vault, pool } = await setup();
    await pool.start();
    const hooks = [vault.shutdownHook(), pool.shutdownHook()]; // registered in this order, run in reverse
    for (const hook of hooks.reverse()) await hook.run(AbortSignal.timeout(hook.timeoutMs ?? 5_000));
    expect(pool.ended).toBe(true);
    expect(bed.vault.leases().every((lease) => lease.revoked)).toBe(true);
    await expect(vault.read('secret/data/x')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_CLOSED' });
  });

  it('forwards pg.Pool events and logs idle-client errors when nobody listens', async () => {
    const { bed, pool, logger } = await setup();
    const seen: string[] = [];
    for (const name of ['connect', 'acquire', 'release', 'remove'] as const) pool.on(name, () => seen.push(name));
    await pool.query('SELECT 1');
    const pids = (await bed.admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE usename LIKE 'v-%'"))
      .rows;
    for (const { pid } of pids) await bed.admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await until(() => events(logger.lines, 'secrets.pool.idle_client_error').length > 0, 5_000, 'the idle error');
    await until(() => seen.includes('remove'), 5_000, 'the remove event');
    expect(seen).toEqual(expect.arrayContaining(['connect', 'acquire', 'release', 'remove']));
    expect(await currentUser(pool)).toMatch(/^v-/);
  });
});
