import type * as OpenTelemetryApi from '@opentelemetry/api';
import type { Context as UnleashContext } from 'unleash-client';
import { DEFAULT_TENANT_PROPERTY } from './options.ts';

type Properties = NonNullable<UnleashContext['properties']>;

/**
 * Who a flag is evaluated for. `tenantId` reaches Unleash as a context property (`tenantId` by default), so
 * per-tenant overrides are ordinary Unleash constraints. Missing `tenantId`/`userId` are read from the
 * OpenTelemetry baggage entries `tenant.id`/`user.id` of the current request when `@opentelemetry/api` is
 * installed.
 */
export interface FlagContext {
  readonly userId?: string;
  readonly tenantId?: string;
  readonly sessionId?: string;
  readonly remoteAddress?: string;
  readonly currentTime?: Date;
  /** Custom context fields used in Unleash constraints. */
  readonly properties?: Readonly<Record<string, string | number | undefined>>;
}

/** Tenant and user of the current request, from outside the call (OTel baggage by default). */
export interface AmbientContext {
  readonly tenantId?: string | undefined;
  readonly userId?: string | undefined;
}

/** Reads the {@link AmbientContext} of the current request; called on every evaluation, so it must be cheap. */
export type AmbientContextReader = () => AmbientContext | undefined;

/** OpenTelemetry baggage entry that carries the tenant of the current request (ARCHITECTURE.md, "Request context"). */
export const TENANT_BAGGAGE_KEY = 'tenant.id';
/** OpenTelemetry baggage entry that carries the user of the current request. */
export const USER_BAGGAGE_KEY = 'user.id';

/**
 * Loads `@opentelemetry/api` when it is installed and returns a reader of the `tenant.id`/`user.id` baggage entries
 * of the active context; undefined when the package is missing. The API keeps its state on a global symbol, so this
 * copy sees the baggage set by whichever copy the application uses.
 */
export async function loadBaggageReader(): Promise<AmbientContextReader | undefined> {
  let api: typeof OpenTelemetryApi;
  try {
    api = await import('@opentelemetry/api');
  } catch {
    return undefined;
  }
  const { propagation, context } = api;
  // OTel contexts are immutable and one request keeps the same active context from its first hook to its handler,
  // so the identity read for the last context is reused until the active context changes. Except a missing user:
  // @gantry/telemetry resolves `user.id` only once authentication has run, so an evaluation before authentication
  // must not fix the user as unknown for the rest of the request; it is looked up again while missing.
  let lastContext: unknown;
  let lastBaggage: OpenTelemetryApi.Baggage | undefined;
  let lastIdentity: AmbientContext | undefined;
  return () => {
    const active = context.active();
    if (active !== lastContext) {
      lastContext = active;
      lastBaggage = propagation.getBaggage(active);
      lastIdentity =
        lastBaggage === undefined
          ? undefined
          : {
              tenantId: lastBaggage.getEntry(TENANT_BAGGAGE_KEY)?.value,
              userId: lastBaggage.getEntry(USER_BAGGAGE_KEY)?.value,
            };
    } else if (lastBaggage !== undefined && lastIdentity?.userId === undefined) {
      const userId = lastBaggage.getEntry(USER_BAGGAGE_KEY)?.value;
      if (userId !== undefined) lastIdentity = { tenantId: lastIdentity?.tenantId, userId };
    }
    return lastIdentity;
  };
}

/** The tenant and user a call is evaluated for, after the ambient context filled the gaps. */
export function effectiveIdentity(
  context: FlagContext | undefined,
  ambient: AmbientContextReader | undefined,
): { tenantId: string | undefined; userId: string | undefined } {
  let tenantId = context?.tenantId;
  let userId = context?.userId;
  if ((tenantId === undefined || userId === undefined) && ambient !== undefined) {
    const found = ambient();
    tenantId ??= found?.tenantId;
    userId ??= found?.userId;
  }
  return { tenantId, userId };
}

/**
 * Builds the context object unleash-client evaluates. This runs on every evaluation: it reads the ambient context
 * only when the caller left a gap, and sets only the keys that have a value (what a hand-written context holds).
 */
export function toUnleashContext(
  context: FlagContext | undefined,
  ambient: AmbientContextReader | undefined,
  tenantProperty: string,
): UnleashContext {
  let tenantId = context?.tenantId;
  let userId = context?.userId;
  if ((tenantId === undefined || userId === undefined) && ambient !== undefined) {
    const found = ambient();
    if (found !== undefined) {
      tenantId ??= found.tenantId;
      userId ??= found.userId;
    }
  }
  // The usual call passes only who it is for: build that object as one literal, so it has its final shape from the
  // start (a measured 6 ns of a 200 ns evaluation against adding keys one by one).
  if (
    context === undefined ||
    (context.properties === undefined &&
      context.sessionId === undefined &&
      context.remoteAddress === undefined &&
      context.currentTime === undefined)
  ) {
    if (tenantId === undefined) return userId === undefined ? {} : { userId };
    const identity: Properties =
      tenantProperty === DEFAULT_TENANT_PROPERTY ? { tenantId } : { [tenantProperty]: tenantId };
    return userId === undefined ? { properties: identity } : { userId, properties: identity };
  }
  let properties = context.properties as Properties | undefined;
  if (tenantId !== undefined) {
    if (properties !== undefined) properties = { ...properties, [tenantProperty]: tenantId };
    else if (tenantProperty === DEFAULT_TENANT_PROPERTY) properties = { tenantId };
    else properties = { [tenantProperty]: tenantId };
  }
  const result: UnleashContext = userId === undefined ? {} : { userId };
  if (properties !== undefined) result.properties = properties;
  if (context.sessionId !== undefined) result.sessionId = context.sessionId;
  if (context.remoteAddress !== undefined) result.remoteAddress = context.remoteAddress;
  if (context.currentTime !== undefined) result.currentTime = context.currentTime;
  return result;
}
