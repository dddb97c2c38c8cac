import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { createToken } from '../../service/create-token.js';
import { listTokens } from '../../service/list-tokens.js';
import { revokeToken } from '../../service/revoke-token.js';
import { isAdmin, type UserRole } from '../../service/roles.js';
import { authOf } from '../authenticate.js';
import { routeSchema } from '../route-schema.js';
import { UserRoleSchema as Role, RoleInput } from '../schemas.js';

const TokenSummary = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  username: Type.String(),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  expired: Type.Boolean(),
  createdRevision: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});

interface CreateBody {
  name: string;
  /** Any string: the service answers one it does not know with `InvalidRole`. */
  role: string;
  username?: string;
  expiresInDays?: number;
  expiresAt?: string;
}

/** Long-lived API tokens: created (shown once), listed, revoked. */
export async function tokenRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext },
): Promise<void> {
  const { keystore } = options;
  app.post<{ Body: CreateBody }>(
    '/api/v1/tokens',
    {
      config: { privilege: 'self' },
      schema: routeSchema({
        operationId: 'createToken',
        summary: 'Create an API token (its secret is shown once)',
        description:
          'A token never outranks its creator nor its user. Without `username` the token is yours; only an admin creates one for another user. Without an expiry it never expires.',
        tags: ['auth'],
        write: true,
        errors: [
          'InvalidTokenName',
          'InvalidRole',
          'InvalidExpiry',
          'RoleTooHigh',
          'UserNotFound',
          'RevisionConflict',
        ],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64 }),
            role: RoleInput,
            username: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        responses: {
          201: Type.Object(
            {
              token: Type.String({ description: 'The secret (`ckt_…`): shown this once.' }),
              id: Type.String(),
              name: Type.String(),
              role: Role,
              username: Type.String(),
              expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
              revision: Type.Integer(),
            },
            { description: 'Created.' },
          ),
        },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      const { name, role, username, expiresInDays, expiresAt } = request.body;
      const created = await createToken(keystore, {
        name,
        role: role as UserRole,
        username: username ?? auth.username,
        ...(expiresInDays !== undefined ? { expiresInDays } : {}),
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        principal: auth.principal,
      });
      return reply.code(201).header('ETag', `"${created.revision}"`).send(created);
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      config: { privilege: 'self' },
      schema: routeSchema({
        operationId: 'listTokens',
        summary:
          "List API tokens (an admin sees everyone's, others their own); never their secrets",
        tags: ['auth'],
        responses: { 200: Type.Array(TokenSummary, { description: 'The tokens.' }) },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      return listTokens(keystore, isAdmin(auth.principal) ? {} : { username: auth.username });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/tokens/:id',
    {
      config: { privilege: 'self' },
      schema: routeSchema({
        operationId: 'revokeToken',
        summary: "Revoke an API token (yours, or anyone's as an admin)",
        tags: ['auth'],
        write: true,
        errors: ['TokenNotFound', 'RevisionConflict'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        responses: { 204: Type.Null({ description: 'Revoked.' }) },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      await revokeToken(keystore, { id: request.params.id, principal: auth.principal });
      return reply.code(204).send();
    },
  );
}
