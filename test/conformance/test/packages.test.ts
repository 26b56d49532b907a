// House rules every published package must keep (STYLE.md), checked for all of packages/* at once:
// the package.json shape that makes the dev/publish split work, a README with a runnable example and every error
// code, and TSDoc on every public export.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const packagesDir = join(root, 'packages');
const packageNames = existsSync(packagesDir) ? readdirSync(packagesDir).sort() : [];

interface Manifest {
  name: string;
  type?: string;
  sideEffects?: boolean | string[];
  license?: string;
  engines?: { node?: string };
  files?: string[];
  exports?: Record<string, string>;
  bin?: Record<string, string>;
  publishConfig?: { exports?: Record<string, unknown>; bin?: Record<string, string> };
}

const readManifest = (name: string): Manifest =>
  JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as Manifest;

/** Subpath → source file, for the code entries of the exports map. */
function sourceEntries(manifest: Manifest): [string, string][] {
  return Object.entries(manifest.exports ?? {}).filter(([, target]) => target.endsWith('.ts'));
}

/** Every exported symbol of an entry that has no documentation comment, as `entry: name`. */
function undocumentedExports(entry: string): string[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2024,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (source === undefined) return [`${entry}: not found`];
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) return [];
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const documented =
      symbol.getDocumentationComment(checker).length > 0 ||
      (symbol.declarations ?? []).some((declaration) => ts.getJSDocCommentsAndTags(declaration).length > 0);
    if (!documented) missing.push(exported.getName());
  }
  return missing;
}

describe.each(packageNames)('@gantry/%s', (name) => {
  const dir = join(packagesDir, name);
  const manifest = readManifest(name);

  it('has the package.json shape of a published Gantry package', () => {
    expect(manifest.name).toBe(`@gantry/${name}`);
    expect(manifest.type).toBe('module');
    // Tree-shakeable, except entries that exist for their side effect (telemetry's `--import …/register`).
    if (Array.isArray(manifest.sideEffects)) {
      for (const file of manifest.sideEffects) expect(file).toMatch(/^\.\/(src|dist)\/[\w-]+\.(ts|js|cjs)$/);
    } else {
      expect(manifest.sideEffects).toBe(false);
    }
    expect(manifest.license).toBeTruthy();
    expect(manifest.engines?.node).toBe('>=22.12');
    expect(manifest.files).toContain('dist');
    // The repo resolves subpaths to sources; the published tarball maps the very same subpaths to dist.
    expect(Object.keys(manifest.publishConfig?.exports ?? {}).sort()).toEqual(
      Object.keys(manifest.exports ?? {}).sort(),
    );
    expect(Object.keys(manifest.publishConfig?.bin ?? {}).sort()).toEqual(Object.keys(manifest.bin ?? {}).sort());
  });

  it('builds every exported subpath with tsup', () => {
    const config = readFileSync(join(dir, 'tsup.config.ts'), 'utf8');
    for (const [, target] of sourceEntries(manifest)) {
      expect(config, `tsup entry for ${target}`).toContain(target.replace(/^\.\//, ''));
    }
  });

  it('names every export in its entry files (no export *)', () => {
    for (const [, target] of sourceEntries(manifest)) {
      expect(readFileSync(join(dir, target), 'utf8')).not.toMatch(/^export \* /m);
    }
  });

  it('documents every public export with TSDoc', () => {
    const missing = sourceEntries(manifest).flatMap(([subpath, target]) =>
      undocumentedExports(join(dir, target)).map((symbol) => `${subpath}: ${symbol}`),
    );
    expect(missing).toEqual([]);
  });

  it('has a README with a runnable example and every error code', () => {
    const readmePath = join(dir, 'README.md');
    expect(existsSync(readmePath), `${readmePath} exists`).toBe(true);
    const readme = readFileSync(readmePath, 'utf8');
    expect(readme).toMatch(/```(ts|typescript|js|sh)\n/);
    const errorsFile = join(dir, 'src', 'errors.ts');
    const codes = existsSync(errorsFile)
      ? [...new Set(readFileSync(errorsFile, 'utf8').match(/GANTRY_[A-Z0-9_]+/g) ?? [])]
      : [];
    for (const code of codes) expect(readme, `README lists ${code}`).toContain(code);
  });
});
