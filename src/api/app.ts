import type { RequestListener } from 'node:http';
import type { Server } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ServedStatus } from '../runtime/supervisor.js';
import { STRICT_TRANSPORT_SECURITY } from '../runtime/tls-runtime.js';
import type { ServiceContext } from '../service/context.js';
import { keystoreRevision, localCaCertificate } from '../service/local-ca-certificate.js';
import { pendingConfirmation } from '../service/server-identity.js';
import { sendProblem } from './problem.js';

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
}

/** The Fastify application: health, the public CA certificate and the native API. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    serverFactory: options.serverFactory as never,
    bodyLimit: 1 << 20,
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('Strict-Transport-Security', STRICT_TRANSPORT_SECURITY);
  });
  app.setErrorHandler((err, _req, reply) => sendProblem(reply, err));
  app.setNotFoundHandler((req, reply) =>
    sendProblem(
      reply,
      Object.assign(new Error(`No route for ${req.method} ${req.url}.`), { statusCode: 404 }),
    ),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const status = options.tlsStatus();
    if (!status) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready', revision: status.revision };
  });
  app.get('/ca/root.pem', async (_req, reply) => {
    const certificate = await localCaCertificate(options.keystore);
    if (!certificate) {
      return sendProblem(
        reply,
        Object.assign(new Error('The local CA does not exist yet.'), { statusCode: 404 }),
      );
    }
    return reply
      .type('application/x-pem-file')
      .header('Content-Disposition', 'attachment; filename="certkeeper-root.pem"')
      .send(certificate);
  });
  app.get('/api/v1/server/tls', async (_req, reply) => {
    const status = options.tlsStatus();
    if (!status) return reply.code(503).send({ status: 'starting' });
    return {
      ...status,
      storeRevision: await keystoreRevision(options.keystore),
      pendingConfirmation: (await pendingConfirmation(options.keystore)) ?? null,
    };
  });
  return app;
}
