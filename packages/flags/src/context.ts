import type * as OpenTelemetryApi from '@opentelemetry/api';
import type { Context as UnleashContext } from 'unleash-client';

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

/** Baggage entry names defined by ARCHITECTURE.md ("Request context"). */
export const TENANT_BAGGAGE_KEY = 'tenant.id';
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
  return () => {
    const baggage = propagation.getBaggage(context.active());
    if (baggage === undefined) return undefined;
    return {
      tenantId: baggage.getEntry(TENANT_BAGGAGE_KEY)?.value,
      userId: baggage.getEntry(USER_BAGGAGE_KEY)?.value,
    };
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

/** Builds the context object unleash-client evaluates. */
export function toUnleashContext(
  context: FlagContext | undefined,
  ambient: AmbientContextReader | undefined,
  tenantProperty: string,
): UnleashContext {
  const { tenantId, userId } = effectiveIdentity(context, ambient);
  const result: UnleashContext = {};
  if (userId !== undefined) result.userId = userId;
  if (context !== undefined) {
    if (context.sessionId !== undefined) result.sessionId = context.sessionId;
    if (context.remoteAddress !== undefined) result.remoteAddress = context.remoteAddress;
    if (context.currentTime !== undefined) result.currentTime = context.currentTime;
  }
  const properties = context?.properties;
  if (tenantId !== undefined) {
    result.properties = { ...(properties as Properties | undefined), [tenantProperty]: tenantId };
  } else if (properties !== undefined) {
    result.properties = properties;
  }
  return result;
}
