#!/usr/bin/env node
// gantry-harness: the test harness from the command line.
//   ensure-kafka         fetch the Kafka broker jars into the cache (used by ./gantry before tests)
//   up [servers]         start servers, print their connection details as JSON, run until Ctrl-C
import { ensureKafkaJars } from './kafka.ts';
import { parseServerList, startServers } from './servers.ts';

const HELP = `Usage: gantry-harness <command> [--json]

Commands:
  ensure-kafka        Fetch the Apache Kafka broker jars from Maven Central into .cache/ (once).
  up [list]           Start servers (comma list of postgres,unleash,kafka,prometheus; default all),
                      print their connection details as JSON and keep them running until Ctrl-C.

Exit codes: 0 success, 1 a server failed to start, 2 bad usage.`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const log = (line: string): void => {
    process.stderr.write(`[harness] ${line}\n`);
  };
  switch (command) {
    case 'ensure-kafka': {
      const dir = await ensureKafkaJars(log);
      if (rest.includes('--json')) process.stdout.write(`${JSON.stringify({ libs: dir })}\n`);
      return 0;
    }
    case 'up': {
      let wanted;
      try {
        wanted = parseServerList(rest.find((arg) => !arg.startsWith('-')));
      } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        return 2;
      }
      const servers = await startServers(wanted, log);
      process.stdout.write(`${JSON.stringify(servers.info, null, 2)}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await servers.stop();
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${HELP}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${HELP}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
