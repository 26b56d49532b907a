import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './environment.ts';
import { HarnessError, ManagedProcess, waitUntilReady } from './process.ts';

/** What a test needs to use the harness's Prometheus. */
export interface PrometheusInfo {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:9090`. */
  readonly url: string;
  /** Folder watched for file-based service discovery: one JSON file per test adds its targets. */
  readonly targetsDirectory: string;
  /** Folder of rule files (`*.yml`), loaded on {@link reloadPrometheus}. */
  readonly rulesDirectory: string;
  /** Scrape and rule evaluation interval in seconds. */
  readonly intervalSeconds: number;
  readonly logFile: string;
}

/** A running Prometheus. */
export interface PrometheusServer extends PrometheusInfo {
  readonly startMs: number;
  /** Stops the server. Idempotent. */
  stop(): Promise<void>;
}

/** Options for {@link startPrometheus}. */
export interface StartPrometheusOptions {
  readonly runDirectory: string;
  /** @default 1 */
  readonly intervalSeconds?: number;
  /** @default 30_000 */
  readonly timeoutMs?: number;
}

/** Finds the `prometheus` binary (Debian's package puts it in /usr/bin). */
export function prometheusBinary(): string | undefined {
  try {
    return execFileSync('bash', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts Prometheus with a generated configuration: one scrape job fed by file-based discovery (so tests add
 * targets by writing a file) and rule files from a folder, both refreshed every `intervalSeconds`.
 * @throws HarnessError when the binary is missing or the server does not become ready.
 */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusServer> {
  const name = 'prometheus';
  const binary = prometheusBinary();
  if (binary === undefined) {
    throw new HarnessError(name, 'the prometheus binary is not installed (Debian: apt-get install prometheus)');
  }
  const intervalSeconds = options.intervalSeconds ?? 1;
  const home = join(options.runDirectory, name);
  const targetsDirectory = join(home, 'targets');
  const rulesDirectory = join(home, 'rules');
  for (const dir of [home, targetsDirectory, rulesDirectory]) mkdirSync(dir, { recursive: true });
  const configFile = join(home, 'prometheus.yml');
  writeFileSync(
    configFile,
    [
      'global:',
      `  scrape_interval: ${intervalSeconds}s`,
      `  scrape_timeout: ${intervalSeconds}s`,
      `  evaluation_interval: ${intervalSeconds}s`,
      'rule_files:',
      `  - ${join(rulesDirectory, '*.yml')}`,
      'scrape_configs:',
      '  - job_name: gantry-test',
      '    file_sd_configs:',
      `      - files: ['${join(targetsDirectory, '*.json')}']`,
      `        refresh_interval: ${intervalSeconds}s`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const logFile = join(options.runDirectory, `${name}.log`);
  const proc = new ManagedProcess({
    name,
    command: binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(home, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ],
    logFile,
  });
  const url = `http://127.0.0.1:${port}`;
  const begin = performance.now();
  await proc.spawn();
  try {
    await waitUntilReady(
      proc,
      async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) })).ok,
      options.timeoutMs ?? 30_000,
    );
  } catch (error) {
    await proc.stop('SIGKILL');
    throw error;
  }
  return {
    url,
    targetsDirectory,
    rulesDirectory,
    intervalSeconds,
    logFile,
    startMs: performance.now() - begin,
    stop: () => proc.stop('SIGTERM', 10_000),
  };
}

/** A scrape target for {@link addScrapeTarget}. */
export interface ScrapeTarget {
  /** `host:port` */
  readonly address: string;
  /** @default '/metrics' */
  readonly metricsPath?: string;
  /** Extra target labels; `job` overrides the job name. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Adds scrape targets through file-based discovery. Returns a function that removes them again.
 * Prometheus picks them up within about one interval.
 */
export function addScrapeTarget(info: PrometheusInfo, ...targets: readonly ScrapeTarget[]): () => void {
  const file = join(info.targetsDirectory, `${randomBytes(6).toString('hex')}.json`);
  const groups = targets.map((target) => ({
    targets: [target.address],
    labels: { __metrics_path__: target.metricsPath ?? '/metrics', ...target.labels },
  }));
  // Write then rename, so Prometheus never reads half a file.
  writeFileSync(`${file}.tmp`, JSON.stringify(groups));
  renameSync(`${file}.tmp`, file);
  return () => rmSync(file, { force: true });
}

/** One sample of an instant vector. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Runs an instant PromQL query and returns the samples of the resulting vector (or the scalar as one sample). */
export async function queryPrometheus(info: PrometheusInfo, promql: string): Promise<PromSample[]> {
  const response = await fetch(`${info.url}/api/v1/query?query=${encodeURIComponent(promql)}`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: unknown };
  };
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`PromQL ${promql} failed: ${body.error ?? response.status}`);
  }
  if (body.data.resultType === 'scalar') {
    const [, value] = body.data.result as [number, string];
    return [{ metric: {}, value: Number(value) }];
  }
  return (body.data.result as { metric: Record<string, string>; value: [number, string] }[]).map((item) => ({
    metric: item.metric,
    value: Number(item.value[1]),
  }));
}

/**
 * Polls a PromQL query until `accept` says yes, returning the samples; throws with the last result on timeout.
 * @default timeoutMs 20_000
 */
export async function waitForQuery(
  info: PrometheusInfo,
  promql: string,
  accept: (samples: PromSample[]) => boolean = (samples) => samples.length > 0,
  timeoutMs = 20_000,
): Promise<PromSample[]> {
  const deadline = Date.now() + timeoutMs;
  let last: PromSample[] = [];
  while (Date.now() < deadline) {
    last = await queryPrometheus(info, promql);
    if (accept(last)) return last;
    await sleep(250);
  }
  throw new Error(
    `PromQL ${promql} did not return what was expected within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
  );
}

/** Asks Prometheus to reload its configuration and rule files. */
export async function reloadPrometheus(info: PrometheusInfo): Promise<void> {
  const response = await fetch(`${info.url}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`Prometheus reload failed: ${response.status} ${await response.text()}`);
}
