import { checkUsername } from './account-name.js';
import { guards, type ServiceContext } from './context.js';
import { checkPasswordPolicy, type PasswordHasher, SCRYPT_HASHER } from './passwords.js';
import { changeBy, type Principal } from './principal.js';
import { checkUserRole, requireAdmin, type UserRole } from './roles.js';
import { oneTimePassword } from './secret-token.js';

export interface CreateUserInput {
  username: string;
  role: UserRole;
  /**
   * The user's password. Without one, a one-time password is generated, returned once in
   * the result, and must be changed at the first login.
   */
  password?: string;
  principal: Principal;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

export interface CreateUserResult {
  username: string;
  role: UserRole;
  mustChangePassword: boolean;
  /** The generated password, when none was given: show it once, it is stored only hashed. */
  oneTimePassword?: string;
  revision: number;
}

/**
 * Creates a user as one change (admins only: `Forbidden`). The name is checked
 * (`InvalidUsername`), the role (`InvalidRole`) and the password policy
 * (`PasswordTooShort`, `PasswordTooLong`, `PasswordMatchesUsername`); a name in use is
 * `UserExists`, decided inside the transaction. Only the scrypt hash is stored, and the
 * audit record names the user and role, never the password.
 */
export async function createUser(
  ctx: ServiceContext,
  input: CreateUserInput,
  hasher: PasswordHasher = SCRYPT_HASHER,
): Promise<CreateUserResult> {
  requireAdmin(input.principal, 'create users');
  const username = checkUsername(input.username);
  const role = checkUserRole(input.role);
  const generated = input.password === undefined ? oneTimePassword() : undefined;
  const password = generated ?? (input.password as string);
  checkPasswordPolicy(password, username);
  const mustChangePassword = generated !== undefined;
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'create-user',
      target: `user:${username}`,
      details: { username, role, mustChangePassword },
      ...guards(input.expectedRevision, [{ type: 'userAbsent', username }]),
      mutations: [
        {
          type: 'putUser',
          user: { username, role, passwordHash: await hasher.hash(password), mustChangePassword },
        },
      ],
    }),
  );
  return {
    username,
    role,
    mustChangePassword,
    ...(generated === undefined ? {} : { oneTimePassword: generated }),
    revision,
  };
}
