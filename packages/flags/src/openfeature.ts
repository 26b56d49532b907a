import {
  ErrorCode,
  OpenFeatureEventEmitter,
  ProviderEvents,
  StandardResolutionReasons,
  type EvaluationContext,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import type { FlagContext } from './context.ts';
import type { Flags, FlagsStatus, FlagVariant } from './flags.ts';

/** Options of {@link createOpenFeatureProvider}. */
export interface OpenFeatureProviderOptions {
  /** Evaluation-context key that holds the tenant. @default 'tenantId' */
  readonly tenantKey?: string;
  /** Timeout of `initialize()` (OpenFeature's `setProviderAndWait`). @default 10_000 */
  readonly readyTimeoutMs?: number;
  /** Close the flags client when OpenFeature closes the provider. @default false */
  readonly closeFlagsOnClose?: boolean;
}

/**
 * An OpenFeature server provider over a Gantry flags client, so OpenFeature hooks and transaction context work
 * with the same Unleash connection, tenant context and metrics. Booleans map to `isEnabled`; strings to the variant
 * payload (or the variant name when it has none); numbers and objects to `number`/`json` payloads.
 * @example
 * import { OpenFeature } from '@openfeature/server-sdk';
 * await OpenFeature.setProviderAndWait(createOpenFeatureProvider(flags));
 * const enabled = await OpenFeature.getClient().getBooleanValue('checkout-v2', false, { targetingKey: userId, tenantId });
 */
export function createOpenFeatureProvider(flags: Flags, options: OpenFeatureProviderOptions = {}): Provider {
  return new GantryOpenFeatureProvider(flags, options);
}

class GantryOpenFeatureProvider implements Provider {
  readonly metadata = { name: 'gantry-unleash' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();
  readonly #flags: Flags;
  readonly #tenantKey: string;
  readonly #readyTimeoutMs: number;
  readonly #closeFlags: boolean;
  #unsubscribe: (() => void) | undefined;
  #last: FlagsStatus | undefined;

  constructor(flags: Flags, options: OpenFeatureProviderOptions) {
    this.#flags = flags;
    this.#tenantKey = options.tenantKey ?? 'tenantId';
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    this.#closeFlags = options.closeFlagsOnClose ?? false;
  }

  async initialize(): Promise<void> {
    await this.#flags.ready({ timeoutMs: this.#readyTimeoutMs });
    this.#last = this.#flags.status;
    this.#unsubscribe ??= this.#flags.onChange((status) => this.#onChange(status));
  }

  #onChange(status: FlagsStatus): void {
    const last = this.#last;
    this.#last = status;
    if (status.unauthorized && !last?.unauthorized) {
      this.events.emit(ProviderEvents.Error, { message: status.lastError ?? 'Unleash refused the API token' });
    } else if (status.consecutiveFailures > 0 && (last?.consecutiveFailures ?? 0) === 0) {
      this.events.emit(ProviderEvents.Stale, { message: status.lastError ?? 'Unleash is unreachable' });
    } else if (status.consecutiveFailures === 0 && ((last?.consecutiveFailures ?? 0) > 0 || last?.unauthorized)) {
      this.events.emit(ProviderEvents.Ready, { message: 'Unleash is reachable again' });
    }
    if (status.hash !== last?.hash)
      this.events.emit(ProviderEvents.ConfigurationChanged, { message: `flag configuration ${status.hash ?? ''}` });
  }

  async onClose(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#closeFlags) await this.#flags.close();
  }

  async resolveBooleanEvaluation(
    flagKey: string,
    defaultValue: boolean,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<boolean>> {
    const toggle = this.#flags.toggle(flagKey);
    if (toggle === undefined) return notFound(flagKey, defaultValue);
    const value = this.#flags.isEnabled(flagKey, this.#context(context), defaultValue);
    return {
      value,
      reason: !toggle.enabled
        ? StandardResolutionReasons.DISABLED
        : value
          ? StandardResolutionReasons.TARGETING_MATCH
          : StandardResolutionReasons.DEFAULT,
    };
  }

  async resolveStringEvaluation(
    flagKey: string,
    defaultValue: string,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<string>> {
    return this.#resolveVariant(flagKey, defaultValue, context, (variant) => {
      if (variant.payload === undefined) return { ok: true, value: variant.name };
      if (variant.payload.type === 'string' || variant.payload.type === 'csv')
        return { ok: true, value: variant.payload.value };
      return { ok: false };
    });
  }

  async resolveNumberEvaluation(
    flagKey: string,
    defaultValue: number,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<number>> {
    return this.#resolveVariant(flagKey, defaultValue, context, (variant) => {
      if (variant.payload?.type !== 'number') return { ok: false };
      const value = Number(variant.payload.value);
      return Number.isFinite(value) ? { ok: true, value } : { ok: false };
    });
  }

  async resolveObjectEvaluation<T extends JsonValue>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    return this.#resolveVariant(flagKey, defaultValue, context, (variant) => {
      if (variant.payload?.type !== 'json') return { ok: false };
      try {
        return { ok: true, value: JSON.parse(variant.payload.value) as T };
      } catch {
        return { ok: false, parse: true };
      }
    });
  }

  #resolveVariant<T>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext,
    read: (variant: FlagVariant) => { ok: true; value: T } | { ok: false; parse?: boolean },
  ): ResolutionDetails<T> {
    const toggle = this.#flags.toggle(flagKey);
    if (toggle === undefined) return notFound(flagKey, defaultValue);
    const variant = this.#flags.variant(flagKey, this.#context(context));
    if (!variant.featureEnabled) return { value: defaultValue, reason: StandardResolutionReasons.DISABLED };
    if (!variant.enabled) return { value: defaultValue, reason: StandardResolutionReasons.DEFAULT };
    const result = read(variant);
    if (!result.ok) {
      return {
        value: defaultValue,
        variant: variant.name,
        reason: StandardResolutionReasons.ERROR,
        errorCode: result.parse === true ? ErrorCode.PARSE_ERROR : ErrorCode.TYPE_MISMATCH,
        errorMessage: `variant "${variant.name}" of ${flagKey} has ${variant.payload ? `a ${variant.payload.type}` : 'no'} payload`,
      };
    }
    return { value: result.value, variant: variant.name, reason: StandardResolutionReasons.SPLIT };
  }

  /** OpenFeature context → Gantry context: targetingKey is the user; unknown scalar keys become properties. */
  #context(context: EvaluationContext): FlagContext {
    const properties: Record<string, string> = {};
    let userId: string | undefined;
    let tenantId: string | undefined;
    let sessionId: string | undefined;
    let remoteAddress: string | undefined;
    let currentTime: Date | undefined;
    for (const [key, value] of Object.entries(context)) {
      if (value === undefined || value === null) continue;
      if (key === 'targetingKey' || key === 'userId') userId = scalar(value);
      else if (key === this.#tenantKey) tenantId = scalar(value);
      else if (key === 'sessionId') sessionId = scalar(value);
      else if (key === 'remoteAddress') remoteAddress = scalar(value);
      else if (key === 'currentTime' && value instanceof Date) currentTime = value;
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        properties[key] = String(value);
      else if (value instanceof Date) properties[key] = value.toISOString();
    }
    return {
      ...(userId !== undefined && { userId }),
      ...(tenantId !== undefined && { tenantId }),
      ...(sessionId !== undefined && { sessionId }),
      ...(remoteAddress !== undefined && { remoteAddress }),
      ...(currentTime !== undefined && { currentTime }),
      properties,
    };
  }
}

/** A context value as a string (objects as JSON). */
function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

function notFound<T>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
  return {
    value: defaultValue,
    reason: StandardResolutionReasons.ERROR,
    errorCode: ErrorCode.FLAG_NOT_FOUND,
    errorMessage: `flag ${flagKey} is not defined in Unleash`,
  };
}
