// Request context: tenant and user travel as OpenTelemetry baggage entries `tenant.id` and `user.id`, so other
// packages read them through @opentelemetry/api without importing telemetry.
import { type Baggage, type BaggageEntry, context, propagation, type Context } from '@opentelemetry/api';

/** Baggage key of the tenant id. */
export const TENANT_BAGGAGE_KEY = 'tenant.id';
/** Baggage key of the user id. */
export const USER_BAGGAGE_KEY = 'user.id';

/** What telemetry knows about the current request. */
export interface RequestContext {
  readonly tenantId: string | undefined;
  readonly userId: string | undefined;
}

/**
 * The tenant and user of the active context (read from baggage; any package can do the same with
 * `propagation.getBaggage(context.active())?.getEntry('tenant.id')`).
 * @default { tenantId: undefined, userId: undefined } outside a request
 * @example
 * const { tenantId } = getRequestContext();
 */
export function getRequestContext(active: Context = context.active()): RequestContext {
  const baggage = propagation.getBaggage(active);
  if (baggage === undefined) return { tenantId: undefined, userId: undefined };
  return {
    tenantId: baggage.getEntry(TENANT_BAGGAGE_KEY)?.value,
    userId: baggage.getEntry(USER_BAGGAGE_KEY)?.value,
  };
}

/**
 * Runs `fn` with tenant and/or user set in baggage (e.g. in a Kafka consumer or a job, where no HTTP request
 * sets them). Returns what `fn` returns.
 * @example
 * await withRequestContext({ tenantId: message.headers.tenant }, () => handle(message));
 */
export function withRequestContext<T>(values: Partial<RequestContext>, fn: () => T): T {
  const active = context.active();
  let baggage = propagation.getBaggage(active) ?? propagation.createBaggage();
  if (values.tenantId !== undefined) baggage = baggage.setEntry(TENANT_BAGGAGE_KEY, { value: values.tenantId });
  if (values.userId !== undefined) baggage = baggage.setEntry(USER_BAGGAGE_KEY, { value: values.userId });
  return context.with(propagation.setBaggage(active, baggage), fn);
}

/**
 * Baggage of one request whose `user.id` entry is resolved late: authentication usually runs after telemetry's
 * first hook, so the user is read from the request when someone first asks. Behaves as immutable baggage.
 */
export class RequestBaggage implements Baggage {
  readonly #entries: Map<string, BaggageEntry>;
  #resolveUser: (() => string | undefined) | undefined;

  constructor(entries: Map<string, BaggageEntry>, resolveUser: (() => string | undefined) | undefined) {
    this.#entries = entries;
    this.#resolveUser = resolveUser;
  }

  #settle(): void {
    const resolve = this.#resolveUser;
    if (resolve === undefined) return;
    let user: string | undefined;
    try {
      user = resolve();
    } catch {
      user = undefined;
    }
    // Only settle once a user is known: before authentication ran, asking again later may still find one.
    if (user !== undefined && user !== '') {
      this.#entries.set(USER_BAGGAGE_KEY, { value: user });
      this.#resolveUser = undefined;
    }
  }

  getEntry(key: string): BaggageEntry | undefined {
    if (key === USER_BAGGAGE_KEY) this.#settle();
    return this.#entries.get(key);
  }

  getAllEntries(): [string, BaggageEntry][] {
    this.#settle();
    return [...this.#entries.entries()];
  }

  setEntry(key: string, entry: BaggageEntry): Baggage {
    return propagation.createBaggage(Object.fromEntries([...this.getAllEntries(), [key, entry]]));
  }

  removeEntry(key: string): Baggage {
    return propagation.createBaggage(Object.fromEntries(this.getAllEntries().filter(([name]) => name !== key)));
  }

  removeEntries(...keys: string[]): Baggage {
    return propagation.createBaggage(Object.fromEntries(this.getAllEntries().filter(([name]) => !keys.includes(name))));
  }

  clear(): Baggage {
    return propagation.createBaggage();
  }
}
