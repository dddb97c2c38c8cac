import type { FastifyReply } from 'fastify';
import { CORE_ERROR_CODES, CodedError } from '../core/errors.js';
import { SERVICE_ERROR_CODES } from '../service/errors.js';

/** The API layer's own codes, for requests that never reach a domain operation. */
export const API_ERROR_CODES = {
  BadRequest: 'The request is malformed (body not valid JSON, a bad parameter).',
  NotFound: 'No route answers this method and path.',
  PayloadTooLarge: 'The request body is larger than the server accepts.',
  UnsupportedMediaType: 'The request body has a content type this route does not accept.',
  InternalError: 'Something went wrong on the server; the log has the details.',
} as const;

/** The API code for an HTTP client error Fastify raised itself. */
const CLIENT_ERROR_CODES: Record<number, keyof typeof API_ERROR_CODES> = {
  404: 'NotFound',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

/** HTTP status for each stable error code: the one table of it (STYLE.md §3). */
const STATUS: Record<string, number> = {
  ...Object.fromEntries(Object.keys(CORE_ERROR_CODES).map((c) => [c, 422])),
  UnsupportedFormat: 415,
  InputTooLarge: 413,
  PasswordRequired: 401,
  WrongPassword: 401,
  ...Object.fromEntries(Object.keys(SERVICE_ERROR_CODES).map((c) => [c, 400])),
  AliasInUse: 409,
  AliasNotFound: 404,
  EntryNotUsable: 409,
  PinnedBySource: 409,
  FileUnreadable: 422,
  RevisionConflict: 412,
  EntryBound: 409,
  // The store or its data directory is broken: a server fault, never the client's.
  StoreUnavailable: 503,
  AddressInUse: 503,
  ListenFailed: 503,
  StoreCorrupt: 503,
  StoreMissing: 503,
  StoreReadOnly: 503,
  StoreTooNew: 503,
  DataDirMissing: 503,
  DataDirInsecure: 503,
  MasterKeyMissing: 503,
  MasterKeyWrong: 503,
  MasterKeyInvalid: 503,
  MasterKeyInsecure: 503,
};

/** An RFC 9457 problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: string;
  requestId?: string;
}

/** Renders any error as problem+json; a 5xx hides its detail and points to the logs. */
export function sendProblem(reply: FastifyReply, err: unknown): FastifyReply {
  const fastifyStatus = (err as { statusCode?: number }).statusCode;
  const clientError = fastifyStatus !== undefined && fastifyStatus < 500;
  let code: string;
  let status: number;
  if (err instanceof CodedError) {
    code = err.code;
    status = STATUS[code] ?? 400;
  } else {
    code = clientError ? (CLIENT_ERROR_CODES[fastifyStatus] ?? 'BadRequest') : 'InternalError';
    status = clientError ? fastifyStatus : 500;
  }
  const problem: Problem = {
    type: `urn:certkeeper:problem:${code}`,
    title: code,
    status,
    code,
    requestId: String(reply.request.id),
    // A 4xx explains; a 5xx hides what went wrong and points to the log.
    detail:
      status < 500
        ? (err as Error).message
        : `An internal error occurred; see the server log for request ${reply.request.id}.`,
  };
  if (status >= 500) reply.log.error({ err, requestId: reply.request.id }, 'request failed');
  return reply.code(status).type('application/problem+json').send(problem);
}
