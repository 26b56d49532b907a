import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/fastify.ts', 'src/testing.ts', 'src/register.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node22',
  // import.meta.url (createRequire, the loader hook's parent URL) in the CommonJS build.
  shims: true,
});
