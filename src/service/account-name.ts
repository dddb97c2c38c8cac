import { ServiceError } from './errors.js';

/** A user or token name: 1–64 letters, digits, dots, dashes, underscores or `@`. */
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** True when `name` is a well-formed user name (no store lookup). */
export function isUsername(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

/** The user name, or `InvalidUsername`. */
export function checkUsername(name: unknown): string {
  if (!isUsername(name)) {
    throw new ServiceError(
      'InvalidUsername',
      `A user name must be 1–64 letters, digits, dots, dashes, underscores or @, not ${JSON.stringify(name)}.`,
    );
  }
  return name;
}

/** The token name, or `InvalidTokenName`. */
export function checkTokenName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ServiceError(
      'InvalidTokenName',
      `A token name must be 1–64 letters, digits, dots, dashes, underscores or @, not ${JSON.stringify(name)}.`,
    );
  }
  return name;
}
