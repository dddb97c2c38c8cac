import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { AuthPolicy } from '../../service/auth-policy.js';
import { changePassword } from '../../service/change-password.js';
import type { ServiceContext } from '../../service/context.js';
import { ServiceError } from '../../service/errors.js';
import { login } from '../../service/login.js';
import { logout } from '../../service/logout.js';
import { ApiError } from '../api-error.js';
import { authOf, SESSION_COOKIE, sessionTokenOf } from '../authenticate.js';
import { routeSchema } from '../route-schema.js';
import { UserRoleSchema } from '../schemas.js';

const Credentials = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256 }),
    password: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
);

const SessionAnswer = Type.Object(
  {
    token: Type.String({ description: 'A bearer token for the same session (`cks_…`).' }),
    expiresAt: Type.String({
      format: 'date-time',
      description: 'The absolute end of the session.',
    }),
    idleExpiresAt: Type.String({
      format: 'date-time',
      description: 'The end unless it is used before.',
    }),
    user: Type.String(),
    role: UserRoleSchema,
    mustChangePassword: Type.Boolean(),
  },
  { description: 'The session is open; the `session_id` cookie is set too.' },
);

const WhoAmI = Type.Object(
  {
    user: Type.String(),
    role: Type.String(),
    via: Type.Union([Type.Literal('session'), Type.Literal('token')]),
    expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    mustChangePassword: Type.Boolean(),
  },
  { description: 'Who the credentials of this request are.' },
);

/** Sets the session cookie: HttpOnly, Secure, SameSite=Strict, for the whole server. */
function setSessionCookie(reply: FastifyReply, token: string, expiresAt: string): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    expires: new Date(expiresAt),
  });
}

/** Log in and out, who am I, change one's own password. */
export async function authRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; authPolicy?: Partial<AuthPolicy> },
): Promise<void> {
  const { keystore } = options;
  app.post<{ Body: { username: string; password: string } }>(
    '/api/v1/auth/session',
    {
      config: { public: true },
      schema: routeSchema({
        operationId: 'login',
        summary: 'Log in: open a session (JSON or form body)',
        tags: ['auth'],
        public: true,
        errors: [
          'AuthenticationFailure',
          'TooManyAttempts',
          'UnsupportedMediaType',
          'PayloadTooLarge',
        ],
        body: Credentials,
        responses: { 201: SessionAnswer },
      }),
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const session = await login(
        keystore,
        { username, password, source: request.ip },
        options.authPolicy,
      );
      setSessionCookie(reply, session.sessionToken, session.expiresAt);
      return reply.code(201).send({
        token: session.sessionToken,
        expiresAt: session.expiresAt,
        idleExpiresAt: session.idleExpiresAt,
        user: session.username,
        role: session.role,
        mustChangePassword: session.mustChangePassword,
      });
    },
  );

  app.get(
    '/api/v1/auth/session',
    {
      config: { privilege: 'self', beforePasswordChange: true },
      schema: routeSchema({
        operationId: 'getSession',
        summary: 'Who am I: the user and role of these credentials',
        tags: ['auth'],
        responses: { 200: WhoAmI },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      return {
        user: auth.username,
        role: auth.principal.role,
        via: auth.via,
        expiresAt: auth.expiresAt,
        mustChangePassword: auth.mustChangePassword,
      };
    },
  );

  app.delete(
    '/api/v1/auth/session',
    {
      config: { privilege: 'self', beforePasswordChange: true },
      schema: routeSchema({
        operationId: 'logout',
        summary: 'Log out: end the session of these credentials',
        tags: ['auth'],
        write: true,
        responses: {
          204: Type.Null({ description: 'The session has ended; the cookie is cleared.' }),
        },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      if (auth.via !== 'session') {
        throw new ApiError(
          'BadRequest',
          'An API token is not a session: revoke it with DELETE /api/v1/tokens/{id}.',
        );
      }
      await logout(keystore, { token: sessionTokenOf(request), source: request.ip });
      reply.clearCookie(SESSION_COOKIE, {
        path: '/',
        httpOnly: true,
        secure: true,
        sameSite: 'strict',
      });
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/api/v1/auth/password',
    {
      config: { privilege: 'self', beforePasswordChange: true },
      schema: routeSchema({
        operationId: 'changeOwnPassword',
        summary: 'Change your own password (every other session of yours ends)',
        tags: ['auth'],
        write: true,
        errors: [
          'CurrentPasswordWrong',
          'PasswordTooShort',
          'PasswordTooLong',
          'PasswordMatchesUsername',
          'RevisionConflict',
        ],
        body: Type.Object(
          {
            currentPassword: Type.String({ minLength: 1, maxLength: 4096 }),
            newPassword: Type.String({ minLength: 1, maxLength: 4096 }),
          },
          { additionalProperties: false },
        ),
        responses: {
          200: Type.Object(
            { revision: Type.Integer() },
            { description: 'Changed; this session stays open.' },
          ),
        },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      if (auth.via !== 'session') {
        throw new ServiceError(
          'Forbidden',
          "An API token cannot change its user's password: log in as the user to change it.",
        );
      }
      const result = await changePassword(
        keystore,
        {
          username: auth.username,
          currentPassword: request.body.currentPassword,
          newPassword: request.body.newPassword,
          principal: auth.principal,
          keepSession: sessionTokenOf(request),
        },
        options.authPolicy,
      );
      return { revision: result.revision };
    },
  );
}
