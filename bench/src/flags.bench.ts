// @gantry/flags benchmark, two parts measured side by side in one run:
//  1. isEnabled cost: Gantry's client against a raw unleash-client instance evaluating the same toggles
//     (target ≤ 1.2×). GANTRY_FLAGS_BENCH_ONLY=isEnabled runs this part alone.
//  2. Request p99 of a migration read: a node:http route reading real PostgreSQL tables through a migration flag
//     whose stage comes from a real Unleash. `off` reads one table only; `shadow` also reads the other table in the
//     background (target ≤ 1.05× of `off`); `shadow (await)` waits for both like LaunchDarkly does, for reference.
// The HTTP server runs in a child process so autocannon does not share its event loop.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { cpus } from 'node:os';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import autocannon from 'autocannon';
import pg from 'pg';
import { Registry } from 'prom-client';
import { InMemStorageProvider, Unleash, type UnleashConfig } from 'unleash-client';
import { createFlags, createMigrationFlag, type FlagContext } from '@gantry/flags';
import {
  createDatabase,
  createRunDirectory,
  startPostgres,
  startUnleash,
  unleashAdmin,
  type PostgresServer,
  type UnleashServer,
} from '@gantry/test-harness';
import { median, publishReport, quantile, type BenchRow } from './report.ts';

const ROLE = process.env['GANTRY_FLAGS_BENCH_ROLE'];
const ROWS = 10_000;
const TENANTS = 8;
const RATE = 300;
const HTTP_ROUNDS = 7;
const BURST_ROUNDS = 3;
const HTTP_SECONDS = 6;

// ── part 1: isEnabled ────────────────────────────────────────────────────────────────────────────────────────

const FEATURES = [
  { name: 'plain', enabled: true, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
  {
    name: 'tenant-beta',
    enabled: true,
    strategies: [
      {
        name: 'default',
        parameters: {},
        constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['t1', 't3', 't5'] }],
      },
    ],
  },
  {
    name: 'rollout',
    enabled: true,
    strategies: [
      {
        name: 'flexibleRollout',
        parameters: { rollout: '50', stickiness: 'userId', groupId: 'rollout' },
        constraints: [],
      },
    ],
  },
  { name: 'switched-off', enabled: false, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
];
const NAMES = FEATURES.map((feature) => feature.name);

