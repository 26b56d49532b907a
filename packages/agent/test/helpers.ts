// Shared set-up for the agent's integration tests: a test app plus an agent watching it, both on loopback port 0.
import { Registry } from 'prom-client';
import { createAgent, type Agent } from '../src/agent.ts';
import { createJsonLogger } from '../src/logger.ts';
import type { AgentOptions } from '../src/options.ts';
import { startTestApp, type Behaviour, type TestApp } from './app.ts';

/** Parsed JSON bodies in assertions: tests read fields freely and let the assertions fail when a shape is wrong. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = any;

/** A token long enough for the validation rules. */
export const TOKEN = 'test-token-0123456789abcdef';

/** What a pod needs of an app: where it listens and how to stop it (`TestApp`, or `RealApp` from real-app.ts). */
export interface AppHandle {
  readonly url: string;
  close(): Promise<void>;
}

/** An app with its agent. Cycles are driven by the test (`agent.cycle()`), so timing never decides a result. */
export interface Pod<A extends AppHandle = TestApp> {
  readonly app: A;
  readonly agent: Agent;
  readonly registry: Registry;
  /** GET/POST to the agent with the bearer token. */
  readonly call: (
    path: string,
    init?: RequestInit & { token?: string | null },
  ) => Promise<{ status: number; body: JsonBody; text: string; headers: Headers }>;
  readonly close: () => Promise<void>;
}

/** Starts the stand-in app (app.ts) and an agent watching it. */
export function startPod(behaviour: Partial<Behaviour> = {}, options: Partial<AgentOptions> = {}): Promise<Pod> {
  return startPodWith(startTestApp, behaviour, options);
}

/** Starts an app from `startApp` (e.g. `startRealApp` from real-app.ts) and an agent watching it. */
export async function startPodWith<A extends AppHandle>(
  startApp: (behaviour: Partial<Behaviour>) => Promise<A>,
  behaviour: Partial<Behaviour> = {},
  options: Partial<AgentOptions> = {},
): Promise<Pod<A>> {
  const app = await startApp(behaviour);
  const registry = new Registry();
  const agent = createAgent({
    app: { url: app.url, timeoutMs: 2_000 },
    listen: { host: '127.0.0.1', port: 0 },
    intervalMs: '1h',
    warmupMs: 0,
    auth: { token: TOKEN },
    registry,
    // GANTRY_AGENT_TEST_LOG=1 shows the agents' logs while debugging a test.
    ...(process.env['GANTRY_AGENT_TEST_LOG'] === '1'
      ? { logger: createJsonLogger({ level: 'debug', write: (line) => process.stderr.write(line) }) }
      : {}),
    ...options,
    policy: { slo: { minSamples: 100 }, compare: { minSamples: 100 }, ...options.policy },
  });
  await agent.start();
  const call: Pod<A>['call'] = async (path, init = {}) => {
    const { token = TOKEN, headers, ...rest } = init;
    const response = await fetch(`${agent.url()}${path}`, {
      ...rest,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(headers as Record<string, string> | undefined),
      },
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body, text, headers: response.headers };
  };
  return {
    app,
    agent,
    registry,
    call,
    close: async () => {
      await agent.close();
      await app.close();
    },
  };
}

/** Minimal Kubernetes JSONPath for `{$.a.b}` / `{.a}` as Argo's web provider applies it (first match). */
export function jsonPath(document: unknown, expression: string): unknown {
  const match = /^\{\$?\.?(.*)\}$/.exec(expression);
  if (match === null) throw new Error(`unsupported jsonPath ${expression}`);
  let value = document;
  for (const key of (match[1] ?? '').split('.').filter(Boolean)) {
    if (typeof value !== 'object' || value === null || !(key in value))
      throw new Error('Could not find JSONPath in body');
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
