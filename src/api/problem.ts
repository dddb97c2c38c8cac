import type { FastifyReply } from 'fastify';
import { CodedError, type CoreErrorCode } from '../core/errors.js';
import type { RuntimeErrorCode } from '../runtime/identity.js';
import type { ServiceErrorCode, StoreErrorCode } from '../service/errors.js';

/** The API layer's own codes, for requests that never reach a domain operation. */
export const API_ERROR_CODES = {
  BadRequest: 'The request is malformed (body not valid JSON, a bad parameter).',
  NotFound: 'No route answers this method and path.',
  PayloadTooLarge: 'The request body is larger than the server accepts.',
  UnsupportedMediaType: 'The request body has a content type this route does not accept.',
  MethodNotAllowed: 'The path exists but does not answer this method (see Allow).',
  MethodNotImplemented: 'The request method is not one certkeeper knows.',
  RequestTimeout: 'The request headers did not arrive in time.',
  HeadersTooLarge: 'The request header section is larger than the server accepts.',
  Unauthenticated: 'The route needs credentials and the request carries none.',
  CrossSiteRequest: 'A cookie-authenticated write came without a matching Origin or CSRF header.',
  PasswordChangeRequired: 'The user must change their password before anything else.',
  InternalError: 'Something went wrong on the server; the log has the details.',
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_CODES;

/**
 * Every stable error code of certkeeper: the union of the layers' catalogues
 * (`CORE_ERROR_CODES`, `STORE_ERROR_CODES`, `SERVICE_ERROR_CODES`, `RUNTIME_ERROR_CODES`,
 * `API_ERROR_CODES`). Each code is in exactly one of them and means one thing.
 */
export type ErrorCode =
  | CoreErrorCode
  | StoreErrorCode
  | ServiceErrorCode
  | RuntimeErrorCode
  | ApiErrorCode;

/** The codes found in two catalogues at once; `STATUS` makes the compiler keep this empty. */
type InTwoCatalogues =
  | (CoreErrorCode & (StoreErrorCode | ServiceErrorCode | RuntimeErrorCode | ApiErrorCode))
  | (StoreErrorCode & (ServiceErrorCode | RuntimeErrorCode | ApiErrorCode))
  | (ServiceErrorCode & (RuntimeErrorCode | ApiErrorCode))
  | (RuntimeErrorCode & ApiErrorCode);

/**
 * HTTP status for each stable error code: the one table of it (STYLE.md §3). The compiler
 * checks it: a new code without a status fails `tsc`, and so does a code that two
 * catalogues share (its status must then be `never`). A 4xx is the client's to fix; a 5xx
 * is a fault of the server (its store, its data directory, its TLS runtime), whose detail
 * `sendProblem` hides.
 */
export const STATUS = {
  // core — the input was read and judged; it is the client's to fix.
  UnsupportedFormat: 415,
  UnsupportedAlgorithm: 422,
  MalformedInput: 422,
  InputTooLarge: 413,
  PasswordRequired: 401,
  WrongPassword: 401,
  KeyMismatch: 422,
  NoCertificate: 422,
  NoPrivateKey: 422,
  KeyAliasRequired: 422,
  KeyAliasNotFound: 422,
  AmbiguousLeaf: 422,
  ChainIncomplete: 422,
  ChainInvalid: 422,
  SignatureInvalid: 422,
  CertificateExpired: 422,
  CertificateNotYetValid: 422,
  NotACertificateAuthority: 422,
  PathLengthExceeded: 422,
  NameConstraintViolation: 422,
  UsageNotAllowed: 422,
  UnknownCriticalExtension: 422,
  HostnameMismatch: 422,
  CertificateRevoked: 422,
  UntrustedRoot: 422,
  PolicyViolation: 422,
  InvalidGenerationRequest: 422,

  // store — the client's conflicts are 4xx; a store or data directory that is broken,
  // locked or missing its key is the server's fault, never the client's.
  RevisionConflict: 412,
  AliasNotFound: 404,
  AliasInUse: 409,
  InvalidMutation: 400,
  MasterKeyMissing: 503,
  MasterKeyWrong: 503,
  MasterKeyInvalid: 503,
  MasterKeyInsecure: 503,
  StoreUnavailable: 503,
  StoreTooNew: 503,
  StoreCorrupt: 503,
  StoreMissing: 503,
  StoreReadOnly: 503,
  DataDirMissing: 503,
  DataDirInsecure: 503,
  UserNotFound: 404,
  UserExists: 409,
  TokenNotFound: 404,

  // service — the domain rules of the keystore.
  InvalidAlias: 400,
  EntryNotUsable: 409,
  PinnedBySource: 409,
  InvalidBinding: 400,
  InvalidHostname: 400,
  TooManyKeys: 422,
  TooManyCertificates: 422,
  FileUnreadable: 422,
  BindingNotFound: 404,
  InvalidPrincipal: 500,
  EmptyUpload: 400,
  UnexpectedPrivateKey: 422,
  InvalidKeyType: 400,
  InvalidSubjectAltName: 400,
  PasswordTooShort: 400,
  InvalidQuery: 400,
  AuditChainBroken: 500,
  InvalidConfirmationWindow: 400,
  NothingToConfirm: 409,
  InvalidChange: 400,
  NothingToRollBack: 409,
  PasswordTooLong: 400,
  PasswordMatchesUsername: 400,
  InvalidUsername: 400,
  InvalidRole: 400,
  InvalidTokenName: 400,
  InvalidExpiry: 400,
  Forbidden: 403,
  RoleTooHigh: 403,
  LastAdmin: 409,
  AuthenticationFailure: 401,
  CurrentPasswordWrong: 403,
  TooManyAttempts: 429,
  ActivationRefused: 422,

  // runtime — the live TLS state of this process: always the server's fault.
  ContextBuildFailed: 500,
  ProbeFailed: 500,
  InvalidState: 500,
  NotRunning: 503,
  AlreadyStarted: 500,
  TicketKeyInvalid: 500,
  AddressInUse: 503,
  ListenFailed: 503,

  // api — requests that never reach a domain operation.
  BadRequest: 400,
  NotFound: 404,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  MethodNotAllowed: 405,
  MethodNotImplemented: 501,
  RequestTimeout: 408,
  HeadersTooLarge: 431,
  Unauthenticated: 401,
  CrossSiteRequest: 403,
  PasswordChangeRequired: 403,
  InternalError: 500,
} as const satisfies Record<ErrorCode, number> & Record<InTwoCatalogues, never>;

/** True when `code` is one of certkeeper's stable error codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(STATUS, code);
}

/** The API code for an HTTP client error Fastify raised itself. */
const CLIENT_ERROR_CODES: Record<number, ApiErrorCode> = {
  404: 'NotFound',
  405: 'MethodNotAllowed',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

/** An RFC 9457 problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: ErrorCode;
  requestId?: string;
}

/**
 * Renders any error as problem+json. A 4xx explains (its detail is the error's sentence);
 * a 5xx hides what went wrong, names the request id instead, and logs the error with its
 * cause under that id (STYLE.md §4).
 */
export function sendProblem(reply: FastifyReply, err: unknown): FastifyReply {
  const fastifyStatus = (err as { statusCode?: number }).statusCode;
  let code: ErrorCode;
  let status: number;
  if (err instanceof CodedError && isErrorCode(err.code)) {
    code = err.code;
    status = STATUS[code];
  } else if (
    !(err instanceof CodedError) &&
    fastifyStatus !== undefined &&
    fastifyStatus >= 400 &&
    fastifyStatus < 500
  ) {
    code = CLIENT_ERROR_CODES[fastifyStatus] ?? 'BadRequest';
    status = fastifyStatus;
  } else {
    // A bug, a system failure, or a coded error of no catalogue: the server's fault.
    code = 'InternalError';
    status = 500;
  }
  const requestId = String(reply.request.id);
  const detail =
    status >= 500
      ? `An internal error occurred; see the server log for request ${requestId}.`
      : code === 'UnsupportedMediaType' && !(err instanceof CodedError)
        ? `The body's content type (${reply.request.headers['content-type'] ?? 'none'}) is not accepted here: send application/json, or multipart/form-data for uploads.`
        : (err as Error).message;
  const problem = problemDocument(code, detail, requestId, status);
  if (status >= 500) reply.log.error({ err, code, requestId }, 'request failed');
  const retryAfter = err instanceof CodedError ? err.details?.retryAfterSeconds : undefined;
  if (typeof retryAfter === 'number') reply.header('Retry-After', String(retryAfter));
  return reply.code(status).type('application/problem+json').send(problem);
}

/** The problem document of `code` (its status from `STATUS` unless given). */
export function problemDocument(
  code: ErrorCode,
  detail: string,
  requestId: string,
  status: number = STATUS[code],
): Problem {
  return { type: `urn:certkeeper:problem:${code}`, title: code, status, code, requestId, detail };
}
