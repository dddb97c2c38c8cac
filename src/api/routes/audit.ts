import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { listAudit } from '../../service/read-entries.js';
import { verifyAuditLog } from '../../service/verify-audit.js';
import { checkQuery, routeSchema } from '../route-schema.js';
import { AuditRecord } from '../schemas.js';

const MAX_PAGE = 500;

/** The hash-chained audit log: paged newest first, and its chain checked. */
export async function auditRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext },
): Promise<void> {
  const { keystore } = options;
  app.get<{ Querystring: { before?: number; limit?: number } }>(
    '/api/v1/audit',
    {
      config: { privilege: 'audit:read' },
      attachValidation: true,
      schema: routeSchema({
        operationId: 'listAudit',
        summary: 'Page through the audit log, newest first',
        description:
          'Each answer holds up to `limit` records older than `before` (a `seq`), and `next`: the `before` of the next page, or null at the first record.',
        tags: ['audit'],
        errors: ['InvalidQuery'],
        querystring: Type.Object(
          {
            before: Type.Optional(
              Type.Integer({ minimum: 1, description: 'Only records with a lower seq.' }),
            ),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
          },
          { additionalProperties: false },
        ),
        responses: {
          200: Type.Object(
            {
              records: Type.Array(AuditRecord),
              next: Type.Union([Type.Integer(), Type.Null()], {
                description:
                  'Pass as `before` for the next page; null when this page reaches the first record.',
              }),
            },
            { description: 'One page.' },
          ),
        },
      }),
    },
    async (request) => {
      checkQuery(request);
      const limit = request.query.limit ?? 100;
      const records = await listAudit(keystore, {
        limit,
        ...(request.query.before === undefined ? {} : { beforeSeq: request.query.before }),
      });
      const oldest = records.at(-1);
      return {
        records,
        next: records.length === limit && oldest && oldest.seq > 1 ? oldest.seq : null,
      };
    },
  );

  app.get(
    '/api/v1/audit/verification',
    {
      config: { privilege: 'audit:read' },
      schema: routeSchema({
        operationId: 'verifyAudit',
        summary: "Check the audit log's hash chain from its first record",
        tags: ['audit'],
        responses: {
          200: Type.Object(
            {
              ok: Type.Boolean(),
              records: Type.Integer(),
              brokenAt: Type.Optional(
                Type.Integer({ description: 'The seq of the first broken record.' }),
              ),
              reason: Type.Optional(Type.String()),
            },
            { description: 'Whole (`ok: true`), or where and why it breaks.' },
          ),
        },
      }),
    },
    async () => verifyAuditLog(keystore),
  );
}
