/**
 * A real API for tests: the Fastify app over HTTPS on loopback, on a real keystore, with
 * a certificate made for 127.0.0.1; requests go through undici trusting only its root.
 */
import { createServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Agent, type Dispatcher, request } from 'undici';
import { type AppOptions, buildApp } from '../../src/api/app.js';
import type { ServedStatus } from '../../src/runtime/supervisor.js';
import { createUser } from '../../src/service/create-user.js';
import type { UserRole } from '../../src/service/roles.js';
import { makeHierarchy } from './pki.js';
import { TEST_PRINCIPAL } from './principal.js';
import { type TestKeystore, testKeystore } from './service.js';

export interface TestApi {
  app: FastifyInstance;
  keystore: TestKeystore;
  /** `https://127.0.0.1:<port>` */
  origin: string;
  /** An undici agent that trusts the test server's root. */
  agent: Agent;
  /** The root certificate (PEM) the test server's chain ends at. */
  ca: string;
  /** A request to the API; `json` is sent as the body. The body is read as text. */
  call(
    method: Dispatcher.HttpMethod,
    path: string,
    options?: {
      json?: unknown;
      body?: string | Uint8Array;
      headers?: Record<string, string>;
      token?: string;
    },
  ): Promise<ApiAnswer>;
  /** Creates a user with that role and logs in: its session's bearer token. */
  loginAs(role: UserRole, username?: string): Promise<string>;
  close(): Promise<void>;
}

export interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body as JSON (throws when it is not); tests read what they assert on. */
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whichever field it checks
  json(): any;
}

/** A node serving its local CA's certificate, for routes that report the served state. */
export const SERVING_LOCAL_CA: ServedStatus = {
  source: 'local-ca',
  what: 'alias "certkeeper-local-server"',
  alias: 'certkeeper-local-server',
  fingerprint: 'AB:CD',
  revision: 1,
  lastProbe: null,
  attempts: [],
  reconciledRevision: 1,
  refused: [],
  expired: false,
};

/** The parts of an OpenAPI document the tests read. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
  info: { description: string };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  responses: Record<
    string,
    {
      content?: Record<string, { schema: { properties?: { code?: { enum?: string[] } } } }>;
    }
  >;
}

const PASSWORD = 'correct horse battery staple';

/** Starts the API on a fresh keystore; `tlsStatus` answers undefined (starting) unless given. */
export async function startApi(
  options: { tlsStatus?: AppOptions['tlsStatus']; serverOptions?: ServerOptions } = {},
): Promise<TestApi> {
  const keystore = await testKeystore();
  const pki = await makeHierarchy({ ips: ['127.0.0.1'], hosts: ['localhost'] });
  const app = await buildApp({
    keystore: keystore.ctx,
    tlsStatus: options.tlsStatus ?? (() => undefined),
    serverFactory: (handler) =>
      createServer(
        {
          key: pki.leaf.keyPem,
          cert: pki.leaf.certPem + pki.intermediate.certPem,
          minVersion: 'TLSv1.2',
          requireHostHeader: false,
          ...options.serverOptions,
        },
        handler,
      ),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const origin = `https://127.0.0.1:${port}`;
  const agent = new Agent({ connect: { ca: pki.root.certPem } });
  const call = apiClient(origin, agent);
  let users = 0;
  return {
    app,
    keystore,
    origin,
    agent,
    ca: pki.root.certPem,
    call,
    loginAs: async (role, username = `${role}${++users}`) => {
      await createUser(keystore.ctx, {
        username,
        role,
        password: PASSWORD,
        principal: TEST_PRINCIPAL,
      });
      const res = await call('POST', '/api/v1/auth/session', {
        json: { username, password: PASSWORD },
      });
      if (res.status !== 201) throw new Error(`login as ${username}: ${res.status} ${res.text}`);
      return res.json().token as string;
    },
    close: async () => {
      await app.close();
      await agent.close();
      await keystore.cleanup();
    },
  };
}

export { PASSWORD };

/**
 * Calls the API at `origin` through `agent`. Every problem answer is checked against the
 * OpenAPI document: a route that answers a code its operation does not list fails the test.
 */
export function apiClient(origin: string, agent: Dispatcher): TestApi['call'] {
  let document: OpenApiDocument | undefined;
  const assertDocumented = async (method: string, path: string, status: number, code: string) => {
    if (!document) {
      const res = await request(`${origin}/api/openapi.json`, { dispatcher: agent });
      document = (await res.body.json()) as OpenApiDocument;
    }
    const operation = operationOf(document, method, path.split('?')[0]!);
    if (!operation) return; // no route: 404, 405 and parser errors belong to no operation
    const documented: string[] =
      operation.responses?.[status]?.content?.['application/problem+json']?.schema?.properties?.code
        ?.enum ?? [];
    if (!documented.includes(code)) {
      throw new Error(
        `${method} ${path} answered ${status} ${code}, which its OpenAPI operation does not list (${documented.join(', ') || 'nothing'} for ${status})`,
      );
    }
  };
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(`${origin}${path}`, { method, headers, body, dispatcher: agent });
    const text = await res.body.text();
    const type = String(res.headers['content-type'] ?? '');
    if (type.startsWith('application/problem+json')) {
      await assertDocumented(method, path, res.statusCode, JSON.parse(text).code);
    }
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  };
}

/** The OpenAPI operation answering `method path`, if a documented path matches. */
export function operationOf(
  document: OpenApiDocument,
  method: string,
  path: string,
): OpenApiOperation | undefined {
  for (const [template, item] of Object.entries(document.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(path) && item[method.toLowerCase()]) return item[method.toLowerCase()];
  }
  return undefined;
}
