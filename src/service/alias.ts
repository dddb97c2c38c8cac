import { isReservedAlias } from './context.js';
import { ServiceError } from './errors.js';

// Starts with a letter or digit, so an alias is never taken for a command-line option.
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throws `InvalidAlias` unless the alias is usable for a user entry (not `certkeeper-*`). */
export function checkAlias(alias: string): void {
  if (typeof alias !== 'string' || !ALIAS.test(alias) || isReservedAlias(alias)) {
    throw new ServiceError(
      'InvalidAlias',
      `The alias "${alias}" is not valid: use 1–128 letters, digits, dots, dashes or underscores, starting with a letter or digit and not with "certkeeper-".`,
    );
  }
}
