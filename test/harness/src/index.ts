// @gantry/test-harness: real servers on loopback for Gantry's tests, benchmarks and demo.
export { CACHE_DIR, REPOSITORY_ROOT, createRunDirectory, freePort } from './environment.ts';
export { ensureKafkaJars, kafkaLibraryDirectory, startKafka } from './kafka.ts';
export type { KafkaInfo, KafkaServer, StartKafkaOptions } from './kafka.ts';
export { createDatabase, postgresUrl, startPostgres } from './postgres.ts';
export type { PostgresInfo, PostgresServer, StartPostgresOptions } from './postgres.ts';
export { HarnessError, ManagedProcess } from './process.ts';
export type { ProcessSpec } from './process.ts';
export {
  addScrapeTarget,
  prometheusBinary,
  queryPrometheus,
  reloadPrometheus,
  startPrometheus,
  waitForQuery,
} from './prometheus.ts';
export type {
  PromSample,
  PrometheusInfo,
  PrometheusServer,
  ScrapeTarget,
  StartPrometheusOptions,
} from './prometheus.ts';
export { SERVER_NAMES, parseServerList, startServers } from './servers.ts';
export type { HarnessInfo, RunningServers, ServerName } from './servers.ts';
export { startUnleash } from './unleash.ts';
export type { StartUnleashOptions, UnleashInfo, UnleashServer } from './unleash.ts';
export { unleashAdmin } from './unleash-admin.ts';
export type { UnleashAdmin, UnleashConstraint, UnleashStrategy, UnleashVariant } from './unleash-admin.ts';
