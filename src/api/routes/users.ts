import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AuthPolicy } from '../../service/auth-policy.js';
import { changePassword } from '../../service/change-password.js';
import { changeRole } from '../../service/change-role.js';
import type { ServiceContext } from '../../service/context.js';
import { createUser } from '../../service/create-user.js';
import { listUsers } from '../../service/list-users.js';
import { removeUser } from '../../service/remove-user.js';
import type { UserRole } from '../../service/roles.js';
import { authOf } from '../authenticate.js';
import { routeSchema } from '../route-schema.js';
import { UserRoleSchema as Role, RoleInput } from '../schemas.js';

const Username = Type.String({ minLength: 1, maxLength: 64 });

const UserSummary = Type.Object({
  username: Type.String(),
  role: Role,
  mustChangePassword: Type.Boolean(),
  revision: Type.Integer(),
  createdRevision: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

/**
 * Users, for admins: list, create (a one-time password when none is given), set a
 * password, change a role, remove.
 */
export async function userRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; authPolicy?: Partial<AuthPolicy> },
): Promise<void> {
  const { keystore } = options;
  app.get(
    '/api/v1/users',
    {
      config: { privilege: 'users:manage' },
      schema: routeSchema({
        operationId: 'listUsers',
        summary: 'List the users (never their password hashes)',
        tags: ['users'],
        responses: { 200: Type.Array(UserSummary, { description: 'The users.' }) },
      }),
    },
    async () => listUsers(keystore),
  );

  app.post<{ Body: { username: string; role: string; password?: string } }>(
    '/api/v1/users',
    {
      config: { privilege: 'users:manage' },
      schema: routeSchema({
        operationId: 'createUser',
        summary: 'Create a user; without a password, a one-time one is answered once',
        tags: ['users'],
        write: true,
        errors: [
          'UserExists',
          'InvalidUsername',
          'InvalidRole',
          'PasswordTooShort',
          'PasswordTooLong',
          'PasswordMatchesUsername',
          'RevisionConflict',
        ],
        body: Type.Object(
          {
            username: Username,
            role: RoleInput,
            password: Type.Optional(Type.String({ maxLength: 4096 })),
          },
          { additionalProperties: false },
        ),
        responses: {
          201: Type.Object(
            {
              username: Type.String(),
              role: Role,
              mustChangePassword: Type.Boolean(),
              oneTimePassword: Type.Optional(
                Type.String({
                  description: 'Shown this once; it must be changed at the first login.',
                }),
              ),
              revision: Type.Integer(),
            },
            { description: 'Created.' },
          ),
        },
      }),
    },
    async (request, reply) => {
      const created = await createUser(
        keystore,
        {
          ...request.body,
          role: request.body.role as UserRole,
          principal: authOf(request).principal,
        },
        options.authPolicy?.hasher,
      );
      return reply.code(201).send(created);
    },
  );

  app.put<{
    Params: { username: string };
    Body: { password: string; mustChangePassword?: boolean };
  }>(
    '/api/v1/users/:username/password',
    {
      config: { privilege: 'users:manage' },
      schema: routeSchema({
        operationId: 'setUserPassword',
        summary:
          "Set a user's password (their sessions end); optionally to be changed at next login",
        tags: ['users'],
        write: true,
        errors: [
          'UserNotFound',
          'PasswordTooShort',
          'PasswordTooLong',
          'PasswordMatchesUsername',
          'RevisionConflict',
        ],
        params: Type.Object({ username: Username }),
        body: Type.Object(
          {
            password: Type.String({ minLength: 1, maxLength: 4096 }),
            mustChangePassword: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        responses: {
          200: Type.Object(
            { revision: Type.Integer(), sessionsEnded: Type.Integer() },
            { description: 'Set.' },
          ),
        },
      }),
    },
    async (request) =>
      changePassword(
        keystore,
        {
          username: request.params.username,
          newPassword: request.body.password,
          principal: authOf(request).principal,
          ...(request.body.mustChangePassword === undefined
            ? {}
            : { mustChangePassword: request.body.mustChangePassword }),
        },
        options.authPolicy,
      ),
  );

  app.put<{ Params: { username: string }; Body: { role: string } }>(
    '/api/v1/users/:username/role',
    {
      config: { privilege: 'users:manage' },
      schema: routeSchema({
        operationId: 'changeUserRole',
        summary:
          "Change a user's role (never the last admin's); their tokens above it are revoked and their sessions end",
        description:
          'The password, the history and the tokens the new role still covers are kept. The same role again changes nothing (`changed: false`, no revision).',
        tags: ['users'],
        write: true,
        errors: ['UserNotFound', 'InvalidRole', 'LastAdmin', 'RevisionConflict'],
        params: Type.Object({ username: Username }),
        body: Type.Object(
          {
            role: RoleInput,
          },
          { additionalProperties: false },
        ),
        responses: {
          200: Type.Object(
            {
              revision: Type.Integer({
                description: "The change's revision; the current one when nothing changed.",
              }),
              role: Role,
              previousRole: Role,
              changed: Type.Boolean(),
              tokensRevoked: Type.Integer({
                description: "The user's API tokens revoked for reaching above the new role.",
              }),
              sessionsEnded: Type.Integer(),
            },
            { description: 'Changed, or already so.' },
          ),
        },
      }),
    },
    async (request) =>
      changeRole(keystore, {
        username: request.params.username,
        role: request.body.role as UserRole,
        principal: authOf(request).principal,
      }),
  );

  app.delete<{ Params: { username: string } }>(
    '/api/v1/users/:username',
    {
      config: { privilege: 'users:manage' },
      schema: routeSchema({
        operationId: 'removeUser',
        summary: 'Remove a user with their tokens and sessions (never the last admin)',
        tags: ['users'],
        write: true,
        errors: ['UserNotFound', 'LastAdmin', 'RevisionConflict'],
        params: Type.Object({ username: Username }),
        responses: {
          200: Type.Object(
            { revision: Type.Integer(), tokensRevoked: Type.Integer() },
            { description: 'Removed.' },
          ),
        },
      }),
    },
    async (request) =>
      removeUser(keystore, {
        username: request.params.username,
        principal: authOf(request).principal,
      }),
  );
}
