import { readFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import type { Server } from 'node:https';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RuntimeCounters, ServedStatus } from '../runtime/supervisor.js';
import type { AuthPolicy } from '../service/auth-policy.js';
import type { ServiceContext } from '../service/context.js';
import { ApiError } from './api-error.js';
import { registerAuthentication } from './authenticate.js';
import { clientErrorHandler } from './client-errors.js';
import { recordRoutes } from './method-not-allowed.js';
import { registerMetrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { sendProblem } from './problem.js';
import { auditRoutes } from './routes/audit.js';
import { authRoutes } from './routes/auth.js';
import { changeRoutes } from './routes/changes.js';
import { csrRoutes } from './routes/csrs.js';
import { entryRoutes } from './routes/entries.js';
import { exportRoutes } from './routes/export.js';
import { healthRoutes } from './routes/health.js';
import { importRoutes } from './routes/imports.js';
import { serverIdentityRoutes } from './routes/server-identity.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { registerSecurityHeaders } from './security-headers.js';
import { registerUploads } from './upload.js';

/** The largest request body the API reads (an upload: certificate, chain and key). */
export const BODY_LIMIT = 1 << 20;

export interface AppOptions {
  /** The keystore every route's operation takes (DESIGN.md layer 3: routes call service/). */
  keystore: ServiceContext;
  /** The live TLS state of this node, undefined while starting. */
  tlsStatus: () => ServedStatus | undefined;
  /** Creates the HTTPS server Fastify will use (the runtime's, so identity can swap live). */
  serverFactory: (handler: RequestListener) => Server;
  /**
   * The pino logger of the API (`logger.child({ layer: 'api' })`); every request logs
   * under its request id, the id a 5xx problem names. No logging when absent.
   */
  logger?: FastifyBaseLogger;
  /** This node's runtime counts (handshakes, swaps, rollbacks) for `/metrics`. */
  counters?: () => RuntimeCounters | undefined;
  /** Session lifetimes and login limits (defaults: `DEFAULT_AUTH_POLICY`). */
  authPolicy?: Partial<AuthPolicy>;
}

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** The Fastify application: health, the public CA certificate, the OpenAPI docs and `/api/v1`. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    serverFactory: options.serverFactory as never,
    bodyLimit: BODY_LIMIT,
    clientErrorHandler: clientErrorHandler(options.logger),
  });
  // The API's own paths; the docs page's are Swagger UI's to answer.
  const addMissingMethods = recordRoutes(
    app,
    /^\/(api\/v1\/|api\/openapi\.json$|healthz$|readyz$|ca\/)/,
  );
  registerSecurityHeaders(app);
  app.setErrorHandler((err, _request, reply) => sendProblem(reply, err));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      new ApiError('NotFound', `No route answers ${request.method} ${request.url}.`),
    ),
  );
  // Node would answer a request without Host itself, with an empty 400: the runtime's
  // server leaves that to the API (`requireHostHeader: false`), which answers problem+json.
  app.addHook('onRequest', async (request) => {
    if (!request.headers.host) {
      throw new ApiError('BadRequest', 'The request has no Host header (HTTP/1.1 requires one).');
    }
  });
  // Bodies are JSON, forms and (later) multipart uploads; plain text is none of them.
  app.removeContentTypeParser('text/plain');
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: BODY_LIMIT });
  await registerUploads(app, BODY_LIMIT);
  await registerOpenApi(app, VERSION);
  registerAuthentication(app, options.keystore, options.authPolicy);

  await registerMetrics(app, options);
  await app.register(healthRoutes, options);
  await app.register(authRoutes, options);
  await app.register(tokenRoutes, options);
  await app.register(userRoutes, options);
  await app.register(serverIdentityRoutes, options);
  await app.register(entryRoutes, options);
  await app.register(importRoutes, { ...options, bodyLimit: BODY_LIMIT });
  await app.register(csrRoutes, { ...options, bodyLimit: BODY_LIMIT });
  await app.register(exportRoutes, options);
  await app.register(changeRoutes, options);
  await app.register(auditRoutes, options);
  addMissingMethods();
  return app;
}
