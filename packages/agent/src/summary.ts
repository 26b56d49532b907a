// What one agent knows about its pod, exchanged with peers (`GET /gate/v1/summary`, Kafka `gantry.fleet`).
import { totalsFromJson, totalsToJson, type Totals } from './totals.ts';
import { parseSchemaInfo, type SchemaInfo } from './watcher.ts';

/** Names of the rollback triggers (ADR-060). */
export type TriggerName = 'error-rate' | 'latency' | 'health' | 'crashloop' | 'migration';

/** State of one trigger on one pod. */
export interface TriggerStatus {
  readonly name: TriggerName;
  readonly firing: boolean;
  /** Since when the condition holds (epoch ms), while it does. */
  readonly since: number | undefined;
  readonly detail: string;
}

/** Probe state as the agent saw it. */
export type ProbeState = 'UP' | 'DOWN' | 'UNREACHABLE' | 'UNKNOWN';

/** One pod's summary. */
export interface PodSummary {
  readonly schemaVersion: 1;
  readonly pod: string;
  readonly namespace: string | undefined;
  readonly podTemplateHash: string | undefined;
  readonly version: string | undefined;
  readonly service: string | undefined;
  readonly imageDigest: string | undefined;
  readonly agentStartedAt: number;
  readonly appStartedAt: number | undefined;
  readonly at: number;
  readonly live: ProbeState;
  readonly ready: ProbeState;
  readonly consecutiveHealthFailures: number;
  /** Cumulative totals since the agent started, warm-up periods excluded. */
  readonly totals: Totals;
  readonly triggers: readonly TriggerStatus[];
  readonly schema: SchemaInfo | null;
  readonly restarts: number;
}

/**
 * The service a pod belongs to, for fleet membership: Flagger renames the primary's selector label to
 * `<name>-primary`, so a `-primary` suffix does not make another service.
 * @example fleetServiceName('orders-primary') // 'orders'
 */
export function fleetServiceName(service: string | undefined): string | undefined {
  return service?.endsWith('-primary') === true && service.length > '-primary'.length
    ? service.slice(0, -'-primary'.length)
    : service;
}

/**
 * Whether `summary` is a pod of the same fleet as `self`: the same service ({@link fleetServiceName}) in the same
 * namespace. Unknown values only match unknown values.
 * @example inSameFleet(peerSummary, ownSummary)
 */
export function inSameFleet(
  summary: Pick<PodSummary, 'service' | 'namespace'>,
  self: Pick<PodSummary, 'service' | 'namespace'>,
): boolean {
  return summary.namespace === self.namespace && fleetServiceName(summary.service) === fleetServiceName(self.service);
}

const TRIGGERS: readonly TriggerName[] = ['error-rate', 'latency', 'health', 'crashloop', 'migration'];
const PROBE_STATES: readonly ProbeState[] = ['UP', 'DOWN', 'UNREACHABLE', 'UNKNOWN'];

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= 253 ? value : undefined;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** JSON form of a summary. */
export function summaryToJson(summary: PodSummary): PodSummary {
  return { ...summary, totals: totalsToJson(summary.totals), triggers: summary.triggers.map((item) => ({ ...item })) };
}

/** Validates a summary received from a peer or Kafka; `undefined` when it is not one (never throws). */
export function summaryFromJson(value: unknown): PodSummary | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (record['schemaVersion'] !== 1) return undefined;
  const pod = optionalString(record['pod']);
  const totals = totalsFromJson(record['totals']);
  const at = finite(record['at']);
  const agentStartedAt = finite(record['agentStartedAt']);
  if (pod === undefined || totals === undefined || at === undefined || agentStartedAt === undefined) return undefined;
  const probe = (item: unknown): ProbeState =>
    PROBE_STATES.includes(item as ProbeState) ? (item as ProbeState) : 'UNKNOWN';
  const triggers = Array.isArray(record['triggers'])
    ? (record['triggers'] as unknown[]).flatMap((item): TriggerStatus[] => {
        const entry = item as Record<string, unknown> | null;
        const name = entry?.['name'];
        if (!TRIGGERS.includes(name as TriggerName)) return [];
        return [
          {
            name: name as TriggerName,
            firing: entry?.['firing'] === true,
            since: finite(entry?.['since']),
            detail: typeof entry?.['detail'] === 'string' ? entry['detail'].slice(0, 300) : '',
          },
        ];
      })
    : [];
  return {
    schemaVersion: 1,
    pod,
    namespace: optionalString(record['namespace']),
    podTemplateHash: optionalString(record['podTemplateHash']),
    version: optionalString(record['version']),
    service: optionalString(record['service']),
    imageDigest: optionalString(record['imageDigest']),
    agentStartedAt,
    appStartedAt: finite(record['appStartedAt']),
    at,
    live: probe(record['live']),
    ready: probe(record['ready']),
    consecutiveHealthFailures: finite(record['consecutiveHealthFailures']) ?? 0,
    totals,
    triggers,
    schema: parseSchemaInfo(record['schema']) ?? null,
    restarts: finite(record['restarts']) ?? 0,
  };
}
