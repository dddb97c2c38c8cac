import type { FastifyReply } from 'fastify';
import { CORE_ERROR_CODES, CoreError } from '../core/errors.js';
import { SERVICE_ERROR_CODES, ServiceError } from '../service/errors.js';
import { StoreError } from '../store/store.js';

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
  RevisionConflict: 412,
  EntryBound: 409,
  NotFound: 404,
  StoreUnavailable: 503,
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
  const typed =
    err instanceof CoreError || err instanceof ServiceError || err instanceof StoreError;
  const fastifyStatus = (err as { statusCode?: number }).statusCode;
  const code = typed
    ? err.code
    : fastifyStatus && fastifyStatus < 500
      ? 'BadRequest'
      : 'InternalError';
  const status = typed
    ? (STATUS[code] ?? 400)
    : fastifyStatus && fastifyStatus < 500
      ? fastifyStatus
      : 500;
  const problem: Problem = {
    type: `urn:certkeeper:problem:${code}`,
    title: code,
    status,
    code,
    requestId: String(reply.request.id),
  };
  if (status < 500) problem.detail = (err as Error).message;
  else
    problem.detail = `An internal error occurred; see the server log for request ${reply.request.id}.`;
  return reply.code(status).type('application/problem+json').send(problem);
}
