import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServedStatus } from '../../runtime/supervisor.js';
import type { ServiceContext } from '../../service/context.js';
import { keystoreRevision } from '../../service/local-ca-certificate.js';
import { pendingConfirmation } from '../../service/server-identity.js';
import { routeSchema } from '../route-schema.js';

/** The identity this node serves. */
export async function serverTlsRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; tlsStatus: () => ServedStatus | undefined },
): Promise<void> {
  app.get(
    '/api/v1/server/tls',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'getServerTls',
        summary: 'What this node serves: source, alias, fingerprint, revision, refusals',
        tags: ['server'],
        responses: {
          200: Type.Object(
            {},
            {
              additionalProperties: true,
              description:
                'The served state: its source (flags, file, environment, keystore, local CA), the entry and its fingerprint, the revision served and the store revision, refused changes, expiry, and a pending confirmation if any.',
            },
          ),
          503: Type.Object(
            { status: Type.Literal('starting') },
            { description: 'Still starting: no identity is served yet.' },
          ),
        },
      }),
    },
    async (_request, reply) => {
      const status = options.tlsStatus();
      if (!status) return reply.code(503).send({ status: 'starting' });
      return {
        ...status,
        storeRevision: await keystoreRevision(options.keystore),
        pendingConfirmation: (await pendingConfirmation(options.keystore)) ?? null,
      };
    },
  );
}
