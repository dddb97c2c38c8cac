import { isStoreError } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { checkPasswordPolicy, type PasswordHasher, SCRYPT_HASHER } from './passwords.js';
import { changeBy, RUNTIME_PRINCIPAL } from './principal.js';
import { oneTimePassword } from './secret-token.js';

/** The name of the user certkeeper creates on its first start. */
export const INITIAL_ADMIN = 'admin';

export interface InitialAdminOptions {
  /** `CERTKEEPER_ADMIN_PASSWORD` sets the first admin's password. */
  env: Record<string, string | undefined>;
  /** Where to say that the admin was created (never with the password). */
  log?: { info(details: Record<string, unknown>, message: string): void };
  hasher?: PasswordHasher;
}

export type InitialAdminResult =
  | { created: false }
  | {
      created: true;
      username: string;
      /**
       * The generated password when `CERTKEEPER_ADMIN_PASSWORD` was not set: the caller
       * shows it once (on stdout, never in a log); the admin must change it at first login.
       */
      oneTimePassword?: string;
    };

/**
 * On the first start (a store without users) creates the user `admin` with the role
 * admin, as certkeeper itself (`runtime`): with `CERTKEEPER_ADMIN_PASSWORD` when it is
 * set (it must meet the password policy; no change is forced), else with a generated
 * one-time password that must be changed at the first login. A store that has users is
 * left alone, whatever the environment says; of two nodes starting at once on a new
 * shared store, one creates the admin and the other finds it (`userAbsent`).
 */
export async function ensureInitialAdmin(
  ctx: ServiceContext,
  options: InitialAdminOptions,
): Promise<InitialAdminResult> {
  if ((await ctx.store.listUsers()).length > 0) return { created: false };
  const username = INITIAL_ADMIN;
  const fromEnv = options.env.CERTKEEPER_ADMIN_PASSWORD;
  const given = fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
  const password = given ?? oneTimePassword();
  if (given !== undefined) checkPasswordPolicy(given, username);
  const mustChangePassword = given === undefined;
  const passwordHash = await (options.hasher ?? SCRYPT_HASHER).hash(password);
  try {
    await ctx.store.applyChange(
      changeBy(RUNTIME_PRINCIPAL, {
        action: 'create-user',
        target: `user:${username}`,
        details: {
          username,
          role: 'admin',
          mustChangePassword,
          passwordFrom: given === undefined ? 'generated' : 'CERTKEEPER_ADMIN_PASSWORD',
        },
        preconditions: [{ type: 'userAbsent', username }],
        mutations: [
          { type: 'putUser', user: { username, role: 'admin', passwordHash, mustChangePassword } },
        ],
      }),
    );
  } catch (err) {
    if (isStoreError(err, 'UserExists')) return { created: false };
    throw err;
  }
  options.log?.info(
    { username, passwordFrom: given === undefined ? 'generated' : 'CERTKEEPER_ADMIN_PASSWORD' },
    given === undefined
      ? `created the initial admin "${username}" with a one-time password (shown once on stdout)`
      : `created the initial admin "${username}" with the password of CERTKEEPER_ADMIN_PASSWORD`,
  );
  return given === undefined
    ? { created: true, username, oneTimePassword: password }
    : { created: true, username };
}
