// Redaction proven the way an auditor would: plant a secret everywhere a developer might log it, then grep the
// captured output for it.
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyTelemetry } from '../src/fastify.ts';
import { createLogger } from '../src/logger.ts';
import { createTestTelemetry, LogCapture, type TestTelemetry } from '../src/testing.ts';

const SECRET = 'pl4nted-S3CRET-7f1c';
const identity = { name: 'svc', version: '1.0.0', environment: 'test', instanceId: 'pod-1' };

let t: TestTelemetry | undefined;
afterEach(async () => {
  await t?.shutdown();
  t = undefined;
});

describe('secret redaction', () => {
  it('keeps a planted secret out of every log line, wherever it was put', () => {
    const logs = new LogCapture();
    const logger = createLogger(identity, {
      destination: logs,
      redactKeys: ['session'],
      base: { vault_token: SECRET },
    });
    logger.info({ password: SECRET, user: 'ann' }, 'login');
    logger.info({ db: { connection: { host: 'db', passwd: SECRET } } }, 'nested');
    logger.info(
      { headers: { authorization: `Bearer ${SECRET}`, cookie: `sid=${SECRET}`, accept: 'text/html' } },
      'headers',
    );
    logger.info({ aws_secret_access_key: SECRET, stripe_api_key: SECRET, apiKey: SECRET, privateKey: SECRET }, 'keys');
    logger.info({ items: [{ token: SECRET }, { refresh_token: SECRET }] }, 'array');
    logger.info({ clientSecret: SECRET, credentials: { anything: SECRET }, session: SECRET }, 'more');
    logger.info({ url: `/callback?code=1&access_token=${SECRET}&state=ok` }, 'query');
    logger.child({ db_password: SECRET }).warn({ event: 'db.retry' }, 'child bindings');
    const text = logs.text;
    expect(text).not.toContain(SECRET);
    const lines = logs.lines;
    expect(lines).toHaveLength(8);
    // What is not secret survives, and redacted fields say so.
    expect(lines[0]).toMatchObject({ user: 'ann', password: '[REDACTED]', service: 'svc', vault_token: '[REDACTED]' });
    expect(lines[1]).toMatchObject({ db: { connection: { host: 'db', passwd: '[REDACTED]' } } });
    expect(lines[2]).toMatchObject({ headers: { accept: 'text/html', authorization: '[REDACTED]' } });
    expect(lines[6]!['url']).toBe('/callback?code=1&access_token=[REDACTED]&state=ok');
    expect(lines[7]).toMatchObject({ event: 'db.retry', db_password: '[REDACTED]' });
  });

  it('keeps secrets in headers and query strings out of request logs, fastify’s own included', async () => {
    t = createTestTelemetry({ tracing: false });
    const app = Fastify({ loggerInstance: t.telemetry.logger });
    await app.register(fastifyTelemetry, { telemetry: t.telemetry });
    app.post('/login', async (request) => {
      request.log.info({ body: request.body, headers: request.headers }, 'login attempt');
      return { ok: true };
    });
    await app.ready();
    const response = await app.inject({
      method: 'POST',
      url: `/login?api_key=${SECRET}`,
      headers: { authorization: `Basic ${SECRET}`, 'x-tenant-id': 'acme' },
      payload: { username: 'ann', password: SECRET },
    });
    expect(response.statusCode).toBe(200);
    expect(t.logs.text).toContain('login attempt');
    expect(t.logs.text).toContain('ann');
    expect(t.logs.text).not.toContain(SECRET);
    await app.close();
  });

  it('builds a child of a child on its parent (regression: a bound child() dropped fastify’s serializers)', () => {
    const logs = new LogCapture();
    const logger = createLogger(identity, { destination: logs });
    logger
      .child({ request_id: 'r-1' }, { serializers: { req: () => ({ method: 'GET' }) } })
      .child({ db_password: SECRET })
      .info({ req: { headers: {} } }, 'nested child');
    expect(logs.lines[0]).toMatchObject({ request_id: 'r-1', db_password: '[REDACTED]', req: { method: 'GET' } });
  });

  it('writes the secret when redaction is turned off (so the test above can fail)', () => {
    const logs = new LogCapture();
    createLogger(identity, { destination: logs, redact: false }).info({ password: SECRET }, 'unsafe');
    expect(logs.text).toContain(SECRET);
  });
});
