import { type Precondition, StoreError } from '../store/store.js';
import { guards, type ServiceContext } from './context.js';
import { anotherAdminRemains, lostRace, RACE_ATTEMPTS } from './last-admin.js';
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
 * Two admins removing (or demoting) each other at once must not leave none: the change
 * carries a `userHasRole` precondition on another admin it counted, and one on the
 * removed user's role as read (a user promoted meanwhile is decided again), so of two
 * such races one commits; the other reads again and is refused with `LastAdmin`
 * (see `last-admin.ts`).
 */
export async function removeUser(
  ctx: ServiceContext,
  input: RemoveUserInput,
): Promise<RemoveUserResult> {
  requireAdmin(input.principal, 'remove users');
  const { username, expectedRevision } = input;
  for (let attempt = 1; ; attempt++) {
    const user = await ctx.store.getUser(username);
    if (!user) throw new StoreError('UserNotFound', `No user is named "${username}".`);
    const preconditions: Precondition[] = [{ type: 'userHasRole', username, role: user.role }];
    if (user.role === 'admin') {
      preconditions.push(await anotherAdminRemains(ctx, username, 'removed'));
    }
    const tokensRevoked = (await ctx.store.listTokens()).filter(
      (t) => t.username === username,
    ).length;
    try {
      const revision = await ctx.store.applyChange(
        changeBy(input.principal, {
          action: 'remove-user',
          target: `user:${username}`,
          details: { username, role: user.role, tokensRevoked },
          ...guards(expectedRevision, preconditions),
          mutations: [{ type: 'deleteUser', username }],
        }),
      );
      return { revision, tokensRevoked };
    } catch (err) {
      if (attempt < RACE_ATTEMPTS && lostRace(err, expectedRevision)) continue;
      throw err;
    }
  }
}
