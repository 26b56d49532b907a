// The Vault HTTP wire contract our client relies on (reference/vault.md §1). One suite runs against the dev server
// always and, when VAULT_ADDR (+ VAULT_TOKEN, a root token; KV v2 mounted at secret/ as in `vault server -dev`) is
// set, against that real Vault too. The database engine part needs PostgreSQL and runs against the dev server.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock, createVault } from '../src/index.ts';
import { DATABASE_EXPIRY_BUFFER_MS, createVaultDevServer, humanDuration, type VaultDevServer } from '../src/testing.ts';
import { createTestBed, liveRoles, until, type TestBed } from './helpers.ts';

interface Target {
  readonly address: string;
  readonly rootToken: string;
}

interface Raw {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Record<string, unknown> | null;
}

async function call(
  target: Target,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; bearer?: boolean } = {},
): Promise<Raw> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? target.rootToken : options.token;
  if (token !== null) {
    if (options.bearer === true) headers['authorization'] = `Bearer ${token}`;
    else headers['x-vault-token'] = token;
  }
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${target.address}/v1/${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: text.trim() === '' ? null : (JSON.parse(text) as Record<string, unknown>),
  };
}

function wireContract(name: string, target: () => Target): void {
  describe(name, () => {
    it('wraps every 200 in the full envelope, as JSON with a trailing newline and no-store', async () => {
      const reply = await call(target(), 'GET', 'auth/token/lookup-self');
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toMatch(/application\/json/);
      expect(reply.headers.get('cache-control')).toBe('no-store');
      expect(reply.text.endsWith('\n')).toBe(true);
      expect(reply.json).toMatchObject({
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        wrap_info: null,
        auth: null,
      });
      expect(reply.json!['request_id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(reply.json).toHaveProperty('warnings');
      expect((reply.json!['data'] as Record<string, unknown>)['policies']).toContain('root');
    });

    it('answers errors as {"errors": [...]} with the documented statuses', async () => {
      const missing = await call(target(), 'GET', 'auth/token/lookup-self', { token: null });
      expect(missing.status).toBe(403);
      expect(missing.json).toEqual({ errors: ['missing client token'] });
      const bad = await call(target(), 'GET', 'auth/token/lookup-self', { token: 'not-a-real-token' });
      expect(bad.status).toBe(403);
      expect(String((bad.json!['errors'] as string[])[0])).toMatch(/permission denied[\s\S]*invalid token/);
      const route = await call(target(), 'GET', 'nope-mount-7f3a/data/x');
      expect(route.status).toBe(404);
      expect(Array.isArray(route.json!['errors'])).toBe(true);
    });

    it('accepts Authorization: Bearer and treats PUT and POST alike', async () => {
      expect((await call(target(), 'GET', 'auth/token/lookup-self', { bearer: true })).status).toBe(200);
      const put = await call(target(), 'PUT', 'sys/leases/revoke', {
        body: { lease_id: 'database/creds/none/AAAAAAAAAAAAAAAAAAAAAAAA' },
      });
      const post = await call(target(), 'POST', 'sys/leases/revoke', {
        body: { lease_id: 'database/creds/none/AAAAAAAAAAAAAAAAAAAAAAAA' },
      });
      expect([put.status, post.status]).toEqual([204, 204]); // unknown lease: idempotent 204, no body
      expect(put.text).toBe('');
    });

    it('says "lease not found" when renewing an unknown lease', async () => {
      const reply = await call(target(), 'PUT', 'sys/leases/renew', {
        body: { lease_id: 'database/creds/none/AAAAAAAAAAAAAAAAAAAAAAAA', increment: 60 },
      });
      expect(reply.status).toBe(400);
      expect(String((reply.json!['errors'] as string[])[0])).toMatch(/lease not found/);
    });

    it('caps token renewal at the max TTL with the documented warning', async () => {
      const created = await call(target(), 'POST', 'auth/token/create', {
        body: { ttl: '60s', explicit_max_ttl: '90s', policies: ['default'] },
      });
      expect(created.status).toBe(200);
      const token = (created.json!['auth'] as { client_token: string }).client_token;
      const renewed = await call(target(), 'POST', 'auth/token/renew-self', { token, body: { increment: '1h' } });
      expect(renewed.status).toBe(200);
      const auth = renewed.json!['auth'] as { lease_duration: number; client_token: string };
      expect(auth.client_token).toBe(token);
      expect(auth.lease_duration).toBeLessThanOrEqual(90);
      expect((renewed.json!['warnings'] as string[]).join()).toMatch(
        /TTL of "1h" exceeded the effective max_ttl of "[0-9hms]+"; TTL value is capped accordingly/,
      );
      const lookup = await call(target(), 'GET', 'auth/token/lookup-self', { token });
      expect((lookup.json!['data'] as { ttl: number }).ttl).toBeLessThanOrEqual(90);
    });

    it('reads and writes KV v2 with versions, and a missing path is 404 {"errors":[]}', async () => {
      const path = `gantry-contract/${Date.now()}`;
      const written = await call(target(), 'POST', `secret/data/${path}`, { body: { data: { a: '1' } } });
      expect(written.status).toBe(200);
      expect((written.json!['data'] as { version: number }).version).toBe(1);
      const read = await call(target(), 'GET', `secret/data/${path}`);
      expect(read.json!['data']).toMatchObject({ data: { a: '1' }, metadata: { version: 1, destroyed: false } });
      const missing = await call(target(), 'GET', `secret/data/${path}-missing`);
      expect(missing.status).toBe(404);
      expect(missing.json).toEqual({ errors: [] });
    });

    it('reports sys/health unauthenticated', async () => {
      const reply = await call(target(), 'GET', 'sys/health', { token: null });
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ initialized: true, sealed: false, standby: false });
      expect(typeof reply.json!['version']).toBe('string');
    });

    it('works with createVault: token lookup, KV through the cache, lease errors classified', async () => {
      const vault = createVault({
        endpoint: target().address,
        auth: { method: 'token', token: target().rootToken },
        registry: null,
      });
      try {
        await vault.start();
        expect(vault.token()).toMatchObject({ generation: 1, expiresAt: null });
        await vault.write(`secret/data/gantry-contract/client`, { data: { b: '2' } });
        expect((await vault.kv().get('gantry-contract/client')).data).toEqual({ b: '2' });
        await expect(vault.renewLease('database/creds/none/AAAAAAAAAAAAAAAAAAAAAAAA', 60)).rejects.toMatchObject({
          kind: 'lease-terminal',
        });
      } finally {
        await vault.close();
      }
    });
  });
}

