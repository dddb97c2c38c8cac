import { isStoreError, type Precondition } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

/**
 * "Never leave no admin", for the operations that take an admin away (removing one,
 * changing an admin's role). Counting the admins before the change is not enough: two
 * admins taking each other away at once would each count the other. So the change carries
 * a `userHasRole` precondition on another admin it counted, checked inside the
 * transaction: of two such races one commits, and the other's precondition fails.
 * `userExists` would not do since roles can change: the other admin may still exist,
 * demoted.
 */
export async function anotherAdminRemains(
  ctx: ServiceContext,
  username: string,
  what: string,
): Promise<Precondition> {
  const other = (await ctx.store.listUsers()).find(
    (u) => u.role === 'admin' && u.username !== username,
  );
  if (!other) {
    throw new ServiceError(
      'LastAdmin',
      `"${username}" is the last admin and cannot be ${what}; make another user an admin first.`,
      { details: { username } },
    );
  }
  return { type: 'userHasRole', username: other.username, role: 'admin' };
}

/** How many times an operation is tried when it loses a race on what it read. */
export const RACE_ATTEMPTS = 3;

/**
 * True when a change failed only because something it read moved before its commit (a
 * user's role, a user or token removed meanwhile) and the caller gave no revision of its
 * own: the operation may read again and decide anew, so the one that lost a race to take
 * the last admin away answers `LastAdmin`, not a conflict. With `If-Match` the caller
 * asked for exactly the state it saw, and the conflict is theirs to see.
 */
export function lostRace(err: unknown, expectedRevision: number | undefined): boolean {
  return (
    expectedRevision === undefined &&
    (isStoreError(err, 'RevisionConflict') ||
      isStoreError(err, 'UserNotFound') ||
      isStoreError(err, 'TokenNotFound'))
  );
}