async function isEnabledBench(): Promise<{
  rows: BenchRow[];
  ratio: number;
  builtRatio: number;
  baggageRatio: number;
}> {
  const config: UnleashConfig = {
    url: 'http://127.0.0.1:9/',
    appName: 'bench-raw',
    refreshInterval: 0,
    disableMetrics: true,
    bootstrap: { data: FEATURES as unknown as NonNullable<NonNullable<UnleashConfig['bootstrap']>['data']> },
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
  };
  const raw = new Unleash(config);
  raw.on('error', () => undefined);
  raw.on('warn', () => undefined);
  await once(raw, 'ready');
  const flags = createFlags({
    offline: true,
    appName: 'bench-gantry',
    bootstrap: FEATURES as never,
    backupPath: false,
    registry: new Registry(),
  });
  await flags.ready();
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);

  const rawContexts = Array.from({ length: 1024 }, (_, index) => ({
    userId: `u-${index}`,
    properties: { tenantId: `t${index % TENANTS}` },
  }));
  const gantryContexts: FlagContext[] = rawContexts.map((item) => ({
    userId: item.userId,
    tenantId: item.properties.tenantId,
  }));
  const userOnly: FlagContext[] = rawContexts.map((item) => ({ userId: item.userId }));

  const CALLS = 200_000;
  const subjects: { name: string; run: () => number }[] = [
    {
      name: 'unleash-client isEnabled',
      run: () => {
        let hits = 0;
        for (let index = 0; index < CALLS; index += 1) {
          if (raw.isEnabled(NAMES[index & 3]!, rawContexts[index & 1023], false)) hits += 1;
        }
        return hits;
      },
    },
    {
      name: 'unleash-client isEnabled (context built per call)',
      run: () => {
        let hits = 0;
        for (let index = 0; index < CALLS; index += 1) {
          const item = rawContexts[index & 1023]!;
          const built = { userId: item.userId, properties: { tenantId: item.properties.tenantId } };
          if (raw.isEnabled(NAMES[index & 3]!, built, false)) hits += 1;
        }
        return hits;
      },
    },
    {
      name: 'gantry isEnabled (tenant passed)',
      run: () => {
        let hits = 0;
        for (let index = 0; index < CALLS; index += 1) {
          if (flags.isEnabled(NAMES[index & 3]!, gantryContexts[index & 1023], false)) hits += 1;
        }
        return hits;
      },
    },
    {
      name: 'gantry isEnabled (tenant from OTel baggage)',
      run: () => {
        let hits = 0;
        const bags = Array.from({ length: TENANTS }, (_, tenant) =>
          propagation.setBaggage(context.active(), propagation.createBaggage({ 'tenant.id': { value: `t${tenant}` } })),
        );
        for (let tenant = 0; tenant < TENANTS; tenant += 1) {
          hits += context.with(bags[tenant]!, () => {
            let inner = 0;
            for (let index = tenant; index < CALLS; index += TENANTS) {
              if (flags.isEnabled(NAMES[index & 3]!, userOnly[index & 1023], false)) inner += 1;
            }
            return inner;
          });
        }
        return hits;
      },
    },
  ];

  const samples = new Map<string, number[]>(subjects.map((subject) => [subject.name, []]));
  const checks = new Map<string, number>();
  for (const subject of subjects) subject.run(); // warm-up
  for (let round = 0; round < 15; round += 1) {
    const order = round % 2 === 0 ? subjects : [...subjects].reverse();
    for (const subject of order) {
      const started = process.hrtime.bigint();
      const hits = subject.run();
      const elapsed = Number(process.hrtime.bigint() - started);
      samples.get(subject.name)!.push(elapsed / CALLS);
      checks.set(subject.name, hits);
    }
  }
  // Same toggles, same contexts: the answers must agree, or the comparison is meaningless.
  const answers = new Set(checks.values());
  if (answers.size !== 1) throw new Error(`isEnabled answers differ between subjects: ${[...checks].join(', ')}`);

  context.disable();
  raw.destroy();
  await flags.close();
  // On a shared CPU the fastest round is the least disturbed one: the ratios use it; the median is shown too.
  const best = (values: number[]): number => Math.min(...values);
  const base = best(samples.get(subjects[0]!.name)!);
  const rows = subjects.map((subject) => {
    const values = samples.get(subject.name)!;
    return {
      subject: subject.name,
      'ns/call best of 15': best(values),
      'ns/call median': median(values),
      'calls/s (best)': Math.round(1e9 / best(values)),
      'vs unleash-client (best)': `${(best(values) / base).toFixed(2)}×`,
    };
  });
  const ratioOf = (index: number): number => best(samples.get(subjects[index]!.name)!);
  return {
    rows,
    ratio: ratioOf(2) / base,
    builtRatio: ratioOf(2) / ratioOf(1),
    baggageRatio: ratioOf(3) / base,
  };
}

// ── part 2: HTTP p99 of a migration read ─────────────────────────────────────────────────────────────────────

const SCENARIOS = [
  { name: 'off (one table, no comparison)', path: 'off' },
  { name: 'shadow (background comparison)', path: 'shadow' },
  { name: 'shadow (await both, LaunchDarkly-style)', path: 'await' },
] as const;

