import { type Precondition, StoreError } from '../store/store.js';
import { guards, type ServiceContext } from './context.js';
import { anotherAdminRemains, lostRace, RACE_ATTEMPTS } from './last-admin.js';
import { changeBy, type Principal } from './principal.js';
import { checkUserRole, requireAdmin, roleWithin, type UserRole } from './roles.js';

export interface ChangeRoleInput {
  username: string;
  role: UserRole;
  principal: Principal;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

export interface ChangeRoleResult {
  /** The revision of the change; the store's current one when nothing changed. */
  revision: number;
  role: UserRole;
  previousRole: UserRole;
  /** False when the user had the role already: nothing was written, nothing audited. */
  changed: boolean;
  /** How many API tokens of the user were revoked because they reach above the new role. */
  tokensRevoked: number;
  /** How many sessions of the user ended (they log in again under the new role). */
  sessionsEnded: number;
}

/**
 * Changes a user's role as one change, keeping their password, history and the tokens
 * the new role still covers (admins only: `Forbidden`; an unknown role is `InvalidRole`,
 * an unknown user `UserNotFound`). The last admin is never demoted (`LastAdmin`, guarded
 * inside the transaction as `last-admin.ts` says). Privileges follow at once: the user's
 * API tokens whose role is above the new one are revoked in the same change (a token
 * never outranks its user, and must not regain a role if the user is promoted again),
 * and every session of the user ends right after the commit, as a new password does.
 * The user having the role already is answered without writing (no revision, no audit
 * record): a repeated request is harmless.
 *
 * A race lost on what it read (another admin demoted or removed meanwhile, a token
 * revoked meanwhile) is decided again on what the store holds now; if the user's own role
 * moved meanwhile to another than asked, that is the caller's `RevisionConflict`.
 */
export async function changeRole(
  ctx: ServiceContext,
  input: ChangeRoleInput,
): Promise<ChangeRoleResult> {
  requireAdmin(input.principal, 'change the role of a user');
  const role = checkUserRole(input.role);
  const { username, principal, expectedRevision } = input;
  let firstSeen: UserRole | undefined;
  for (let attempt = 1; ; attempt++) {
    const user = await ctx.store.getUser(username);
    if (!user) throw new StoreError('UserNotFound', `No user is named "${username}".`);
    firstSeen ??= user.role;
    if (user.role !== firstSeen && user.role !== role) {
      throw new StoreError(
        'RevisionConflict',
        `The role of "${username}" changed meanwhile to ${user.role}; reload and decide again.`,
        { details: { username, role: user.role, expected: firstSeen } },
      );
    }
    if (user.role === role) {
      const current = await ctx.store.revision();
      if (expectedRevision !== undefined && expectedRevision !== current) {
        throw new StoreError(
          'RevisionConflict',
          `The store is at revision ${current}, but the change was made for revision ${expectedRevision}. Reload and try again.`,
        );
      }
      return {
        revision: current,
        role,
        previousRole: user.role,
        changed: false,
        tokensRevoked: 0,
        sessionsEnded: 0,
      };
    }
    const preconditions: Precondition[] = [{ type: 'userHasRole', username, role: user.role }];
    if (user.role === 'admin') {
      preconditions.push(await anotherAdminRemains(ctx, username, 'demoted'));
    }
    const revoked = (await ctx.store.listTokens())
      .filter((t) => t.username === username && !roleWithin(t.role, role))
      .map((t) => t.id);
    let revision: number;
    try {
      revision = await ctx.store.applyChange(
        changeBy(principal, {
          action: 'change-role',
          target: `user:${username}`,
          details: {
            username,
            from: user.role,
            to: role,
            tokensRevoked: revoked.length,
            revokedTokens: revoked,
          },
          ...guards(expectedRevision, preconditions),
          mutations: [
            { type: 'setUserRole', username, role },
            ...revoked.map((id) => ({ type: 'deleteToken' as const, id })),
          ],
        }),
      );
    } catch (err) {
      if (attempt < RACE_ATTEMPTS && lostRace(err, expectedRevision)) continue;
      throw err;
    }
    // Sessions are records outside the revision: they end right after the commit. Until
    // then (and for a session opened in between) each request already reads the new
    // role, since a session's principal is its user's current role.
    const sessionsEnded = await ctx.store.deleteUserSessions(username);
    return {
      revision,
      role,
      previousRole: user.role,
      changed: true,
      tokensRevoked: revoked.length,
      sessionsEnded,
    };
  }
}
