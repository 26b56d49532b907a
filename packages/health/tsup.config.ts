import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/fastify.ts', 'src/node-http.ts', 'src/testing.ts'],
  format: ['esm', 'cjs'],
  // One shared chunk for CJS too, so the adapters and the core share one registry internals map and error class.
  splitting: true,
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node22',
});
