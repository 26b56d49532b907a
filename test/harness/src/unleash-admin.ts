import type { UnleashInfo } from './unleash.ts';

/** A constraint on an Unleash strategy (admin API shape). */
export interface UnleashConstraint {
  readonly contextName: string;
  readonly operator:
    'IN' | 'NOT_IN' | 'STR_STARTS_WITH' | 'STR_ENDS_WITH' | 'STR_CONTAINS' | 'NUM_EQ' | 'NUM_GT' | 'NUM_LT';
  readonly values?: readonly string[];
  readonly value?: string;
  readonly inverted?: boolean;
  readonly caseInsensitive?: boolean;
}

/** A variant as the admin API takes it. */
export interface UnleashVariant {
  readonly name: string;
  /** Weights of all variants add up to 1000. */
  readonly weight: number;
  readonly weightType?: 'variable' | 'fix';
  readonly stickiness?: string;
  readonly payload?: { readonly type: 'string' | 'json' | 'number'; readonly value: string };
}

/** A strategy as the admin API takes it. */
export interface UnleashStrategy {
  readonly name: 'default' | 'flexibleRollout' | 'userWithId' | 'remoteAddress' | 'applicationHostname';
  readonly parameters?: Readonly<Record<string, string>>;
  readonly constraints?: readonly UnleashConstraint[];
  readonly variants?: readonly UnleashVariant[];
  readonly disabled?: boolean;
}

/** The admin operations the tests need, over Unleash's real admin HTTP API. */
export interface UnleashAdmin {
  /** Creates a feature toggle in the `default` project. */
  createToggle(name: string, options?: { readonly type?: string; readonly description?: string }): Promise<void>;
  /** Adds a strategy to the toggle in `environment` and returns the strategy id. */
  addStrategy(toggle: string, strategy: UnleashStrategy, environment?: string): Promise<string>;
  /** Replaces a strategy's configuration. */
  updateStrategy(toggle: string, strategyId: string, strategy: UnleashStrategy, environment?: string): Promise<void>;
  enable(toggle: string, environment?: string): Promise<void>;
  disable(toggle: string, environment?: string): Promise<void>;
  /** Sets the toggle's environment-level variants. */
  setVariants(toggle: string, variants: readonly UnleashVariant[], environment?: string): Promise<void>;
  /** Archives the toggle (clients stop seeing it). */
  archive(toggle: string): Promise<void>;
  /** Declares a custom context field so it can be used in constraints. Existing fields are left as they are. */
  createContextField(name: string, description?: string): Promise<void>;
  /** Any other admin call: method, path under `/api/admin/`, JSON body. Returns the parsed JSON (or null). */
  request(method: string, path: string, body?: unknown): Promise<unknown>;
}

/**
 * Admin API client for a harness Unleash. Every failure throws with the method, path, status and body.
 * @example
 * const admin = unleashAdmin(harness.unleash);
 * await admin.createToggle('checkout-v2');
 * await admin.addStrategy('checkout-v2', { name: 'default' });
 * await admin.enable('checkout-v2');
 */
export function unleashAdmin(info: UnleashInfo): UnleashAdmin {
  const env = (environment?: string): string => environment ?? info.environment;
  const feature = (toggle: string): string => `projects/default/features/${encodeURIComponent(toggle)}`;

  async function request(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = {
      method,
      headers: { Authorization: info.adminToken, 'Content-Type': 'application/json' },
      signal: AbortSignal.timeout(10_000),
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(`${info.url}/api/admin/${path}`, init);
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Unleash admin ${method} /api/admin/${path} answered ${response.status}: ${text.slice(0, 500)}`);
    }
    return text.length === 0 ? null : (JSON.parse(text) as unknown);
  }

  return {
    request,
    createToggle: async (name, options = {}) => {
      await request('POST', 'projects/default/features', {
        name,
        type: options.type ?? 'release',
        description: options.description ?? 'created by a Gantry test',
        impressionData: false,
      });
    },
    addStrategy: async (toggle, strategy, environment) => {
      const created = (await request(
        'POST',
        `${feature(toggle)}/environments/${env(environment)}/strategies`,
        withDefaults(toggle, strategy),
      )) as { id: string };
      return created.id;
    },
    updateStrategy: async (toggle, strategyId, strategy, environment) => {
      await request(
        'PUT',
        `${feature(toggle)}/environments/${env(environment)}/strategies/${strategyId}`,
        withDefaults(toggle, strategy),
      );
    },
    enable: async (toggle, environment) => {
      await request('POST', `${feature(toggle)}/environments/${env(environment)}/on`);
    },
    disable: async (toggle, environment) => {
      await request('POST', `${feature(toggle)}/environments/${env(environment)}/off`);
    },
    setVariants: async (toggle, variants, environment) => {
      await request(
        'PUT',
        `${feature(toggle)}/environments/${env(environment)}/variants`,
        variants.map((variant) => ({ weightType: 'variable', stickiness: 'default', ...variant })),
      );
    },
    archive: async (toggle) => {
      await request('DELETE', feature(toggle));
    },
    createContextField: async (name, description) => {
      try {
        await request('POST', 'context', { name, description: description ?? name, stickiness: true });
      } catch (error) {
        if (!(error instanceof Error) || !/ 409: /.test(error.message)) throw error;
      }
    },
  };
}

function withDefaults(toggle: string, strategy: UnleashStrategy): Record<string, unknown> {
  const parameters =
    strategy.name === 'flexibleRollout'
      ? { rollout: '100', stickiness: 'default', groupId: toggle, ...strategy.parameters }
      : { ...strategy.parameters };
  return {
    name: strategy.name,
    parameters,
    constraints: strategy.constraints ?? [],
    variants: (strategy.variants ?? []).map((variant) => ({
      weightType: 'variable',
      stickiness: 'default',
      ...variant,
    })),
    disabled: strategy.disabled ?? false,
  };
}
