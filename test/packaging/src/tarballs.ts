// Tarballs of every published package, packed the way `pnpm publish` would (publishConfig applied, workspace:
// ranges replaced) from the built `dist`. CI builds before the tests run; when a `dist` is missing or older than
// its sources (a developer running vitest directly), that package is built first and the test says so.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One packed package. */
export interface PackedPackage {
  /** Folder name under packages/. */
  readonly folder: string;
  readonly name: string;
  readonly tarball: string;
  /** The package.json inside the tarball (publishConfig applied). */
  readonly manifest: {
    readonly name: string;
    readonly exports: Record<string, unknown>;
    readonly bin?: Record<string, string>;
  };
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function oldestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let oldest = Number.POSITIVE_INFINITY;
  for (const entry of readdirSync(path)) oldest = Math.min(oldest, oldestMtime(join(path, entry)));
  return oldest;
}

/** Whether `packages/<folder>/dist` is missing or older than the package's sources or build settings. */
export function needsBuild(root: string, folder: string): boolean {
  const directory = join(root, 'packages', folder);
  const dist = join(directory, 'dist');
  if (!existsSync(dist) || readdirSync(dist).length === 0) return true;
  const sources = Math.max(
    newestMtime(join(directory, 'src')),
    newestMtime(join(directory, 'package.json')),
    newestMtime(join(directory, 'tsup.config.ts')),
  );
  return sources > oldestMtime(dist);
}

/**
 * Builds the packages whose `dist` is missing or stale, then packs every package into `destination`.
 * @returns the packed packages, and the folders that had to be built.
 */
export async function packWorkspace(
  root: string,
  destination: string,
): Promise<{ packages: PackedPackage[]; built: string[] }> {
  const folders = readdirSync(join(root, 'packages')).sort();
  const built = folders.filter((folder) => needsBuild(root, folder));
  for (const folder of built) {
    try {
      await run('pnpm', ['run', 'build'], { cwd: join(root, 'packages', folder), timeout: 180_000 });
    } catch (error) {
      const output = error as { stdout?: string; stderr?: string };
      throw new Error(
        `packages/${folder} has no up-to-date dist and building it failed (run \`pnpm build\`):\n` +
          `${output.stdout ?? ''}${output.stderr ?? String(error)}`,
        { cause: error },
      );
    }
  }
  const packages = await Promise.all(
    folders.map(async (folder): Promise<PackedPackage> => {
      const target = join(destination, folder);
      mkdirSync(target, { recursive: true });
      await run('pnpm', ['pack', '--pack-destination', target], {
        cwd: join(root, 'packages', folder),
        timeout: 120_000,
      });
      const file = readdirSync(target).find((entry) => entry.endsWith('.tgz'));
      if (file === undefined) throw new Error(`pnpm pack wrote no tarball for packages/${folder}`);
      const tarball = join(target, file);
      const { stdout } = await run('tar', ['-xzOf', tarball, 'package/package.json']);
      const manifest = JSON.parse(stdout) as PackedPackage['manifest'];
      return { folder, name: manifest.name, tarball, manifest };
    }),
  );
  return { packages, built };
}
