/**
 * The error type of `service/`: the domain rules of the keystore. Each code lives in
 * exactly one catalogue (the test in `test/docs/errors.test.ts` and the status table in
 * `api/error-status.ts` keep it so): `core/` and `store/` errors pass through unchanged,
 * and where a rule is the store's own word — `AliasInUse`, `AliasNotFound` — the service
 * throws the store's `StoreError` with it rather than a second code of the same meaning.
 * A retired code is never reused (see docs/errors.md).
 */
import { CodedError } from '../core/errors.js';

export const SERVICE_ERROR_CODES = {
  InvalidAlias: 'An alias must be 1–64 letters, digits, dots, dashes or underscores.',
  EntryNotUsable: 'The entry cannot be used this way (wrong kind, expired, or no key).',
  PinnedBySource:
    'A higher-precedence source (flag, file or environment) pins the served identity.',
  InvalidBinding: 'The binding is not "server" or "sni:<host>".',
  InvalidHostname: 'The host name of an SNI binding is not a DNS name (exact or *. wildcard).',
  TooManyKeys: 'The upload holds more than one private key.',
  TooManyCertificates: 'A trusted entry holds one CA certificate, and the upload has several.',
  BindingNotFound: 'Nothing is bound under this binding name.',
  InvalidPrincipal: 'A write was made without a well-formed principal (actor, role, source).',
  EmptyUpload: 'The upload holds no file.',
  UnexpectedPrivateKey: 'Completing a CSR takes the issued certificate only, not a private key.',
  InvalidKeyType: 'The key type of a CSR is not one certkeeper generates.',
  InvalidSubjectAltName: 'A subject alternative name is not "DNS:<name>" or "IP:<address>".',
  PasswordTooShort: 'The password is shorter than the minimum.',
  InvalidQuery: 'A filter or the paging (limit, after) of a listing is not valid.',
  InvalidConfirmationWindow: 'A confirmation window is not a whole number of seconds in range.',
  NothingToConfirm: 'No activation is waiting for its confirmation.',
  InvalidChange:
    'A change of several operations holds none, more than 100, or sets one binding twice.',
  NothingToRollBack: 'No activation is on record to roll back.',
  AuditChainBroken:
    'A record of the audit log was altered, removed or reordered after it was written.',
  FileUnreadable:
    'A named file cannot be read: it is missing, not permitted, not a regular file or a pipe, or a pipe that nothing writes to or that was not closed in time.',
  PasswordTooLong: 'The password is longer than the maximum (1024 characters).',
  PasswordMatchesUsername: 'The password is the user name.',
  InvalidUsername: 'A user name must be 1–64 letters, digits, dots, dashes, underscores or @.',
  InvalidRole: 'The role is not admin, operator or auditor.',
  InvalidTokenName: 'A token name must be 1–64 letters, digits, dots, dashes, underscores or @.',
  InvalidExpiry: 'The expiry of a token is not a future time or a whole number of days.',
  Forbidden: "The principal's role does not permit this operation.",
  RoleTooHigh: 'A token cannot have a role above the role of the user who creates or owns it.',
  LastAdmin: 'The last admin cannot be removed or demoted.',
  AuthenticationFailure:
    'The user name and password, the session or the API token were not accepted.',
  CurrentPasswordWrong: 'The current password given to change a password is not right.',
  TooManyAttempts: 'Too many failed logins for this user or from this address; wait and retry.',
  ActivationRefused:
    'A running server refused to serve the change (its context or self-probe failed); the previous identity serves.',
} as const;

export type ServiceErrorCode = keyof typeof SERVICE_ERROR_CODES;

export class ServiceError extends CodedError<ServiceErrorCode> {
  override readonly name = 'ServiceError';
}

/**
 * The store's codes pass through `service/` unchanged; front ends (`api/`, `cli/`) name
 * them through this re-export, never by importing `store/` (DESIGN.md, layer 3).
 */
export type { StoreErrorCode } from '../store/store.js';
export { STORE_ERROR_CODES } from '../store/store.js';
