// A read-only npm registry on loopback that serves the packages this workspace already downloaded (pnpm's
// node_modules/.pnpm), so `npm install` of our tarballs resolves their dependencies offline, the way a user's
// install would against the public registry, limited to the versions our lockfile holds. Packuments list every
// version found; tarballs are made from the installed package folders on first request.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';

/** A running registry. */
export interface LocalRegistry {
  readonly url: string;
  /** Package names npm asked for that the workspace does not have (answered 404). */
  readonly missing: ReadonlySet<string>;
  /** Number of tarballs served. */
  tarballsServed(): number;
  close(): Promise<void>;
}

interface Installed {
  readonly directory: string;
  readonly manifest: Record<string, unknown>;
}

/** Every package folder under `<root>/node_modules/.pnpm`, by name and version. */
function indexStore(root: string): Map<string, Map<string, Installed>> {
  const store = join(root, 'node_modules', '.pnpm');
  const index = new Map<string, Map<string, Installed>>();
  const add = (directory: string): void => {
    // The package itself is a real folder; its dependencies beside it are symlinks.
    if (lstatSync(directory).isSymbolicLink()) return;
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    const name = manifest['name'];
    const version = manifest['version'];
    if (typeof name !== 'string' || typeof version !== 'string') return;
    let versions = index.get(name);
    if (versions === undefined) {
      versions = new Map();
      index.set(name, versions);
    }
    if (!versions.has(version)) versions.set(version, { directory, manifest });
  };
  for (const entry of readdirSync(store)) {
    const modules = join(store, entry, 'node_modules');
    let names: string[];
    try {
      names = readdirSync(modules);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(modules, name);
      if (name.startsWith('@') && !lstatSync(path).isSymbolicLink()) {
        for (const scoped of readdirSync(path)) add(join(path, scoped));
      } else add(path);
    }
  }
  return index;
}

/** Packs a package folder the way npm does: every file under `package/`, gzipped. */
function packFolder(directory: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const name = basename(directory);
    const escaped = name.replace(/[.[\]*^$\\]/g, '\\$&');
    const tar = spawn(
      'tar',
      [
        '-C',
        dirname(directory),
        '-czf',
        '-',
        // pnpm's store hard-links files with equal content; npm drops link entries when it extracts a tarball.
        '--hard-dereference',
        `--transform=s,^${escaped},package,`,
        '--exclude=node_modules',
        name,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks: Buffer[] = [];
    let errors = '';
    tar.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    tar.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    tar.on('error', reject);
    tar.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`tar failed for ${directory}: ${errors}`));
    });
  });
}

/** Highest version by semver precedence (pre-releases after their release line is fine here). */
function compareVersions(a: string, b: string): number {
  const parse = (value: string) => value.split(/[-+]/)[0]!.split('.').map(Number);
  const left = parse(a);
  const right = parse(b);
  for (let index = 0; index < 3; index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.includes('-') === b.includes('-') ? 0 : a.includes('-') ? -1 : 1;
}

function latest(versions: ReadonlyMap<string, unknown>): string | undefined {
  const all = [...versions.keys()].sort(compareVersions);
  return all.filter((version) => !version.includes('-')).at(-1) ?? all.at(-1);
}

/**
 * Starts the registry for the workspace at `root` on 127.0.0.1, port 0.
 * @example const registry = await startLocalRegistry(root); // npm install --registry registry.url …
 */
export async function startLocalRegistry(root: string): Promise<LocalRegistry> {
  const index = indexStore(root);
  const missing = new Set<string>();
  const tarballs = new Map<string, Promise<Buffer>>();
  let served = 0;
  let base = '';
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent((request.url ?? '/').split('?')[0]!);
    const fail = (status: number, error: string): void => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
    };
    const tarball = /^\/-\/(.+)\/([^/]+)\.tgz$/.exec(path);
    if (tarball !== null) {
      const [, name = '', version = ''] = tarball;
      const installed = index.get(name)?.get(version);
      if (installed === undefined) {
        fail(404, 'not found');
        return;
      }
      const key = `${name}@${version}`;
      let packed = tarballs.get(key);
      if (packed === undefined) {
        packed = packFolder(installed.directory);
        tarballs.set(key, packed);
      }
      packed.then(
        (body) => {
          served += 1;
          response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
          response.end(body);
        },
        (error: unknown) => fail(500, String(error)),
      );
      return;
    }
    const name = path.slice(1);
    const versions = index.get(name);
    if (versions === undefined) {
      missing.add(name);
      fail(404, 'not found');
      return;
    }
    const packument = {
      name,
      'dist-tags': { latest: latest(versions) },
      versions: Object.fromEntries(
        [...versions].map(([version, installed]) => [
          version,
          {
            ...installed.manifest,
            dist: { tarball: `${base}/-/${encodeURIComponent(name)}/${version}.tgz` },
          },
        ]),
      ),
    };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    missing,
    tarballsServed: () => served,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
