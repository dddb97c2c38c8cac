import { readFileSync } from 'node:fs';
import AjvCompiler from '@fastify/ajv-compiler';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { RuntimeCounters, ServedStatus } from '../runtime/supervisor.js';
import { type AuthPolicy, authPolicy } from '../service/auth-policy.js';
import type { ServiceContext } from '../service/context.js';
import { ApiError } from './api-error.js';
import { registerAuthentication } from './authenticate.js';
import { registerHousekeeping } from './housekeeping.js';
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
import { registerSecurityHeaders, setSecurityHeaders } from './security-headers.js';
import { registerUploads } from './upload.js';

/** The largest request body the API reads (an upload: certificate, chain and key). */
export const BODY_LIMIT = 1 << 20;

/**
 * The longest path parameter the router takes (Fastify's default is 100): a host name
 * has up to 253 characters, an alias 128. An application that embeds the plugin sets it
 * on its own instance (`routerOptions: { maxParamLength }`), and `frameworkErrors:
 * routerProblem` for problem+json answers from the router.
 */
export const MAX_PARAM_LENGTH = 256;

const validators = AjvCompiler();
/** Bodies as sent: a wrong type or an unknown field is refused, never converted or dropped. */
const bodyValidator = validators(
  {},
  { customOptions: { coerceTypes: false, removeAdditional: false } },
);
/** Query, path and headers arrive as text: numbers are converted, unknown names refused. */
const textValidator = validators({}, { customOptions: { removeAdditional: false } });

/**
 * The API's schema validation, stricter than Fastify's defaults (which convert a JSON
 * `123` into `"123"` and silently drop a misspelt field such as `cn`), for the API's
 * routes only.
 */
function strictBodies(app: FastifyInstance): void {
  app.setValidatorCompiler((route) =>
    route.httpPart === 'body' ? bodyValidator(route) : textValidator(route),
  );
  app.setSchemaErrorFormatter((errors, dataVar) => {
    const first = errors[0];
    const where = `${dataVar}${first?.instancePath ?? ''}`;
    const unknown = (first?.params as { additionalProperty?: string } | undefined)
      ?.additionalProperty;
    return new Error(
      unknown !== undefined
        ? `${where} has a field "${unknown}" this route does not take`
        : `${where} ${first?.message ?? 'is not valid'}`,
    );
  });
}

/** Errors the router raises before any route runs (a bad URL, a parameter too long). */
export function routerProblem(err: Error, _request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH';
  // No route and no hook of the API runs for these; the headers are set here instead.
  reply.type('application/problem+json');
  setSecurityHeaders(reply);
  sendProblem(
    reply,
    new ApiError(
      'BadRequest',
      tooLong
        ? `A path segment is longer than ${MAX_PARAM_LENGTH} characters; no alias or host name is that long.`
        : 'The request path is not a valid URL path.',
    ),
  );
}

/** What the API needs from its host: `openCertkeeper(…).apiOptions` gives all of it. */
export interface CertkeeperApiOptions {
  /** The keystore every route's operation takes (DESIGN.md layer 3: routes call service/). */
  keystore: ServiceContext;
  /** The live TLS state of this node, undefined while starting. */
  tlsStatus: () => ServedStatus | undefined;
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

/**
 * The whole API as one Fastify plugin: health, the public CA certificate, the OpenAPI
 * docs, `/metrics` and `/api/v1`, with their authentication, problem+json errors, 405s
 * and security headers. Encapsulated: its hooks, parsers and error handlers apply to its
 * own routes only, so an application can register it beside its own routes, under a
 * `prefix` if it likes (`/certkeeper/api/v1/…`). `buildApp` registers it at the root.
 */
export const certkeeperApi: FastifyPluginAsync<CertkeeperApiOptions> = async (app, given) => {
  // Only the API's own options: Fastify's (`prefix`…) would apply again to each route plugin.
  const { keystore, tlsStatus, counters } = given;
  // Resolved once: a bad policy fails here, at start, not on the first login.
  const options: CertkeeperApiOptions = {
    keystore,
    tlsStatus,
    counters,
    authPolicy: authPolicy(given.authPolicy),
  };
  strictBodies(app);
  // The API's own paths (without the prefix); the docs page's are Swagger UI's to answer.
  const addMissingMethods = recordRoutes(
    app,
    /^\/(api\/v1\/|api\/openapi\.json$|healthz$|readyz$|ca\/)/,
  );
  registerSecurityHeaders(app);
  app.setErrorHandler((err, _request, reply) => sendProblem(reply, err));
  // At the root the application sets it (`buildApp`: every unknown path is the API's);
  // under a prefix, the unknown paths below it are the API's.
  if (app.prefix !== '') app.setNotFoundHandler(notFoundProblem);
  // Node would answer a request without Host itself, with an empty 400: the runtime's
  // server leaves that to the API (`requireHostHeader: false`), which answers problem+json.
  app.addHook('onRequest', async (request) => {
    if (!request.headers.host) {
      throw new ApiError('BadRequest', 'The request has no Host header (HTTP/1.1 requires one).');
    }
  });
  // Bodies are JSON, forms and multipart uploads; plain text is none of them.
  if (app.hasContentTypeParser('text/plain')) app.removeContentTypeParser('text/plain');
  // An application that registered these itself already gave this context what they add.
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    await app.register(formbody, { bodyLimit: BODY_LIMIT });
  }
  if (!app.hasRequestDecorator('isMultipart')) await registerUploads(app, BODY_LIMIT);
  await registerOpenApi(app, VERSION);
  registerAuthentication(app, options.keystore, options.authPolicy);
  registerHousekeeping(app, options.keystore, options.authPolicy);

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
};

/** The answer to a path no route has: problem+json `NotFound`. */
export function notFoundProblem(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    new ApiError('NotFound', `No route answers ${request.method} ${request.url}.`),
  );
}
