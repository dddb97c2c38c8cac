/**
 * The error type of `service/`. `core/` and `store/` errors pass through unchanged
 * (each layer has its own catalogue); these are the domain rules of the keystore.
 */
import { CodedError } from '../core/errors.js';

export const SERVICE_ERROR_CODES = {
  InvalidAlias: 'An alias must be 1–64 letters, digits, dots, dashes or underscores.',
  AliasInUse: 'An entry with this alias already exists.',
  AliasNotFound: 'No entry has this alias.',
  EntryNotUsable: 'The entry cannot be used this way (wrong kind, expired, or no key).',
  PinnedBySource:
    'A higher-precedence source (flag, file or environment) pins the served identity.',
  BindingNotFound: 'Nothing is bound under this binding name.',
  InvalidRequest: 'The request is not valid.',
  FileUnreadable:
    'A named file cannot be read: it is missing, not permitted, or not a regular file.',
} as const;

export type ServiceErrorCode = keyof typeof SERVICE_ERROR_CODES;

export class ServiceError extends CodedError<ServiceErrorCode> {
  override readonly name = 'ServiceError';
}
