// The README's test command (`./gantry test`, also what CI runs): typecheck, lint, build and check the packed
// packages, then the whole vitest suite against real servers. Stops at the first failing step with its code.
import { spawnSync } from 'node:child_process';

const steps: { name: string; command: string; args: string[] }[] = [
  { name: 'typecheck', command: 'pnpm', args: ['run', '--silent', 'typecheck'] },
  { name: 'lint', command: 'pnpm', args: ['run', '--silent', 'lint'] },
  { name: 'build', command: 'pnpm', args: ['run', '--silent', 'build'] },
  { name: 'packages', command: 'pnpm', args: ['run', '--silent', 'check:packages'] },
  { name: 'test', command: 'pnpm', args: ['exec', 'vitest', 'run', ...process.argv.slice(2)] },
];

const timings: string[] = [];
const begin = performance.now();
for (const step of steps) {
  const started = performance.now();
  process.stderr.write(`\n▶ ${step.name}\n`);
  const result = spawnSync(step.command, step.args, { stdio: 'inherit' });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  timings.push(`${step.name} ${seconds} s`);
  if (result.status !== 0) {
    process.stderr.write(
      `\n✗ ${step.name} failed (exit ${String(result.status ?? result.signal)}) after ${seconds} s\n`,
    );
    process.exitCode = result.status ?? 1;
    break;
  }
}
process.stderr.write(`\n${timings.join(' · ')} · total ${((performance.now() - begin) / 1000).toFixed(1)} s\n`);
