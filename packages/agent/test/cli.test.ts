// The gantry-agent command: configuration layering (file ← env ← flags), exit code 2 naming the field, --json
// output, pod identity from downward API files, and a real run against the test app stopped by SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@gantry/test-harness';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './app.ts';
import type { JsonBody } from './helpers.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const directory = mkdtempSync(join(tmpdir(), 'gantry-agent-cli-'));

function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe('gantry-agent CLI', () => {
  it('prints help and its version', () => {
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: gantry-agent');
    const version = run(['version', '--json']);
    expect(JSON.parse(version.stdout)).toMatchObject({
      name: '@gantry/agent',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
  });

  it('exits 2 naming the field for a bad value in a YAML file, an env variable or a flag', () => {
    const file = join(directory, 'bad.yaml');
    writeFileSync(file, 'app:\n  url: http://127.0.0.1:8080\npolicy:\n  compare:\n    alpha: 2\n');
    const fromFile = run(['check-config', '--config', file, '--json']);
    expect(fromFile.code).toBe(2);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({
      valid: false,
      code: 'GANTRY_AGENT_INVALID_OPTION',
      field: 'policy.compare.alpha',
    });
    expect(fromFile.stderr).toContain('policy.compare.alpha');
    const fromEnv = run(['check-config'], { GANTRY_AGENT_APP_URL: 'ftp://nope' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('(app.url)');
    const fromFlag = run(['check-config', '--port', 'eighty']);
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toContain('listen.port');
    const unknownKey = join(directory, 'unknown.json');
    writeFileSync(unknownKey, JSON.stringify({ polcy: {} }));
    expect(run(['check-config', '-c', unknownKey]).stderr).toContain('Unknown option `polcy`');
    const calendar = join(directory, 'calendar.yaml');
    writeFileSync(
      calendar,
      'policy:\n  calendars:\n    - name: x\n      rrule: "FREQ=SOMETIMES"\n      duration: 1h\n',
    );
    const badRule = run(['check-config', '-c', calendar, '--json']);
    expect(badRule.code).toBe(2);
    expect(JSON.parse(badRule.stdout)).toMatchObject({
      code: 'GANTRY_AGENT_INVALID_CALENDAR',
      field: 'policy.calendars[0].rrule',
    });
    expect(run(['check-config', '-c', join(directory, 'missing.yaml')]).code).toBe(2);
    expect(run(['--no-such-flag']).code).toBe(2);
  });

  it('layers file ← env ← flags and hides tokens in check-config --json', () => {
    const file = join(directory, 'good.yaml');
    writeFileSync(
      file,
      [
        'app: { url: "http://127.0.0.1:9000" }',
        'intervalMs: 10s',
        'auth: { token: "file-token-0123456789" }',
        'policy:',
        '  slo: { maxErrorRate: 0.02 }',
        '  calendars:',
        '    - { name: finance-month-end, timeZone: Europe/Berlin, rrule: "DTSTART:20260101T180000\\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-2", duration: 60h }',
      ].join('\n'),
    );
    const result = run(['check-config', '-c', file, '--json', '--interval', '2s'], {
      GANTRY_AGENT_APP_URL: 'http://127.0.0.1:9100',
      GANTRY_AGENT_INTERVAL: '7s',
    });
    expect(result.code).toBe(0);
    const { config } = JSON.parse(result.stdout);
    expect(config.app.url).toBe('http://127.0.0.1:9100');
    expect(config.intervalMs).toBe(2_000);
    expect(config.auth).toEqual({ token: '(set)', flaggerToken: '(set)' });
    expect(result.stdout).not.toContain('file-token');
    expect(config.policy.slo.maxErrorRate).toBe(0.02);
    expect(config.policy.calendars[0].name).toBe('finance-month-end');
  });

  it(
    'runs against an app with identity from downward API files, serves /version, and stops on SIGTERM',
    { timeout: 60_000 },
    async () => {
      const app = await startTestApp({ version: '3.1.4' });
      apps.push(app);
      const podinfo = join(directory, 'podinfo');
      mkdirSync(podinfo, { recursive: true });
      writeFileSync(
        join(podinfo, 'labels'),
        'app.kubernetes.io/name="orders"\nrollouts-pod-template-hash="6f9989bdd5"\n',
      );
      writeFileSync(join(podinfo, 'name'), 'orders-6f9989bdd5-x7k2p');
      writeFileSync(join(podinfo, 'namespace'), 'shop');
      const tokenFile = join(directory, 'token');
      writeFileSync(tokenFile, 'secret-token-from-file-0001\n');
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          CLI,
          '--app-url',
          app.url,
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--interval',
          '200ms',
          '--token-file',
          tokenFile,
        ],
        {
          env: { PATH: process.env['PATH'] ?? '', GANTRY_AGENT_PODINFO_DIR: podinfo, GANTRY_AGENT_LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        let version: Record<string, unknown> | undefined;
        // The server listens before the first scrape completes; wait until the app's version shows.
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && version?.['version'] == null) {
          try {
            const response = await fetch(`http://127.0.0.1:${port}/version`);
            if (response.ok) version = (await response.json()) as Record<string, unknown>;
          } catch {
            // not listening yet
          }
          if (version?.['version'] == null) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(version).toMatchObject({
          service: 'orders',
          version: '3.1.4',
          podTemplateHash: '6f9989bdd5',
          pod: 'orders-6f9989bdd5-x7k2p',
          namespace: 'shop',
        });
        expect((await fetch(`http://127.0.0.1:${port}/gate/v1/policy`)).status).toBe(401);
        const policy = await fetch(`http://127.0.0.1:${port}/gate/v1/policy`, {
          headers: { authorization: 'Bearer secret-token-from-file-0001' },
        });
        expect(policy.status).toBe(200);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(metrics).toContain('gantry_agent_process_resident_memory_bytes');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      const lines = output
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { event?: string });
      expect(lines.map((line) => line.event)).toEqual(
        expect.arrayContaining(['agent.started', 'agent.signal', 'agent.stopped']),
      );
      expect(output).not.toContain('secret-token-from-file');
    },
  );

  it(
    'reloads the policy on SIGHUP (audited) and keeps it when the new file is invalid',
    { timeout: 60_000 },
    async () => {
      const app = await startTestApp();
      apps.push(app);
      const file = join(directory, 'reload.yaml');
      const token = 'reload-token-0123456789';
      writeFileSync(
        file,
        `app: { url: "${app.url}" }\nauth: { token: ${token} }\npolicy: { slo: { maxErrorRate: 0.01 } }\n`,
      );
      const port = await freePort();
      const child = spawn(process.execPath, [CLI, '-c', file, '--host', '127.0.0.1', '--port', String(port)], {
        env: { PATH: process.env['PATH'] ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const get = async (path: string) => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return (await response.json()) as JsonBody;
      };
      const until = async (condition: () => Promise<boolean>) => {
        // A deadline, not 100 attempts: a contended machine can take longer than 10 s to start the CLI.
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          try {
            if (await condition()) return;
          } catch {
            // not listening yet
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        throw new Error(`condition not met in time; agent output:\n${output}`);
      };
      try {
        await until(async () => (await get('/gate/v1/policy'))['policy'].slo.maxErrorRate === 0.01);
        writeFileSync(
          file,
          `app: { url: "${app.url}" }\nauth: { token: ${token} }\npolicy: { slo: { maxErrorRate: 0.05 } }\n`,
        );
        child.kill('SIGHUP');
        await until(async () => (await get('/gate/v1/policy'))['policy'].slo.maxErrorRate === 0.05);
        const audit = await get('/gate/v1/audit');
        expect(
          audit['entries'].map((entry: { action: string; actor: string }) => `${entry.action}:${entry.actor}`),
        ).toEqual(['policy.updated:SIGHUP']);
        writeFileSync(file, `policy: { compare: { alpha: 2 } }\n`);
        child.kill('SIGHUP');
        await until(async () => output.includes('agent.policy.reload_failed'));
        expect((await get('/gate/v1/policy'))['policy'].slo.maxErrorRate).toBe(0.05);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    },
  );

  it(
    'regression: a SIGHUP while the first cycle still ran killed the agent (handlers were installed after start)',
    { timeout: 60_000 },
    async () => {
      // An app that never answers: start() serves HTTP at once but waits for its first scrape (up to timeoutMs).
      const hanging = createServer(() => undefined);
      await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
      const appUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      const file = join(directory, 'early-signal.yaml');
      const token = 'early-signal-token-0123456789';
      writeFileSync(
        file,
        `app: { url: "${appUrl}", timeoutMs: 20s }\nauth: { token: ${token} }\npolicy: { slo: { maxErrorRate: 0.01 } }\n`,
      );
      const port = await freePort();
      const child = spawn(process.execPath, [CLI, '-c', file, '--host', '127.0.0.1', '--port', String(port)], {
        env: { PATH: process.env['PATH'] ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const policy = async (): Promise<JsonBody> =>
        (await (
          await fetch(`http://127.0.0.1:${port}/gate/v1/policy`, { headers: { authorization: `Bearer ${token}` } })
        ).json()) as JsonBody;
      try {
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (Date.now() > deadline) throw new Error(`the agent never listened:\n${output}`);
          try {
            if ((await policy())['policy'].slo.maxErrorRate === 0.01) break;
          } catch {
            // not listening yet
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        writeFileSync(
          file,
          `app: { url: "${appUrl}", timeoutMs: 20s }\nauth: { token: ${token} }\npolicy: { slo: { maxErrorRate: 0.05 } }\n`,
        );
        child.kill('SIGHUP');
        for (;;) {
          if (Date.now() > deadline) throw new Error(`the policy was never reloaded:\n${output}`);
          const result = await Promise.race([
            exited.then((how) => ({ exited: how })),
            policy().then(
              (body) => ({ policy: body['policy'].slo.maxErrorRate as number }),
              // A dead agent resets the connection; the exit above says why.
              () => new Promise<never>(() => undefined),
            ),
          ]);
          expect(result, output).not.toHaveProperty('exited');
          if ('policy' in result && result.policy === 0.05) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // Let the first scrape fail now, so the stop does not wait for its 20 s timeout.
        hanging.closeAllConnections();
        child.kill('SIGTERM');
        expect(await exited, output).toEqual({ code: 0, signal: null });
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        hanging.closeAllConnections();
        hanging.close();
      }
    },
  );
});
