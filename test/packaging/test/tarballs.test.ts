// What users get from npm: every package packed as it would be published, installed with `npm install` into a
// fresh project, then used through its built files only. Tests elsewhere run from src and cannot see bundling
// bugs (a CJS build that gave each entry its own copy of the core; an ESM CLI build whose `require` of rrule became
// a throwing stub). Dependencies come from a registry on loopback serving the workspace's own downloads, so the
// install needs no network.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalRegistry, type LocalRegistry } from '../src/local-registry.ts';
import { packWorkspace, type PackedPackage } from '../src/tarballs.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
/** Peers a service installs next to our packages (the optional ones our entry points and fixtures use). */
const CONSUMER_DEPENDENCIES = ['fastify', 'pg', '@openfeature/server-sdk'];
/** Entry points that are not libraries: `--import` preloads, tested on their own below. */
const SIDE_EFFECT_ENTRIES = new Set(['@gantry/telemetry/register']);

/** What touching each entry returns (see fixtures/touches.cjs), the same from ESM and CommonJS. */
const TOUCHED: Readonly<Record<string, string | RegExp>> = {
  '@gantry/health': 'smoke@1.2.3',
  '@gantry/health/fastify': 'function',
  '@gantry/health/node-http': 'function',
  '@gantry/health/testing': 'number',
  '@gantry/telemetry': 'smoke',
  '@gantry/telemetry/fastify': 'function',
  '@gantry/telemetry/testing': 'spans=1',
  '@gantry/flags': 'smoke',
  '@gantry/flags/testing': 'true',
  '@gantry/flags/openfeature': /\S/,
  '@gantry/migrations': 'order=true errors=true',
  '@gantry/secrets': 'function',
  '@gantry/secrets/testing': 'health=200',
  '@gantry/agent': /^windows=[1-9]\d* samples=1$/,
};

let work: string;
let project: string;
let registry: LocalRegistry | undefined;
let packages: PackedPackage[] = [];
let built: string[] = [];

/** The environment of the consumer's processes: nothing from pnpm, vitest or the workspace leaks in. */
function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|VITEST|NODE_OPTIONS$|NODE_PATH$|TSX|GANTRY_)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, NODE_ENV: 'production', ...extra };
}

