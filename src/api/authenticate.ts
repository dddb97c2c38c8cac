import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthPolicy } from '../service/auth-policy.js';
import { authenticateSession } from '../service/authenticate-session.js';
import { authenticateToken } from '../service/authenticate-token.js';
import type { Authentication } from '../service/authentication.js';
import type { ServiceContext } from '../service/context.js';
import { type Privilege, requirePrivilege } from '../service/privileges.js';
import { ApiError } from './api-error.js';

/** The session cookie's name (issue 14). */
export const SESSION_COOKIE = 'session_id';

/** The header a cookie-authenticated write may carry instead of a same-origin `Origin`. */
export const CSRF_HEADER = 'x-certkeeper-csrf';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The privilege the route needs; `public: true` routes need none. */
    privilege?: Privilege;
    /** No credentials needed (health, the CA certificate, login, the docs). */
    public?: boolean;
    /** Allowed while the user must still change their password (the change itself, logout). */
    beforePasswordChange?: boolean;
  }
  interface FastifyRequest {
    /** Who made the request; set on every non-public route before its handler runs. */
    auth?: Authentication;
  }
}

/** The authenticated caller of a non-public route (its hook ran, so it is set). */
export function authOf(request: FastifyRequest): Authentication {
  if (!request.auth) throw new Error(`route ${request.url} read auth without authentication`);
  return request.auth;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Authenticates every route that is not `public`: `Authorization: Bearer` with an API
 * token (`ckt_…`) or a session token (`cks_…`), else the session cookie. A cookie-borne
 * write must come from our own origin (`Origin` equal to this server's) or carry the CSRF
 * header, which a cross-site form cannot send. Then the route's privilege is required.
 */
export function registerAuthentication(
  app: FastifyInstance,
  keystore: ServiceContext,
  policy: Partial<AuthPolicy> = {},
): void {
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    // An unknown path answers 404 to anyone: the API's paths are public knowledge.
    if (config.public || request.is404) return;
    const source = request.ip;
    const bearer = bearerToken(request);
    const cookie = bearer === undefined ? request.cookies[SESSION_COOKIE] : undefined;
    const token = bearer ?? cookie;
    if (token === undefined || token === '') {
      throw new ApiError(
        'Unauthenticated',
        'This route needs credentials: log in (POST /api/v1/auth/session) and send the session cookie or Authorization: Bearer <token>.',
      );
    }
    request.auth = token.startsWith('ckt_')
      ? await authenticateToken(keystore, { token, source })
      : await authenticateSession(keystore, { token, source }, policy);
    if (cookie !== undefined && UNSAFE.has(request.method)) checkSameOrigin(request);
    if (request.auth.mustChangePassword && !config.beforePasswordChange) {
      throw new ApiError(
        'PasswordChangeRequired',
        `"${request.auth.username}" must change their password first (POST /api/v1/auth/password).`,
      );
    }
    if (config.privilege) requirePrivilege(request.auth.principal, config.privilege);
  });
}

/** The token of `Authorization: Bearer <token>`, undefined without that header. */
function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match) {
    throw new ApiError('Unauthenticated', 'The Authorization header must be "Bearer <token>".');
  }
  return match[1];
}

/** Throws `CrossSiteRequest` unless the write came from this server's own pages or a script. */
function checkSameOrigin(request: FastifyRequest): void {
  if (request.headers[CSRF_HEADER] !== undefined) return;
  const origin = request.headers.origin;
  if (origin !== undefined && origin === `https://${request.host}`) return;
  throw new ApiError(
    'CrossSiteRequest',
    `A write authenticated by the session cookie needs an Origin of https://${request.host} or the ${CSRF_HEADER} header.`,
  );
}

/** The session token the request authenticated with (bearer `cks_…`, else the cookie). */
export function sessionTokenOf(request: FastifyRequest): string {
  return bearerToken(request) ?? request.cookies[SESSION_COOKIE] ?? '';
}