let devServer: VaultDevServer;
beforeAll(async () => {
  devServer = await createVaultDevServer();
});
afterAll(async () => devServer.close());

wireContract('wire contract: dev server', () => ({ address: devServer.address, rootToken: devServer.rootToken }));

const realVault = process.env['VAULT_ADDR'];
if (realVault !== undefined && realVault !== '') {
  wireContract(`wire contract: the real Vault at VAULT_ADDR (${realVault})`, () => ({
    address: realVault.replace(/\/+$/, ''),
    rootToken: process.env['VAULT_TOKEN'] ?? '',
  }));
}

describe('dev server: database secrets engine on real PostgreSQL', () => {
  let bed: TestBed;
  beforeAll(async () => {
    bed = await createTestBed({ defaultTtlSeconds: 60, maxTtlSeconds: 100 });
  });
  afterAll(async () => bed.close());
  const target = (): Target => ({ address: bed.vault.address, rootToken: bed.vault.rootToken });

  it('creates a LOGIN role per request with VALID UNTIL = lease expiry + 5 s and a Vault-shaped lease', async () => {
    const before = Date.now();
    const reply = await call(target(), 'GET', 'database/creds/app');
    expect(reply.status).toBe(200);
    const body = reply.json as {
      lease_id: string;
      lease_duration: number;
      renewable: boolean;
      data: { username: string; password: string };
      mount_type: string;
    };
    expect(body.lease_id).toMatch(/^database\/creds\/app\/[A-Za-z0-9]{24}$/);
    expect(body).toMatchObject({ lease_duration: 60, renewable: true, mount_type: 'database' });
    expect(body.data.username).toMatch(/^v-root-app-[A-Za-z0-9]{20}-\d{10}$/);
    expect(body.data.password).toMatch(/^A1a-[A-Za-z0-9]{16}$/);
    const { rows } = await bed.admin.query<{ until: Date }>(
      'SELECT rolvaliduntil AS until FROM pg_roles WHERE rolname = $1',
      [body.data.username],
    );
    const validUntil = rows[0]!.until.getTime();
    expect(validUntil).toBeGreaterThanOrEqual(
      Math.floor(before / 1000) * 1000 + 60_000 + DATABASE_EXPIRY_BUFFER_MS - 1_000,
    );
    expect(validUntil).toBeLessThanOrEqual(Date.now() + 60_000 + DATABASE_EXPIRY_BUFFER_MS);
    const client = new pg.Client({ ...bed.pgSettings, user: body.data.username, password: body.data.password });
    await client.connect();
    expect((await client.query('SELECT count(*) AS n FROM items')).rows[0]).toEqual({ n: '100' });
    await client.end();
    expect((await call(target(), 'POST', 'database/creds/app')).status).toBe(405);
    expect(await call(target(), 'GET', 'database/creds/nope')).toMatchObject({
      status: 400,
      json: { errors: ['unknown role: nope'] },
    });
  });

  it('renews from now, caps at max TTL with the warning, and moves VALID UNTIL', async () => {
    const creds = (await call(target(), 'GET', 'database/creds/app')).json as {
      lease_id: string;
      data: { username: string };
    };
    const renewed = await call(target(), 'PUT', 'sys/leases/renew', {
      body: { lease_id: creds.lease_id, increment: '10' },
    });
    expect(renewed.json).toMatchObject({
      lease_id: creds.lease_id,
      renewable: true,
      lease_duration: 10,
      data: null,
      warnings: null,
    });
    const capped = await call(target(), 'PUT', 'sys/leases/renew', {
      body: { lease_id: creds.lease_id, increment: '1h' },
    });
    expect((capped.json as { lease_duration: number }).lease_duration).toBeLessThanOrEqual(100);
    expect((capped.json!['warnings'] as string[])[0]).toMatch(
      /^TTL of "1h" exceeded the effective max_ttl of "1m\d+s"; TTL value is capped accordingly$/,
    );
    const lookup = await call(target(), 'PUT', 'sys/leases/lookup', { body: { lease_id: creds.lease_id } });
    expect(lookup.json!['data']).toMatchObject({ id: creds.lease_id, renewable: true });
    expect(humanDuration(3_669)).toBe('1h1m9s');
  });

  it('revokes by dropping the role while its session stays connected but powerless', async () => {
    const creds = (await call(target(), 'GET', 'database/creds/app')).json as {
      lease_id: string;
      data: { username: string; password: string };
    };
    const session = new pg.Client({ ...bed.pgSettings, user: creds.data.username, password: creds.data.password });
    session.on('error', () => undefined);
    await session.connect();
    const revoked = await call(target(), 'PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } });
    expect(revoked.status).toBe(204);
    expect(await liveRoles(bed.admin)).not.toContain(creds.data.username);
    await expect(session.query('SELECT count(*) FROM items')).rejects.toMatchObject({
      code: expect.stringMatching(/^(42501|42704)$/),
    });
    await session.end().catch(() => undefined);
    const again = await call(target(), 'PUT', 'sys/leases/renew', { body: { lease_id: creds.lease_id } });
    expect(again.json).toEqual({ errors: ['lease not found'] });
    const async = (await call(target(), 'GET', 'database/creds/app')).json as { lease_id: string };
    expect(
      (await call(target(), 'PUT', 'sys/leases/revoke', { body: { lease_id: async.lease_id, sync: false } })).status,
    ).toBe(202);
  });

  it('revokes every lease of a token when the token is revoked', async () => {
    const created = await call(target(), 'POST', 'auth/token/create', { body: { ttl: '1h' } });
    const token = (created.json!['auth'] as { client_token: string }).client_token;
    const creds = (await call(target(), 'GET', 'database/creds/app', { token })).json as { data: { username: string } };
    await call(target(), 'POST', 'auth/token/revoke-self', { token });
    expect(await liveRoles(bed.admin)).not.toContain(creds.data.username);
    expect((await call(target(), 'GET', 'auth/token/lookup-self', { token })).status).toBe(403);
  });
});

describe('dev server: expiration manager on an injected clock', () => {
  it('expires tokens and their leases on its own when the clock moves, and pauses while sealed', async () => {
    const clock = createManualClock();
    const revoked: string[] = [];
    const server = await createVaultDevServer({
      clock,
      database: { onRevoke: (user) => void revoked.push(user.username) },
    });
    try {
      server.addDatabaseRole('app', { defaultTtlSeconds: 600 });
      const { token, accessor } = server.createToken({ tokenTtlSeconds: 60, tokenMaxTtlSeconds: 60 });
      const target = { address: server.address, rootToken: token };
      const creds = (await call(target, 'GET', 'database/creds/app')).json as {
        lease_id: string;
        data: { username: string };
      };
      server.seal();
      await server.advance(61_000);
      expect(revoked).toEqual([]); // sealed: nothing is revoked
      await server.unseal();
      expect(server.tokenState(accessor)!.revoked).toBe(true);
      expect(server.leaseState(creds.lease_id)).toMatchObject({ revoked: true });
      expect(revoked).toEqual([creds.data.username]);
      const lease = server.leases()[0]!;
      const second = (await call({ address: server.address, rootToken: server.rootToken }, 'GET', 'database/creds/app'))
        .json as { lease_id: string };
      await clock.advance(601_000);
      await until(() => server.leaseState(second.lease_id)!.revoked, 2_000, 'lease expiry');
      expect(lease.revokedAt).toBeLessThan(lease.expireTime);
    } finally {
      await server.close();
    }
  });

  it('injects faults once or N times, per path and method', async () => {
    const server = await createVaultDevServer();
    try {
      const target = { address: server.address, rootToken: server.rootToken };
      const fault = server.inject({
        kind: 'rate-limit',
        path: 'auth/token/',
        method: 'GET',
        times: 2,
        retryAfterSeconds: 9,
      });
      const first = await call(target, 'GET', 'auth/token/lookup-self');
      expect(first.status).toBe(429);
      expect(first.headers.get('retry-after')).toBe('9');
      expect(first.json).toEqual({ errors: ['request path "auth/token/lookup-self": rate limit quota exceeded'] });
      expect((await call(target, 'GET', 'sys/health')).status).toBe(200); // other path
      expect((await call(target, 'GET', 'auth/token/lookup-self')).status).toBe(429);
      expect((await call(target, 'GET', 'auth/token/lookup-self')).status).toBe(200); // used up
      expect(fault.hits).toBe(2);
      server.inject({ kind: 'standby', times: 1 });
      expect((await call(target, 'GET', 'sys/health')).status).toBe(429);
      server.seal();
      expect((await call(target, 'GET', 'sys/health?sealedcode=299')).status).toBe(299);
      expect(await call(target, 'GET', 'auth/token/lookup-self')).toMatchObject({
        status: 503,
        json: { errors: ['Vault is sealed'] },
      });
      expect(server.requests.every((request) => request.headers['x-vault-token'] !== server.rootToken)).toBe(true);
    } finally {
      await server.close();
    }
  });
});
