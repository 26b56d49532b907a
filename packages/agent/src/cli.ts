#!/usr/bin/env node
// gantry-agent: the sidecar's command line. Configuration comes from a file (YAML or JSON), then GANTRY_AGENT_*
// variables, then flags (later wins); it is validated once and a bad value exits with code 2 naming the field.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AGENT_VERSION, createAgent } from './agent.ts';
import { AgentError, isAgentError } from './errors.ts';
import { podIdentityFromEnvironment } from './identity.ts';
import { createJsonLogger, type LogLevel } from './logger.ts';
import { routeProcessWarnings } from './warnings.ts';
import { agentOptionsFromEnv, mergeOptions, resolveAgentConfig, type AgentOptions } from './options.ts';
import { Counter, Gauge, Registry } from './prom.ts';

const HELP = `Usage: gantry-agent [run|check-config|version] [options]

The Gantry sidecar: watches the app in its pod (probes, /q/info, /q/metrics) and answers rollout controllers
(Argo Rollouts web provider, Flagger webhooks) with pass, fail, pending, inconclusive or error.

Commands:
  run                     start the agent (default)
  check-config            validate the configuration and print it (tokens hidden); exit 2 when invalid
  version                 print the agent version

Options (each overrides GANTRY_AGENT_* variables, which override the config file):
  -c, --config <file>     YAML or JSON configuration file            (GANTRY_AGENT_CONFIG)
      --host <host>       listen address, default 0.0.0.0             (GANTRY_AGENT_HOST)
  -p, --port <port>       listen port, default 8686                   (GANTRY_AGENT_PORT)
      --app-url <url>     the app, default http://127.0.0.1:8080      (GANTRY_AGENT_APP_URL)
      --interval <dur>    scrape interval, default 5s                 (GANTRY_AGENT_INTERVAL)
      --warmup <dur>      warm-up excluded after start/shift, 30s     (GANTRY_AGENT_WARMUP)
      --token-file <f>    bearer token file (a mounted Secret)        (GANTRY_AGENT_TOKEN_FILE, or GANTRY_AGENT_TOKEN)
      --flagger-token-file <f>  token Flagger sends as metadata.token (GANTRY_AGENT_FLAGGER_TOKEN_FILE)
      --peers <urls>      comma-separated peer agent URLs             (GANTRY_AGENT_PEERS)
      --peers-dns <n:p>   DNS name (headless Service) and port        (GANTRY_AGENT_PEERS_DNS)
      --kafka-brokers <b> comma-separated host:port                   (GANTRY_AGENT_KAFKA_BROKERS)
      --fleet-kafka       exchange summaries on gantry.fleet          (GANTRY_AGENT_FLEET_KAFKA=true)
      --events-url <url>  orchestrator URL for CloudEvents            (GANTRY_AGENT_EVENTS_URL)
      --events-kafka      also send CloudEvents to gantry.events      (GANTRY_AGENT_EVENTS_KAFKA=true)
      --state-dir <dir>   holds.json and audit.jsonl                  (GANTRY_AGENT_STATE_DIR)
      --log-level <lvl>   debug|info|warn|error, default info         (GANTRY_AGENT_LOG_LEVEL)
      --json              machine-readable output (check-config, version)
  -h, --help              this help

Pod identity: GANTRY_AGENT_POD_NAME, _POD_NAMESPACE, _POD_TEMPLATE_HASH, _VERSION, _IMAGE_DIGEST, _SERVICE, or the
downward API files in GANTRY_AGENT_PODINFO_DIR (default /etc/podinfo: labels, annotations, name, namespace).
Signals: SIGTERM/SIGINT stop, SIGHUP reloads the policy from the config file (audited).
Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.`;

interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

class UsageError extends Error {}