async function serve(): Promise<void> {
  const databaseUrl = process.env['BENCH_DATABASE_URL']!;
  const unleash = JSON.parse(process.env['BENCH_UNLEASH']!) as { url: string; token: string };
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  const flags = createFlags({
    url: `${unleash.url}/api`,
    token: unleash.token,
    appName: 'bench-migration',
    backupPath: false,
    sendUsageMetrics: false,
  });
  await flags.ready({ timeoutMs: 30_000, require: 'sync' });
  const read = (table: string) => async (id: number) => {
    const { rows } = await pool.query(`SELECT id, customer, total_cents FROM ${table} WHERE id = $1`, [id]);
    return rows[0] as unknown;
  };
  const base = {
    readOld: read('orders_old'),
    readNew: read('orders_new'),
    writeOld: async () => undefined,
    writeNew: async () => undefined,
    guardrail: false as const,
  };
  const migrations = {
    off: createMigrationFlag(flags, 'dual-write-bench-off', base),
    shadow: createMigrationFlag(flags, 'dual-write-bench-shadow', base),
    await: createMigrationFlag(flags, 'dual-write-bench-shadow', { ...base, shadowMode: 'await' }),
  };
  const server = createServer((request, response) => {
    const [, kind, id] = (request.url ?? '').split('/');
    if (kind === 'stats') {
      const stats = Object.fromEntries(Object.entries(migrations).map(([name, migration]) => [name, migration.stats]));
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    const migration = migrations[kind as keyof typeof migrations];
    if (migration === undefined) {
      response.writeHead(404).end();
      return;
    }
    const requestContext: FlagContext = { tenantId: `t${Number(id) % TENANTS}` };
    migration.read(requestContext, Number(id)).then(
      (row) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(row)),
      () => response.writeHead(500).end(),
    );
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  process.on('message', (message) => {
    if (message === 'stop') {
      server.close();
      void flags
        .close()
        .then(() => pool.end())
        .then(() => process.exit(0));
    }
  });
}

interface LoadRun {
  readonly requestsPerSecond: number;
  readonly errors: number;
}

async function httpBench(): Promise<{
  rows: BenchRow[];
  shadowRatio: number;
  awaitRatio: number;
  burstRatio: number;
  stats: string;
}> {
  const runDirectory = createRunDirectory('bench-flags');
  let postgres: PostgresServer | undefined;
  let unleash: UnleashServer | undefined;
  let child: ChildProcess | undefined;
  try {
    postgres = await startPostgres({ runDirectory, name: 'postgres-bench-flags' });
    const database = await createDatabase(postgres, 'bench_flags');
    const setup = new pg.Client({ connectionString: database.url });
    await setup.connect();
    for (const table of ['orders_old', 'orders_new']) {
      await setup.query(
        `CREATE TABLE ${table} (id integer PRIMARY KEY, customer text NOT NULL, total_cents integer NOT NULL)`,
      );
      await setup.query(
        `INSERT INTO ${table} SELECT g, 'customer ' || g, (g * 37) % 100000 FROM generate_series(1, ${ROWS}) AS g`,
      );
      await setup.query(`ANALYZE ${table}`);
    }
    await setup.end();
    unleash = await startUnleash({ runDirectory, postgres, name: 'unleash-bench-flags' });
    const admin = unleashAdmin(unleash);
    for (const [toggle, stage] of [
      ['dual-write-bench-off', 'off'],
      ['dual-write-bench-shadow', 'shadow'],
    ] as const) {
      await admin.createToggle(toggle);
      await admin.addStrategy(toggle, { name: 'flexibleRollout', variants: [{ name: stage, weight: 1000 }] });
      await admin.enable(toggle);
    }
    child = fork(import.meta.filename, [], {
      env: {
        ...process.env,
        GANTRY_FLAGS_BENCH_ROLE: 'server',
        BENCH_DATABASE_URL: database.url,
        BENCH_UNLEASH: JSON.stringify({ url: unleash.url, token: unleash.clientToken }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [ready] = (await once(child, 'message')) as [{ port: number }];
    const url = `http://127.0.0.1:${ready.port}`;
    const requests = (kind: string) =>
      Array.from({ length: 200 }, (_, index) => ({
        method: 'GET' as const,
        path: `/${kind}/${((index * 7919) % ROWS) + 1}`,
      }));
    // Two load shapes at the same average rate. `paced`: an open-loop stream, one request every 1/RATE s over up
    // to 10 keep-alive connections, timed from the moment it is sent (a wait for a free connection counts) — the
    // latency a service at this rate sees, and the target. `burst`: autocannon's rate limit, a per-second quota per
    // connection that each of its 10 connections sends back to back at the start of every second; its p99 is the
    // tail of a 10-way burst, the harder case for comparisons, which must not lengthen it (a reference).
    const pacedLoad = async (kind: string, seconds: number, times: number[]): Promise<LoadRun> => {
      const agent = new Agent({ keepAlive: true, maxSockets: 10 });
      const paths = requests(kind).map((entry) => entry.path);
      const interval = 1_000 / RATE;
      const started = performance.now();
      const end = started + seconds * 1_000;
      let sent = 0;
      let done = 0;
      let errors = 0;
      await new Promise<void>((resolve) => {
        let stopped = false;
        const finish = (): void => {
          done += 1;
          if (stopped && done === sent) resolve();
        };
        const fire = (path: string): void => {
          const begin = performance.now();
          const request = httpRequest({ agent, host: '127.0.0.1', port: ready.port, path }, (response) => {
            response.resume();
            response.once('end', () => {
              if (response.statusCode === 200) times.push(performance.now() - begin);
              else errors += 1;
              finish();
            });
          });
          request.once('error', () => {
            errors += 1;
            finish();
          });
          request.end();
        };
        const timer = setInterval(() => {
          const now = Math.min(performance.now(), end);
          while (started + sent * interval <= now) fire(paths[sent++ % paths.length]!);
          if (now >= end) {
            clearInterval(timer);
            stopped = true;
            if (done === sent) resolve();
          }
        }, 1);
      });
      agent.destroy();
      return { requestsPerSecond: (done / (performance.now() - started)) * 1_000, errors };
    };
    // autocannon's own percentiles are whole milliseconds, too coarse for p99s of a few ms: every response time
    // (sub-millisecond, from its 'response' event) is kept.
    const burstLoad = async (kind: string, seconds: number, times: number[]): Promise<LoadRun> => {
      // Without a callback autocannon returns its run: a promise of the result that also emits per response.
      const instance = autocannon({
        url,
        connections: 10,
        overallRate: RATE,
        duration: seconds,
        requests: requests(kind),
      });
      (instance as unknown as autocannon.Instance).on(
        'response',
        (_client: unknown, _status: number, _bytes: number, milliseconds: number) => {
          times.push(milliseconds);
        },
      );
      const result = await instance;
      return { requestsPerSecond: result.requests.average, errors: result.errors + result.non2xx };
    };

    for (const scenario of SCENARIOS) await pacedLoad(scenario.path, 2, []); // warm-up
    await burstLoad(SCENARIOS[0].path, 2, []);
    /** Rounds of each route under one load shape; a hiccup of the shared machine lands in one route's round, so
     * routes are compared within each round and the median of those ratios counts. */
    const measureShape = async (
      load: (kind: string, seconds: number, times: number[]) => Promise<LoadRun>,
      scenarios: readonly (typeof SCENARIOS)[number][],
      rounds: number,
      label: string,
    ): Promise<{ rows: BenchRow[]; ratios: Map<string, number[]> }> => {
      const runs = new Map<string, LoadRun[]>(scenarios.map((scenario) => [scenario.name, []]));
      const times = new Map<string, Float64Array[]>(scenarios.map((scenario) => [scenario.name, []]));
      for (let round = 0; round < rounds; round += 1) {
        const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
        for (const scenario of order) {
          const roundTimes: number[] = [];
          runs.get(scenario.name)!.push(await load(scenario.path, HTTP_SECONDS, roundTimes));
          times.get(scenario.name)!.push(Float64Array.from(roundTimes).sort());
        }
        // Each route's p99 in this round, so a round the machine disturbed shows in the log.
        const roundP99s = scenarios.map(
          (scenario) => `${scenario.path} ${quantile(times.get(scenario.name)!.at(-1)!, 0.99).toFixed(2)}`,
        );
        process.stdout.write(`  ${label} round ${round + 1}/${rounds}: p99 ms ${roundP99s.join(', ')}\n`);
      }
      const p99s = (name: string): number[] => times.get(name)!.map((sorted) => quantile(sorted, 0.99));
      const offP99s = p99s(scenarios[0]!.name);
      const ratios = new Map(
        scenarios.map((scenario) => [
          scenario.name,
          p99s(scenario.name).map((value, round) => value / offP99s[round]!),
        ]),
      );
      const round2 = (value: number): number => Math.round(value * 100) / 100;
      const rows = scenarios.map((scenario) => {
        const all = Float64Array.from(times.get(scenario.name)!.flatMap((sorted) => [...sorted])).sort();
        const perRound = ratios.get(scenario.name)!;
        return {
          load: label,
          route: scenario.name,
          'req/s': Math.round(median(runs.get(scenario.name)!.map((run) => run.requestsPerSecond))),
          responses: all.length,
          'p50 ms': round2(quantile(all, 0.5)),
          'p99 ms (median of rounds)': round2(median(p99s(scenario.name))),
          'mean ms': round2(all.reduce((sum, value) => sum + value, 0) / Math.max(1, all.length)),
          errors: runs.get(scenario.name)!.reduce((sum, run) => sum + run.errors, 0),
          'p99 vs off (median)': `${median(perRound).toFixed(2)}×`,
          'per round': `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}`,
        };
      });
      return { rows, ratios };
    };
    const paced = await measureShape(pacedLoad, SCENARIOS, HTTP_ROUNDS, 'paced');
    const burst = await measureShape(burstLoad, SCENARIOS.slice(0, 2), BURST_ROUNDS, 'burst');
    const stats = await (await fetch(`${url}/stats`)).text();
    return {
      rows: [...paced.rows, ...burst.rows],
      shadowRatio: median(paced.ratios.get(SCENARIOS[1].name)!),
      awaitRatio: median(paced.ratios.get(SCENARIOS[2].name)!),
      burstRatio: median(burst.ratios.get(SCENARIOS[1].name)!),
      stats,
    };
  } finally {
    if (child !== undefined && child.exitCode === null) {
      child.send('stop');
      await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await unleash?.stop();
    await postgres?.destroy();
  }
}

async function main(): Promise<void> {
  const micro = await isEnabledBench();
  if (process.env['GANTRY_FLAGS_BENCH_ONLY'] === 'isEnabled') {
    process.stdout.write(`${JSON.stringify(micro.rows, null, 1)}\n`);
    return;
  }
  const http = await httpBench();
  const stats = JSON.parse(http.stats) as Record<string, { consistent: number; skipped: number }>;
  publishReport({
    name: 'flags',
    description:
      'isEnabled cost against raw unleash-client; p99 of a migration read in shadow stage against one-table reads',
    environment: {
      node: process.version,
      cpus: cpus().length,
      rows: ROWS,
      'http load': `${RATE} req/s over 10 connections; paced ${HTTP_ROUNDS}×${HTTP_SECONDS} s and burst ${BURST_ROUNDS}×${HTTP_SECONDS} s per route; p99 ratios per round (median)`,
    },
    tables: [
      { title: 'isEnabled (4 toggles: default, tenant constraint, 50% rollout, off; 1024 contexts)', rows: micro.rows },
      {
        title: 'GET /<stage>/:id → migration.read against real PostgreSQL (stage from a real Unleash)',
        rows: http.rows,
      },
      {
        title: 'Comparisons made during the HTTP runs (proof the shadow reads ran)',
        rows: Object.entries(stats).map(([route, value]) => ({
          route,
          consistent: value.consistent,
          'skipped (not sampled or over the cap)': value.skipped,
        })),
      },
    ],
    targets: [
      {
        target: 'isEnabled ≤ 1.2× raw unleash-client with a prebuilt context (tenant passed)',
        measured: `${micro.ratio.toFixed(2)}× (${micro.builtRatio.toFixed(2)}× of raw building its context per call)`,
        met: micro.ratio <= 1.2,
      },
      {
        target: 'shadow-stage read p99 ≤ 1.05× one-table read p99 (paced load)',
        measured: `${http.shadowRatio.toFixed(2)}× (await-both reference: ${http.awaitRatio.toFixed(2)}×; burst load: ${http.burstRatio.toFixed(2)}×)`,
        met: http.shadowRatio <= 1.05,
      },
    ],
  });
}

if (ROLE === 'server') await serve();
else await main();