async function node(
  args: string[],
  extra: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: project,
      env: consumerEnv(extra),
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

/** The `RESULT <json>` line a fixture prints (log lines may surround it). */
function resultOf(stdout: string): unknown {
  const line = stdout.split('\n').find((item) => item.startsWith('RESULT '));
  if (line === undefined) throw new Error(`no RESULT line in:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}

function bin(name: string): string {
  return join(project, 'node_modules', '.bin', name);
}

function libraryEntries(): string[] {
  return packages.flatMap((item) =>
    Object.keys(item.manifest.exports)
      .filter((subpath) => subpath !== './package.json')
      .map((subpath) => (subpath === '.' ? item.name : `${item.name}/${subpath.slice(2)}`))
      .filter((entry) => !SIDE_EFFECT_ENTRIES.has(entry)),
  );
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'gantry-packaging-'));
  ({ packages, built } = await packWorkspace(ROOT, join(work, 'tarballs')));
  if (built.length > 0) process.stderr.write(`[packaging] built stale or missing dist: ${built.join(', ')}\n`);
  registry = await startLocalRegistry(ROOT);
  project = join(work, 'consumer');
  const npmrc = join(work, 'npmrc');
  writeFileSync(npmrc, '');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }));
  for (const file of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, file), join(project, file));
  try {
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        '--registry',
        registry.url,
        '--cache',
        join(work, 'npm-cache'),
        '--userconfig',
        npmrc,
        ...packages.map((item) => item.tarball),
        ...CONSUMER_DEPENDENCIES,
      ],
      { cwd: project, env: consumerEnv(), timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(
      `npm install of the packed tarballs failed (names the workspace could not serve: ${[...registry.missing].join(', ') || 'none'}):\n${failed.stdout ?? ''}${failed.stderr ?? String(error)}`,
      { cause: error },
    );
  }
}, 420_000);

afterAll(async () => {
  await registry?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarballs', () => {
  it('install with npm from the workspace dependencies alone', () => {
    expect(packages.map((item) => item.name).sort()).toEqual([
      '@gantry/agent',
      '@gantry/flags',
      '@gantry/health',
      '@gantry/migrations',
      '@gantry/secrets',
      '@gantry/telemetry',
    ]);
    expect(registry!.tarballsServed()).toBeGreaterThan(20);
    process.stderr.write(`[packaging] names not in the workspace (optional): ${[...registry!.missing].join(', ')}\n`);
    for (const entry of libraryEntries()) expect(Object.keys(TOUCHED)).toContain(entry);
  });
});

describe('every entry point, from ESM and from CommonJS', () => {
  let esm: Record<string, { keys?: string[]; touched?: string; error?: string }> = {};
  let cjs: typeof esm = {};
  beforeAll(async () => {
    const entries = JSON.stringify(libraryEntries());
    const [imported, required] = await Promise.all([node(['smoke.mjs', entries]), node(['smoke.cjs', entries])]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(required.code, required.stderr).toBe(0);
    esm = JSON.parse(imported.stdout) as typeof esm;
    cjs = JSON.parse(required.stdout) as typeof esm;
  }, 120_000);

  it.each(Object.keys(TOUCHED))('%s loads and works with import() and require(), same exports', (entry) => {
    for (const [system, results] of [
      ['import', esm],
      ['require', cjs],
    ] as const) {
      const result = results[entry];
      expect(result?.error, `${system}(${entry})`).toBeUndefined();
      expect(result?.touched, `${system}(${entry})`).toMatch(TOUCHED[entry]!);
      expect(result?.keys?.length, `${system}(${entry})`).toBeGreaterThan(0);
    }
    expect(cjs[entry]?.keys).toEqual(esm[entry]?.keys);
  });
});

describe('the CLIs from the installed bin', () => {
  it('gantry-migrate --help, and lint runs PostgreSQL’s parser from the built CLI', async () => {
    const help = await node([bin('gantry-migrate'), '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/gantry-migrate/);
    const file = join(project, 'V1__drop.sql');
    writeFileSync(file, '-- gantry:phase expand\nALTER TABLE orders DROP COLUMN total;\n');
    const lint = await node([bin('gantry-migrate'), 'lint', file, '--json']);
    expect(lint.code, lint.stderr).toBe(4);
    expect(lint.stdout).toMatch(/drop-column/);
  });

  it('gantry-agent --help, and check-config expands a calendar rule (rrule) or names the bad field', async () => {
    const help = await node([bin('gantry-agent'), '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: gantry-agent/);
    const config = join(project, 'agent.yaml');
    writeFileSync(
      config,
      [
        'policy:',
        '  calendars:',
        '    - name: finance-month-end',
        '      timeZone: Europe/Berlin',
        '      rrule: "DTSTART:20260101T180000\\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-2"',
        '      duration: 60h',
        '',
      ].join('\n'),
    );
    const valid = await node([bin('gantry-agent'), 'check-config', '--json', '--config', config]);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('finance-month-end');
    writeFileSync(
      config,
      'policy:\n  calendars:\n    - { name: broken, timeZone: UTC, rrule: "FREQ=SOMETIMES", duration: 1h }\n',
    );
    const invalid = await node([bin('gantry-agent'), 'check-config', '--json', '--config', config]);
    expect(invalid.code).toBe(2);
    expect(`${invalid.stdout}${invalid.stderr}`).toMatch(/policy\.calendars\[0\]/);
  });
});

describe('the built entry points together', () => {
  it("serves health's probes from the CJS fastify plugin with a registry from the CJS root entry", async () => {
    const result = await node(['app.cjs']);
    expect(result.code, result.stderr).toBe(0);
    const answers = resultOf(result.stdout) as {
      ready: { status: number; body: { status: string; checks: { name: string }[] } };
      info: { service: string };
      decorated: boolean;
      secondServer: string;
      pluginError: string;
      ordersCount: number | null;
    };
    expect(answers.ready.status).toBe(200);
    expect(answers.ready.body.status).toBe('UP');
    expect(answers.ready.body.checks.map((check) => check.name)).toContain('db');
    expect(answers.info.service).toBe('smoke-cjs');
    expect(answers.decorated).toBe(true);
    expect(answers.secondServer).toBe('ok');
    expect(answers.pluginError).toBe('true GANTRY_HEALTH_INVALID_OPTION');
    expect(answers.ordersCount).toBe(1);
  });

  it('instruments pg through `--import @gantry/telemetry/register` from the installed package', async () => {
    const result = await node(['--import', '@gantry/telemetry/register', 'register-app.mjs'], {
      OTEL_SERVICE_NAME: 'smoke-register',
      OTEL_TRACES_EXPORTER: 'none',
      GANTRY_TELEMETRY_LOG_LEVEL: 'warn',
    });
    expect(result.code, result.stderr).toBe(0);
    const states = resultOf(result.stdout) as { name: string; state: string }[];
    expect(states).toContainEqual({ name: 'pg', state: 'applied' });
  });
});
