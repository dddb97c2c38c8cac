import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServedStatus } from '../../runtime/supervisor.js';
import type { ServiceContext } from '../../service/context.js';
import { localCaCertificate } from '../../service/local-ca-certificate.js';
import { ApiError } from '../api-error.js';
import { routeSchema } from '../route-schema.js';

/** Liveness, readiness and the local CA's certificate: public, for probes and first trust. */
export async function healthRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; tlsStatus: () => ServedStatus | undefined },
): Promise<void> {
  const pub = { public: true } as const;
  app.get(
    '/healthz',
    {
      config: pub,
      schema: routeSchema({
        operationId: 'getHealth',
        summary: 'The process answers',
        tags: ['health'],
        public: true,
        responses: {
          200: Type.Object({ status: Type.Literal('ok') }, { description: 'Alive.' }),
        },
      }),
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      config: pub,
      schema: routeSchema({
        operationId: 'getReadiness',
        summary: 'The server serves its identity',
        tags: ['health'],
        public: true,
        responses: {
          200: Type.Object(
            { status: Type.Literal('ready'), revision: Type.Integer() },
            { description: 'Serving the identity of this revision.' },
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
      return { status: 'ready', revision: status.revision };
    },
  );
  app.get(
    '/ca/root.pem',
    {
      config: pub,
      schema: routeSchema({
        operationId: 'getLocalCaCertificate',
        summary: "The local CA's certificate (PEM), to trust this server's default identity",
        tags: ['health'],
        public: true,
        errors: ['NotFound'],
        responses: {
          200: {
            description: 'The certificate, as a PEM file.',
            content: { 'application/x-pem-file': { schema: { type: 'string' } } },
          },
        },
      }),
    },
    async (_request, reply) => {
      const certificate = await localCaCertificate(options.keystore);
      if (!certificate) throw new ApiError('NotFound', 'The local CA does not exist yet.');
      return reply
        .type('application/x-pem-file')
        .header('Content-Disposition', 'attachment; filename="certkeeper-root.pem"')
        .send(certificate);
    },
  );
}
