// Packs every published package the way `pnpm publish` would (publishConfig applied) and checks the tarball
// with publint (package.json correctness) and attw (types resolve for ESM and CJS consumers).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const packDir = join(root, '.pack');
rmSync(packDir, { recursive: true, force: true });
mkdirSync(packDir);

const run = (command: string, args: string[], cwd: string): boolean =>
  spawnSync(command, args, { cwd, stdio: 'inherit' }).status === 0;

let failed = 0;
for (const name of readdirSync(join(root, 'packages'))) {
  const dir = join(root, 'packages', name);
  const destination = join(packDir, name);
  mkdirSync(destination);
  if (!run('pnpm', ['pack', '--pack-destination', destination], dir)) {
    failed += 1;
    continue;
  }
  const [tarball] = readdirSync(destination).filter((file) => file.endsWith('.tgz'));
  if (tarball === undefined) {
    failed += 1;
    continue;
  }
  const file = join(destination, tarball);
  const ok =
    run('pnpm', ['exec', 'publint', 'run', '--strict', file], root) &&
    run('pnpm', ['exec', 'attw', '--profile', 'node16', '--format', 'table-flipped', file], root);
  if (!ok) failed += 1;
}
if (failed > 0) {
  process.stderr.write(`\n${failed} package(s) failed the tarball checks\n`);
  process.exitCode = 1;
}
