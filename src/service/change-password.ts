import { StoreError } from '../store/store.js';
import { type AuthPolicy, authPolicy } from './auth-policy.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { checkLoginLimit, failureKeys, recordLoginFailure } from './login-limit.js';
import { checkPasswordPolicy, exceedsPasswordLength } from './passwords.js';
import { changeBy, type Principal } from './principal.js';
import { isAdmin } from './roles.js';
import { sessionIdHash } from './session-token.js';

export interface ChangePasswordInput {
  username: string;
  newPassword: string;
  /** Required when users change their own password (the principal's actor is `username`). */
  currentPassword?: string;
  principal: Principal;
  /**
   * The session token the user changes their own password from: it stays, every other
   * session of the user ends. Without it (and always when an admin sets the password),
   * all the user's sessions end.
   */
  keepSession?: string;
  /**
   * Set by an admin who hands out a temporary password: the user must change it at the
   * next login. A user changing their own password always clears it.
   */
  mustChangePassword?: boolean;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

export interface ChangePasswordResult {
  revision: number;
  /** How many sessions of the user ended. */
  sessionsEnded: number;
}

/**
 * Sets a user's password, as one change. Users change their own with their current
 * password (wrong: `CurrentPasswordWrong`, counted like a failed login, so a stolen
 * session cannot guess it; too many: `TooManyAttempts`); an admin sets anyone else's
 * without it; anyone else is `Forbidden`. The new password meets the policy
 * (`PasswordTooShort`, `PasswordTooLong`, `PasswordMatchesUsername`). The user's other
 * sessions end once the change is committed.
 */
export async function changePassword(
  ctx: ServiceContext,
  input: ChangePasswordInput,
  policy: Partial<AuthPolicy> = {},
): Promise<ChangePasswordResult> {
  const p = authPolicy(policy);
  const { username, principal } = input;
  const self = principal.actor === username;
  if (!self && !isAdmin(principal)) {
    throw new ServiceError(
      'Forbidden',
      `Only an admin may set the password of another user ("${username}").`,
      { details: { needed: 'admin', role: principal.role } },
    );
  }
  const user = await ctx.store.getUser(username);
  if (!user) throw new StoreError('UserNotFound', `No user is named "${username}".`);
  checkPasswordPolicy(input.newPassword, username);
  if (self) {
    const keys = failureKeys(username, undefined);
    await checkLoginLimit(ctx, keys, p);
    const current = input.currentPassword;
    const ok =
      typeof current === 'string' &&
      !exceedsPasswordLength(current) &&
      (await p.hasher.verify(current, user.passwordHash));
    if (!ok) {
      await recordLoginFailure(ctx, keys);
      await ctx.store.appendAudit({
        actor: principal.actor,
        source: principal.source,
        action: 'change-password',
        target: `user:${username}`,
        outcome: 'denied',
        details: { reason: 'current-password-wrong' },
      });
      throw new ServiceError(
        'CurrentPasswordWrong',
        current === undefined
          ? 'To change your own password, give your current password.'
          : 'The current password is not right.',
      );
    }
    await ctx.store.clearLoginFailures(keys[0]!);
  }
  const mustChangePassword = self ? false : input.mustChangePassword === true;
  const revision = await ctx.store.applyChange(
    changeBy(principal, {
      action: 'change-password',
      target: `user:${username}`,
      details: { username, by: self ? 'self' : 'admin', mustChangePassword },
      // putUser writes the role read above: a role changed meanwhile must not be undone.
      ...guards(input.expectedRevision, [{ type: 'userHasRole', username, role: user.role }]),
      mutations: [
        {
          type: 'putUser',
          user: {
            username,
            role: user.role,
            passwordHash: await p.hasher.hash(input.newPassword),
            mustChangePassword,
          },
        },
      ],
    }),
  );
  // Sessions are records outside the revision: they end right after the commit. A session
  // opened with the old password in between ends too (it is not the one kept).
  const keep =
    self && input.keepSession !== undefined ? sessionIdHash(input.keepSession) : undefined;
  const sessionsEnded = await ctx.store.deleteUserSessions(username, keep);
  return { revision, sessionsEnded };
}
