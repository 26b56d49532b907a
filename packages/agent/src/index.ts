// @gantry/agent: the rollout-gating sidecar. See README.md for the endpoints and configuration.
export { AGENT_VERSION, createAgent } from './agent.ts';
export type { Agent } from './agent.ts';
export { MONTH_END_FREEZE, createCalendar, instantToWall, wallToInstant } from './calendar.ts';
export type { Calendar, CalendarKind, CalendarWindowOptions, WindowOccurrence } from './calendar.ts';
export { formatDuration, parseDurationMs } from './duration.ts';
export { AGENT_ERROR_CODES, AgentError, isAgentError } from './errors.ts';
export type { AgentErrorCode } from './errors.ts';
export { cloudEvent } from './events.ts';
export type { CloudEvent } from './events.ts';
export { parseExposition } from './exposition.ts';
export type { Sample } from './exposition.ts';
export { defaultResolver } from './fleet.ts';
export { policyHash } from './gates.ts';
export type { CheckOutcome, GateQuery, ReasonCode, Verdict, VerdictDocument } from './gates.ts';
export { DEFAULT_HOLD_TTL_MS, MAX_HOLD_TTL_MS } from './holds.ts';
export type { AuditEntry, Hold, HoldKind } from './holds.ts';
export { DEFAULT_PODINFO_DIRECTORY, parseDownwardApiFile, podIdentityFromEnvironment } from './identity.ts';
export type { PodIdentity } from './identity.ts';
export { SILENT_LOGGER, createJsonLogger } from './logger.ts';
export type { LogLevel, Logger } from './logger.ts';
export {
  BUILT_IN_GATES,
  DEFAULT_AGENT_PORT,
  DEFAULT_APP_TIMEOUT_MS,
  DEFAULT_APP_URL,
  DEFAULT_EVENTS_TOPIC,
  DEFAULT_FLEET_TOPIC,
  DEFAULT_HISTORY_MS,
  DEFAULT_INTERVAL_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_URL_LENGTH,
  DEFAULT_MAX_WAIT_MS,
  DEFAULT_RUN_IDLE_MS,
  DEFAULT_STALE_AFTER_MS,
  DEFAULT_WARMUP_MS,
  agentOptionsFromEnv,
  mergeOptions,
  resolveAgentConfig,
  resolvePolicy,
} from './options.ts';
export type {
  AgentConfig,
  AgentOptions,
  AppOptions,
  CompareOptions,
  EventsOptions,
  FleetOptions,
  GateCheckName,
  GateDefinition,
  PolicyOptions,
  ResolvedGate,
  ResolvedPolicy,
  Resolver,
  SloOptions,
  TriggerOptions,
} from './options.ts';
export { FLAGGER_DEFAULT_GATES, FLAGGER_HOOKS, flaggerStatus, tokensMatch } from './server.ts';
export type { FlaggerHook, FlaggerPayload } from './server.ts';
export {
  ERROR_RATE_MIXTURE_SCALE,
  LATENCY_MIXTURE_SCALE,
  TAIL_MIXTURE_SCALE,
  createRng,
  errorRateInterval,
  latencyInterval,
  mannWhitney,
  mixtureHalfWidth,
  normalQuantile,
  samplesForErrorRateGap,
  tailShift,
  wilsonLowerBound,
} from './stats.ts';
export type { Interval } from './stats.ts';
export type { PodSummary, ProbeState, TriggerName, TriggerStatus } from './summary.ts';
export { HTTP_DURATION_METRIC, emptyTotals, histogramQuantile, totalsFromExposition } from './totals.ts';
export type { StatusClass, Totals } from './totals.ts';
export { compareVersions, schemaCompatible, schemaIncompatibility, versionWithin } from './versions.ts';
export type { DatabaseSchema } from './versions.ts';
export type { AppInfo, SchemaInfo } from './watcher.ts';
