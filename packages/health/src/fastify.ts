// The fastify adapter: probe routes on the app, its server drained on shutdown, and fastify.close() as a hook.
import type { FastifyInstance, FastifyPluginCallback, LogLevel } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { isHealthError } from './errors.ts';
import type { Health } from './health.ts';
import { healthInternals } from './health.ts';
import { invalid } from './options.ts';
import { probeResponse, routeTable, type HealthRouteOptions } from './routes.ts';

/** Options of {@link healthPlugin}. */
export interface HealthPluginOptions extends HealthRouteOptions {
  /** The registry from `createHealth()`. */
  readonly health: Health;
  /** Drain this app's server during shutdown (`Connection: close` on keep-alive, idle sockets closed). @default true */
  readonly drain?: boolean;
  /** Run `fastify.close()` (its onClose hooks) as a shutdown hook after the drain. @default true */
  readonly closeOnShutdown?: boolean;
  /** Log level of the probe routes (kubelets call them every few seconds). @default the app's level */
  readonly logLevel?: LogLevel;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The health registry given to `@gantry/health/fastify`. */
    health: Health;
  }
}

const plugin: FastifyPluginCallback<HealthPluginOptions> = (fastify: FastifyInstance, options, done) => {
  // A callback plugin must hand its errors to `done`: thrown, they escape avvio as an uncaught exception instead
  // of rejecting `register()`/`ready()`.
  try {
    install(fastify, options);
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
};

function install(fastify: FastifyInstance, options: HealthPluginOptions): void {
  const { health } = options;
  healthInternals(health);
  if (options.logLevel !== undefined && typeof options.logLevel !== 'string') {
    throw invalid('logLevel', 'a log level name', options.logLevel);
  }
  const table = routeTable(options);
  fastify.decorate('health', health);
  for (const [url, target] of table) {
    fastify.route({
      method: 'GET',
      url,
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
      handler: (_request, reply) => {
        const response = probeResponse(health, target);
        // Send and return nothing: returning the reply from a sync handler makes fastify call send() a second time.
        if (response instanceof Promise) {
          return response.then((ready) => {
            reply.code(ready.statusCode).headers(ready.headers).send(ready.body);
          });
        }
        reply.code(response.statusCode).headers(response.headers).send(response.body);
        return undefined;
      },
    });
  }
  if (options.drain !== false) health.attachServer(fastify.server);
  if (options.closeOnShutdown !== false) {
    // Several fastify apps may share one registry (an API and an admin server): name their hooks apart.
    for (let index = 1; ; index += 1) {
      try {
        health.addShutdownHook({ name: index === 1 ? 'fastify' : `fastify-${index}`, run: () => fastify.close() });
        break;
      } catch (error) {
        if (!isHealthError(error, 'GANTRY_HEALTH_DUPLICATE_NAME')) throw error;
      }
    }
  }
}

/**
 * Fastify plugin: serves the probes (GET and HEAD) on the app and wires the app into the graceful shutdown.
 * Decorates `fastify.health`.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for bad paths or a missing registry.
 * @example
 * await app.register(healthPlugin, { health });
 */
export const healthPlugin = fastifyPlugin(plugin, { fastify: '5.x', name: '@gantry/health' });

export default healthPlugin;
