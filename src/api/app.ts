import type { RequestListener } from 'node:http';
import type { Server } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { clientErrorHandler } from './client-errors.js';
import {
  BODY_LIMIT,
  type CertkeeperApiOptions,
  certkeeperApi,
  MAX_PARAM_LENGTH,
  notFoundProblem,
  routerProblem,
} from './plugin.js';

export interface AppOptions extends CertkeeperApiOptions {
  /** Creates the HTTPS server Fastify will use (the runtime's, so identity can swap live). */
  serverFactory: (handler: RequestListener) => Server;
  /**
   * The pino logger of the API (`logger.child({ layer: 'api' })`); every request logs
   * under its request id, the id a 5xx problem names. No logging when absent.
   */
  logger?: FastifyBaseLogger;
}

/**
 * The API's plugin applied to the root instance itself (Fastify's `skip-override`, what
 * fastify-plugin sets), so its hooks also answer what no route does: `certkeeper serve`
 * is the API's server, and its 404s and parser errors are the API's too.
 */
const atRoot = Object.assign(
  (app: FastifyInstance, options: CertkeeperApiOptions) => certkeeperApi(app, options),
  { [Symbol.for('skip-override')]: true },
);

/** The Fastify application of `certkeeper serve`: the `certkeeperApi` plugin on its own server. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { serverFactory, logger, ...api } = options;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    serverFactory: serverFactory as never,
    bodyLimit: BODY_LIMIT,
    clientErrorHandler: clientErrorHandler(logger),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: routerProblem,
  });
  app.setNotFoundHandler(notFoundProblem);
  await app.register(atRoot, api);
  return app;
}
