export type { Check, CheckResult, CheckStatus, InfoContributor, ShutdownHook } from './contracts.ts';
