// Runs the benchmarks in src/*.bench.ts one after another (or those named on the command line:
// `./gantry bench health migrations`). Each benchmark prints its own table of ratios and writes
// reports/bench/<name>.json; this runner prints a one-line summary per benchmark and exits non-zero if any failed.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const HELP = `Usage: ./gantry bench [name ...] [--help]

Runs bench/src/<name>.bench.ts for each name (default: all), one at a time so they do not compete for the CPU.
Each prints a table of figures and ratios against its peers and writes reports/bench/<name>.json.
Exit codes: 0 all ran, 1 a benchmark failed, 2 unknown benchmark name.`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const dir = join(import.meta.dirname, 'src');
const available = readdirSync(dir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = args.filter((arg) => !arg.startsWith('-'));
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${available.join(', ') || 'none'}\n`);
  process.exit(2);
}
const selected = wanted.length > 0 ? wanted : available;
if (selected.length === 0) {
  process.stdout.write('No benchmarks yet.\n');
  process.exit(0);
}
const results: string[] = [];
for (const name of selected) {
  process.stdout.write(`\n━━ ${name} ━━\n`);
  const started = performance.now();
  const run = spawnSync(process.execPath, ['--expose-gc', join(dir, `${name}.bench.ts`)], { stdio: 'inherit' });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  results.push(`${run.status === 0 ? '✓' : '✗'} ${name} (${seconds} s)`);
}
process.stdout.write(`\n${results.join('\n')}\n`);
process.exitCode = results.some((line) => line.startsWith('✗')) ? 1 : 0;
