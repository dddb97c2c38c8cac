import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { CSRF_HEADER, SESSION_COOKIE } from './authenticate.js';
import { MULTIPART_DOC, SENTENCES, sentenceMarkdown } from './route-schema.js';

/** Where the OpenAPI document and the interactive page are served. */
const OPENAPI_PATH = '/api/openapi.json';
const DOCS_PATH = '/api/docs';

/**
 * Registers the OpenAPI 3.1 document, generated from the routes' schemas, and Swagger UI.
 * The page itself is public; calls made from it carry the browser's session cookie (and
 * Swagger UI can take a bearer token), so a logged-in user can try every route.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'certkeeper API',
        version,
        description: `Manage the HTTPS identity of this server: the keystore, CSRs, the served certificate with confirmation and rollback, and the audit log.\n\n**Trying calls from this page:** log in with POST /api/v1/auth/session (Try it out, with your \`username\` and \`password\`); every call you try after that carries the session cookie it sets. Or create an API token (POST /api/v1/tokens) and give it to **Authorize** as the bearer token.\n\nErrors are \`application/problem+json\` (RFC 9457) with \`type\`, \`title\`, \`status\`, \`detail\`, a \`requestId\` that is in the server log, and a stable \`code\`. Each operation lists the codes it can answer. All codes:\n\n${Object.keys(
          SENTENCES,
        )
          .map((code) => `- \`${code}\`: ${sentenceMarkdown(code)}`)
          .join('\n')}`,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      // Under a prefix, the document's paths are the API's own and the prefix is its server.
      servers: [{ url: app.prefix || '/' }],
      tags: [
        { name: 'health', description: 'Liveness, readiness and the local CA certificate.' },
        { name: 'auth', description: 'Sessions, passwords and API tokens.' },
        { name: 'users', description: 'Who may log in, with which role (admins only).' },
        { name: 'server', description: 'The identity this server serves.' },
        {
          name: 'entries',
          description: 'The keystore: key pairs, trusted certificates, pending CSRs.',
        },
        {
          name: 'csrs',
          description: 'Certificate signing requests whose key never leaves the server.',
        },
        { name: 'audit', description: 'The hash-chained record of every change.' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API token (`ckt_…`) or the session token login answers (`cks_…`).',
          },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: SESSION_COOKIE,
            description: `The session cookie login sets. A browser sends it by itself, this page too: there is nothing to enter here. Writes also need the \`${CSRF_HEADER}\` header or a same-origin \`Origin\`.`,
          },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    // A route that also reads multipart documents it next to its JSON body.
    transform: ({ schema, url: fullUrl }) => {
      const url = fullUrl.startsWith(app.prefix) ? fullUrl.slice(app.prefix.length) : fullUrl;
      const multipartBody = (schema as Record<string, unknown> | undefined)?.[MULTIPART_DOC];
      if (!schema || multipartBody === undefined) return { schema, url };
      const { [MULTIPART_DOC]: _, ...rest } = schema as Record<string, unknown>;
      const body = rest.body as { content: Record<string, unknown> };
      return {
        schema: {
          ...rest,
          body: { content: { ...body.content, 'multipart/form-data': { schema: multipartBody } } },
        } as typeof schema,
        url,
      };
    },
  });
  // The page and its files are public (the page holds no data; its calls authenticate).
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith(`${app.prefix}${DOCS_PATH}`))
      route.config = { ...route.config, public: true };
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    // Without a trailing slash the page names its files by absolute path: under a prefix too.
    ...(app.prefix ? { indexPrefix: app.prefix } : {}),
    uiConfig: {
      // Swagger UI's own top bar (its logo's SVG carries an inline <style> our CSP refuses,
      // and its box loads other documents, which connect-src refuses) stays out.
      layout: 'BaseLayout',
      withCredentials: true,
      persistAuthorization: false,
    },
    uiHooks: {},
    staticCSP: false,
  });
  app.get(OPENAPI_PATH, { schema: { hide: true }, config: { public: true } }, async () =>
    app.swagger(),
  );
}
