// Vitest global setup: starts the shared real servers once per test run and hands their connection details to
// every test file through `inject('harness')` (see ./vitest.ts). Which servers: GANTRY_TEST_SERVERS
// (comma-separated, default all).
import type { TestProject } from 'vitest/node';
import { parseServerList, startServers, type HarnessInfo } from './servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    harness: HarnessInfo;
  }
}

const log = (line: string): void => {
  process.stderr.write(`[harness] ${line}\n`);
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const wanted = parseServerList(process.env['GANTRY_TEST_SERVERS']);
  const begin = performance.now();
  const servers = await startServers(wanted, log);
  const times = Object.entries(servers.info.startTimes)
    .map(([name, ms]) => `${name} ${(ms / 1000).toFixed(2)} s`)
    .join(', ');
  log(`started ${times || 'no servers'} (all ready after ${((performance.now() - begin) / 1000).toFixed(2)} s)`);
  log(`server logs: ${servers.info.runDirectory}`);
  project.provide('harness', servers.info);
  const stopOnSignal = (): void => {
    void servers.stop();
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  return async () => {
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    const stopBegin = performance.now();
    await servers.stop();
    log(`stopped all servers in ${((performance.now() - stopBegin) / 1000).toFixed(2)} s`);
  };
}
