import type { FastifyRequest, FastifySchema } from 'fastify';
import { CORE_ERROR_CODES } from '../core/errors.js';
import { RUNTIME_ERROR_CODES } from '../runtime/identity.js';
import { SERVICE_ERROR_CODES, ServiceError, STORE_ERROR_CODES } from '../service/errors.js';
import { API_ERROR_CODES, type ErrorCode, STATUS } from './problem.js';

/** What any route may answer: a body it can't parse, a fault of the server. */
const ANY_ROUTE: readonly ErrorCode[] = ['BadRequest', 'InternalError'];

/** What any authenticated route may answer before its handler runs. */
const AUTHENTICATED: readonly ErrorCode[] = [
  'Unauthenticated',
  'AuthenticationFailure',
  'Forbidden',
  'PasswordChangeRequired',
];

/** What any authenticated write may answer besides: a cookie without the CSRF proof. */
const AUTHENTICATED_WRITE: readonly ErrorCode[] = ['CrossSiteRequest'];

/** Every stable error code with its sentence: the document lists them all (`ErrorCode`). */
export const SENTENCES: Readonly<Record<string, string>> = {
  ...CORE_ERROR_CODES,
  ...STORE_ERROR_CODES,
  ...SERVICE_ERROR_CODES,
  ...RUNTIME_ERROR_CODES,
  ...API_ERROR_CODES,
};

/** A code's sentence as Markdown: its placeholders (`"sni:<host>"`) are text, not HTML tags. */
export function sentenceMarkdown(code: string): string {
  return (SENTENCES[code] ?? '').replace(/</g, '\\<');
}

export interface RouteDocs {
  /** The operation's stable name in the OpenAPI document (and generated clients). */
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** The codes the route itself may answer (the common ones are added). */
  errors?: readonly ErrorCode[];
  /** No credentials needed. */
  public?: boolean;
  /** A write (POST, PUT, PATCH, DELETE): cookie-authenticated calls need the CSRF proof. */
  write?: boolean;
  body?: unknown;
  /**
   * The same input as `multipart/form-data` (its parts' schema, for the document only:
   * such a body is read by the route, not validated by Fastify).
   */
  multipart?: unknown;
  params?: unknown;
  querystring?: unknown;
  headers?: unknown;
  /** The success responses by status, each a schema with a `description`. */
  responses: Record<number, unknown>;
}

/**
 * For a route with `attachValidation: true`: a query its schema refused is `InvalidQuery`,
 * naming what is wrong; any other refused part (params, body, headers) is `BadRequest` as
 * without `attachValidation`.
 */
export function checkQuery(request: FastifyRequest): void {
  const err = request.validationError;
  if (!err) return;
  if (err.validationContext !== 'querystring') throw err;
  throw new ServiceError('InvalidQuery', `The query is not valid: ${err.message}.`);
}

/** Where a route keeps its multipart body's schema for the OpenAPI document. */
export const MULTIPART_DOC = 'x-multipart-body';

/** Every code the route documents: its own and the common ones. */
function routeCodes(docs: RouteDocs): ErrorCode[] {
  return [
    ...new Set([
      ...ANY_ROUTE,
      ...(docs.public ? [] : AUTHENTICATED),
      ...(docs.public || !docs.write ? [] : AUTHENTICATED_WRITE),
      ...(docs.errors ?? []),
    ]),
  ];
}

/**
 * The Fastify schema of a route: its inputs and success responses, and one problem+json
 * response per error status listing the codes it can answer with their meaning (the
 * OpenAPI document is generated from it, and the tests check every answered code is here).
 */
export function routeSchema(docs: RouteDocs): FastifySchema {
  const response: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(docs.responses)) response[status] = schema;
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of routeCodes(docs)) {
    const status = STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    response[status] = {
      description: codes.map((c) => `\`${c}\`: ${sentenceMarkdown(c)}`).join(' '),
      content: { 'application/problem+json': { schema: problemSchema(codes) } },
    };
  }
  const schema: FastifySchema = {
    operationId: docs.operationId,
    summary: docs.summary,
    tags: docs.tags,
    response,
  };
  if (docs.description) schema.description = docs.description;
  if (docs.public) schema.security = [];
  if (docs.body && docs.multipart) {
    schema.body = { content: { 'application/json': { schema: docs.body } } };
    (schema as Record<string, unknown>)[MULTIPART_DOC] = docs.multipart;
  } else if (docs.body) {
    schema.body = docs.body;
  }
  if (docs.params) schema.params = docs.params;
  if (docs.querystring) schema.querystring = docs.querystring;
  if (docs.headers) schema.headers = docs.headers;
  return schema;
}

/** The RFC 9457 problem document, its `code` limited to `codes`. */
function problemSchema(codes: readonly ErrorCode[]) {
  return {
    type: 'object',
    required: ['type', 'title', 'status', 'code', 'detail'],
    properties: {
      type: { type: 'string', description: '`urn:certkeeper:problem:<code>`' },
      title: { type: 'string' },
      status: { type: 'integer' },
      code: { type: 'string', enum: [...codes] },
      detail: { type: 'string', description: 'One sentence for a person.' },
      requestId: { type: 'string', description: 'The id of the request in the server log.' },
    },
  };
}
