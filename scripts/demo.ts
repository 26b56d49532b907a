// The README's main command (`./gantry demo`). Until the rollout demo lands (issue: the main job), it reports
// which Gantry packages exist in this checkout and what each one provides.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const packagesDir = join(root, 'packages');
const planned = ['health', 'telemetry', 'flags', 'migrations', 'secrets', 'agent'];
const present = existsSync(packagesDir) ? readdirSync(packagesDir) : [];

process.stdout.write('Gantry packages in this checkout\n\n');
for (const name of planned) {
  const manifest = join(packagesDir, name, 'package.json');
  if (present.includes(name) && existsSync(manifest)) {
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string; description?: string };
    process.stdout.write(`  ✓ ${pkg.name.padEnd(20)} ${pkg.version.padEnd(8)} ${pkg.description ?? ''}\n`);
  } else {
    process.stdout.write(`  · @gantry/${name.padEnd(12)} not built yet\n`);
  }
}
process.stdout.write('\nThe progressive-rollout demo arrives with examples/orders-service.\n');