function readFile(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new AgentError(
      'GANTRY_AGENT_CONFIG_FILE',
      `Cannot read \`${field}\` file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { cause: error, field },
    );
  }
}

/** Reads a YAML or JSON configuration file into options (yaml is loaded only for YAML files). */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  const text = readFile(path, 'config');
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (error) {
    throw new AgentError(
      'GANTRY_AGENT_CONFIG_FILE',
      `Cannot parse ${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
      { cause: error, field: 'config' },
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new AgentError('GANTRY_AGENT_CONFIG_FILE', `${path} must hold a mapping of options`, { field: 'config' });
  }
  return value as Record<string, unknown>;
}

function parseCommandLine(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
        'app-url': { type: 'string' },
        interval: { type: 'string' },
        warmup: { type: 'string' },
        'token-file': { type: 'string' },
        'flagger-token-file': { type: 'string' },
        peers: { type: 'string' },
        'peers-dns': { type: 'string' },
        'kafka-brokers': { type: 'string' },
        'fleet-kafka': { type: 'boolean' },
        'events-url': { type: 'string' },
        'events-kafka': { type: 'boolean' },
        'state-dir': { type: 'string' },
        'log-level': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * Builds the effective options from file ← environment ← flags (no validation yet).
 * @throws AgentError `GANTRY_AGENT_CONFIG_FILE` for unreadable files.
 */
export async function buildOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<{
  options: Record<string, unknown>;
  logLevel: string;
  json: boolean;
  command: string;
  help: boolean;
  configPath: string | undefined;
}> {
  const { values, positionals } = parseCommandLine(argv);
  const command = positionals[0] ?? 'run';
  if (positionals.length > 1 || !['run', 'check-config', 'version'].includes(command)) {
    throw new UsageError(
      `Unknown command ${JSON.stringify(positionals.join(' '))}; expected run, check-config or version`,
    );
  }
  const configPath = values.config ?? env['GANTRY_AGENT_CONFIG'];
  const fromFile = configPath === undefined ? {} : await loadConfigFile(configPath);
  const identity = podIdentityFromEnvironment(env);
  const fromEnv = mergeOptions(Object.keys(identity).length > 0 ? { identity } : {}, agentOptionsFromEnv(env));
  const flags: Record<string, unknown> = {};
  const set = (path: string, value: unknown): void => {
    if (value === undefined) return;
    const keys = path.split('.');
    let target = flags;
    for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
    target[keys.at(-1)!] = value;
  };
  set('listen.host', values.host);
  set('listen.port', values.port);
  set('app.url', values['app-url']);
  set('intervalMs', values.interval);
  set('warmupMs', values.warmup);
  set('fleet.peers', values.peers);
  if (values['peers-dns'] !== undefined) {
    const [name, port] = values['peers-dns'].split(':');
    set('fleet.dns', { name, ...(port === undefined ? {} : { port }) });
  }
  set('kafka.brokers', values['kafka-brokers']);
  set('fleet.kafka', values['fleet-kafka']);
  set('events.url', values['events-url']);
  set('events.kafka', values['events-kafka']);
  set('stateDirectory', values['state-dir']);
  const options = mergeOptions(fromFile, fromEnv, flags);
  // Tokens from files (Kubernetes Secrets mounted as files) win over inline values.
  const auth = { ...((options['auth'] as Record<string, unknown> | undefined) ?? {}) };
  const tokenFile = values['token-file'] ?? env['GANTRY_AGENT_TOKEN_FILE'] ?? (auth['tokenFile'] as string | undefined);
  const flaggerTokenFile =
    values['flagger-token-file'] ??
    env['GANTRY_AGENT_FLAGGER_TOKEN_FILE'] ??
    (auth['flaggerTokenFile'] as string | undefined);
  delete auth['tokenFile'];
  delete auth['flaggerTokenFile'];
  if (tokenFile !== undefined) auth['token'] = readFile(tokenFile, 'auth.tokenFile').trim();
  if (flaggerTokenFile !== undefined) auth['flaggerToken'] = readFile(flaggerTokenFile, 'auth.flaggerTokenFile').trim();
  if (Object.keys(auth).length > 0) options['auth'] = auth;
  const logLevel =
    values['log-level'] ?? env['GANTRY_AGENT_LOG_LEVEL'] ?? (options['logLevel'] as string | undefined) ?? 'info';
  delete options['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new AgentError(
      'GANTRY_AGENT_INVALID_OPTION',
      `Expected \`logLevel\` to be debug, info, warn or error, got ${JSON.stringify(logLevel)}`,
      { field: 'logLevel' },
    );
  }
  return { options, logLevel, json: values.json === true, command, help: values.help === true, configPath };
}

/**
 * The process metrics a sidecar needs (memory, CPU, start time), without prom-client's default collectors, which
 * cost ~12 MB of RSS by themselves.
 */
function registerProcessMetrics(registry: InstanceType<typeof Registry>): void {
  const started = Date.now() / 1_000;
  new Gauge({
    name: 'gantry_agent_process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'gantry_agent_process_heap_used_bytes',
    help: 'V8 heap used in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Counter({
    name: 'gantry_agent_process_cpu_seconds_total',
    help: 'User and system CPU time in seconds.',
    registers: [registry],
    collect() {
      const usage = process.cpuUsage();
      this.reset();
      this.inc((usage.user + usage.system) / 1e6);
    },
  });
  new Gauge({
    name: 'gantry_agent_process_start_time_seconds',
    help: 'Start time of the process since the Unix epoch in seconds.',
    registers: [registry],
    collect() {
      this.set(started);
    },
  });
}

function redacted(config: ReturnType<typeof resolveAgentConfig>): Record<string, unknown> {
  const { policy, ...rest } = config;
  const { calendar: _calendar, ...policyRest } = policy;
  return {
    ...rest,
    auth: {
      token: config.auth.token === undefined ? null : '(set)',
      flaggerToken: config.auth.flaggerToken === undefined ? null : '(set)',
    },
    policy: policyRest,
  };
}

/**
 * Runs the CLI; resolves with the exit code (the agent keeps running for `run` until a signal stops it).
 * @example process.exitCode = await main(process.argv.slice(2));
 */
export async function main(
  argv: readonly string[],
  io: Io = {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  },
): Promise<number> {
  let parsed: Awaited<ReturnType<typeof buildOptions>>;
  try {
    parsed = await buildOptions(argv, io.env);
    if (parsed.help) {
      io.stdout(`${HELP}\n`);
      return 0;
    }
    if (parsed.command === 'version') {
      io.stdout(
        parsed.json
          ? `${JSON.stringify({ name: '@gantry/agent', version: AGENT_VERSION, node: process.version })}\n`
          : `gantry-agent ${AGENT_VERSION}\n`,
      );
      return 0;
    }
    const config = resolveAgentConfig(parsed.options);
    if (parsed.command === 'check-config') {
      io.stdout(
        parsed.json
          ? `${JSON.stringify({ valid: true, config: redacted(config) }, null, 2)}\n`
          : `configuration is valid (app ${config.app.url}, ${config.listen === false ? 'no server' : `listening on ${config.listen.host}:${config.listen.port}`}, ${Object.keys(config.policy.gates).length} gates, ${config.policy.calendars.length} calendar windows)\n`,
      );
      return 0;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`gantry-agent: ${error.message}\nRun gantry-agent --help for usage.\n`);
      return 2;
    }
    if (isAgentError(error)) {
      const wantsJson = argv.includes('--json');
      if (wantsJson)
        io.stdout(
          `${JSON.stringify({ valid: false, code: error.code, field: error.field ?? null, message: error.message })}\n`,
        );
      io.stderr(
        `gantry-agent: invalid configuration${error.field === undefined ? '' : ` (${error.field})`}: ${error.message}\n`,
      );
      return 2;
    }
    throw error;
  }
  const logger = createJsonLogger({ level: parsed.logLevel as LogLevel });
  const restoreWarnings = routeProcessWarnings(logger);
  const registry = new Registry();
  registerProcessMetrics(registry);
  const agent = createAgent({ ...(parsed.options as AgentOptions), logger, registry });
  // Handlers go in before start(): start() serves requests before its first cycle finished, and a SIGHUP (or
  // SIGTERM) arriving then would otherwise hit Node's default action and kill the agent.
  let stopSignal: string | undefined;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  const reload = (): void => {
    const path = parsed.configPath;
    if (path === undefined) {
      logger.warn({ event: 'agent.policy.reload_skipped' }, 'SIGHUP without a config file: nothing to reload');
      return;
    }
    loadConfigFile(path)
      .then((file) => agent.updatePolicy((file['policy'] ?? {}) as never, 'SIGHUP'))
      .catch((error: unknown) => {
        logger.error(
          { event: 'agent.policy.reload_failed', err: error instanceof Error ? error.message : String(error) },
          'policy reload failed; keeping the current policy',
        );
      });
  };
  const onSigterm = (): void => stop('SIGTERM');
  const onSigint = (): void => stop('SIGINT');
  const removeHandlers = (): void => {
    process.off('SIGHUP', reload);
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
  };
  const stop = (signal: string): void => {
    if (stopSignal !== undefined) return;
    stopSignal = signal;
    logger.info({ event: 'agent.signal', signal }, `received ${signal}, stopping`);
    removeHandlers();
    void agent.close().then(() => {
      restoreWarnings();
      resolveStopped(0);
    });
  };
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  process.on('SIGHUP', reload);
  try {
    await agent.start();
  } catch (error) {
    // Stopped by a signal while starting: that is a clean stop, not a failure.
    if (stopSignal !== undefined) return stopped;
    removeHandlers();
    io.stderr(`gantry-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    await agent.close();
    restoreWarnings();
    return 1;
  }
  return stopped;
}

const invokedDirectly = process.argv[1] !== undefined && /gantry-agent$|cli\.(ts|js|cjs)$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `gantry-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
