// @gantry/health: Kubernetes probes answered from cached checks, and a graceful shutdown that drops no request.
// Framework adapters live at `@gantry/health/fastify` and `@gantry/health/node-http`; test doubles at `./testing`.
export type { Check, CheckResult, CheckStatus, InfoContributor, ShutdownHook } from './contracts.ts';
export { createHealth, exitProcess, RESERVED_CHECK_NAMES, RESERVED_INFO_KEYS } from './health.ts';
export type { Health, HealthChange, HealthReport, ProbeName } from './health.ts';
export type { CheckData, CheckView } from './check-runner.ts';
export {
  DEFAULT_CHECK_INTERVAL_MS,
  DEFAULT_CHECK_TIMEOUT_MS,
  DEFAULT_DEADLINE_MARGIN_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_GRACE_PERIOD_MS,
  DEFAULT_HOOK_TIMEOUT_MS,
  DEFAULT_IDLE_SOCKET_GRACE_MS,
  DEFAULT_ON_DEMAND_CACHE_MS,
  DEFAULT_SHUTDOWN_DELAY_MS,
  DEFAULT_SHUTDOWN_SIGNALS,
  DEFAULT_SUCCESS_THRESHOLD,
  HEALTH_GROUPS,
  healthOptionsFromEnv,
} from './options.ts';
export type {
  CheckPolicy,
  HealthConfig,
  HealthGroup,
  HealthOptions,
  ShutdownConfig,
  ShutdownOptions,
  ShutdownOutcome,
} from './options.ts';
export { HEALTH_ERROR_CODES, HealthError, isHealthError } from './errors.ts';
export type { HealthErrorCode } from './errors.ts';
export type { Logger } from './logger.ts';
export { systemClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { SHUTDOWN_PHASES } from './metrics.ts';
export type { ShutdownPhase } from './metrics.ts';
export { DEFAULT_HEALTH_PATHS } from './routes.ts';
export type { HealthPaths, HealthRouteOptions } from './routes.ts';
export { createEventLoopDelayCheck, DEFAULT_MAX_EVENT_LOOP_DELAY_MS } from './checks/event-loop.ts';
export type { EventLoopDelayCheckOptions } from './checks/event-loop.ts';
export { createMemoryCheck, DEFAULT_MAX_HEAP_USED_RATIO } from './checks/memory.ts';
export type { MemoryCheckOptions } from './checks/memory.ts';
export { createPoolEndHook, createPostgresCheck } from './checks/postgres.ts';
export type { PostgresCheckOptions, PostgresPoolLike } from './checks/postgres.ts';
export { createKafkaCheck, createKafkaDisconnectHook } from './checks/kafka.ts';
export type { KafkaAdminLike, KafkaCheck, KafkaCheckOptions, KafkaLike } from './checks/kafka.ts';
export { createHttpCheck } from './checks/http.ts';
export type { HttpCheckOptions } from './checks/http.ts';
export { createCheck, createShutdownHook } from './checks/custom.ts';
export type { CreateCheckOptions } from './checks/custom.ts';
