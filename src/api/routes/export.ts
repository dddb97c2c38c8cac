import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { exportPkcs12 } from '../../service/export-entry.js';
import { authOf } from '../authenticate.js';
import { routeSchema } from '../route-schema.js';
import { Alias } from '../schemas.js';

/** The one way a private key leaves: a password-protected PKCS#12, for admins, audited. */
export async function exportRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext },
): Promise<void> {
  app.post<{ Params: { alias: string }; Body: { password: string } }>(
    '/api/v1/entries/:alias/export',
    {
      config: { privilege: 'keys:export' },
      schema: routeSchema({
        operationId: 'exportEntry',
        summary: 'Export a key pair as a PKCS#12 protected by your password (admins only; audited)',
        tags: ['entries'],
        write: true,
        errors: [
          'AliasNotFound',
          'EntryNotUsable',
          'InvalidAlias',
          'PasswordTooShort',
          'PasswordTooLong',
        ],
        params: Type.Object({ alias: Alias }),
        body: Type.Object(
          {
            password: Type.String({
              minLength: 1,
              maxLength: 1024,
              description: 'At least 8 characters.',
            }),
          },
          { additionalProperties: false },
        ),
        responses: {
          200: {
            description: 'The PKCS#12 file (AES-256 PBES2, HMAC-SHA256 MAC).',
            content: { 'application/x-pkcs12': { schema: { type: 'string', format: 'binary' } } },
          },
        },
      }),
    },
    async (request, reply) => {
      const result = await exportPkcs12(options.keystore, {
        alias: request.params.alias,
        password: request.body.password,
        principal: authOf(request).principal,
      });
      return reply
        .type('application/x-pkcs12')
        .header('Content-Disposition', `attachment; filename="${result.alias}.p12"`)
        .send(result.pkcs12);
    },
  );
}
