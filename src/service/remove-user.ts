import { StoreError } from '../store/store.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';
import { requireAdmin } from './roles.js';

export interface RemoveUserInput {
  username: string;
  principal: Principal;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

export interface RemoveUserResult {
  revision: number;
  /** How many API tokens of the user were revoked with it. */
  tokensRevoked: number;
}

/**
 * Removes a user, with their API tokens and sessions, as one change (admins only:
 * `Forbidden`). A missing user is `UserNotFound`; the last admin is never removed
 * (`LastAdmin`).
 *
 * Two admins removing each other at once must not leave none: the change carries a
 * `userExists` precondition on another admin it counted, so of two such races one is
 * refused (`UserNotFound`, naming the admin the other removed). No operation changes a
 * user's role yet; one that does must guard this the same way.
 */
export async function removeUser(
  ctx: ServiceContext,
  input: RemoveUserInput,
): Promise<RemoveUserResult> {
  requireAdmin(input.principal, 'remove users');
  const { username } = input;
  const user = await ctx.store.getUser(username);
  if (!user) throw new StoreError('UserNotFound', `No user is named "${username}".`);
  const preconditions = [{ type: 'userExists' as const, username }];
  if (user.role === 'admin') {
    const otherAdmin = (await ctx.store.listUsers()).find(
      (u) => u.role === 'admin' && u.username !== username,
    );
    if (!otherAdmin) {
      throw new ServiceError(
        'LastAdmin',
        `"${username}" is the last admin and cannot be removed; create another admin first.`,
      );
    }
    preconditions.push({ type: 'userExists', username: otherAdmin.username });
  }
  const tokensRevoked = (await ctx.store.listTokens()).filter(
    (t) => t.username === username,
  ).length;
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'remove-user',
      target: `user:${username}`,
      details: { username, role: user.role, tokensRevoked },
      ...guards(input.expectedRevision, preconditions),
      mutations: [{ type: 'deleteUser', username }],
    }),
  );
  return { revision, tokensRevoked };
}
