import type { ServiceContext } from './context.js';
import type { UserRole } from './roles.js';

/** A user as every front end shows it: never the password hash. */
export interface UserSummary {
  username: string;
  role: UserRole;
  mustChangePassword: boolean;
  /** The revision of the change that last changed the user: its ETag. */
  revision: number;
  createdRevision: number;
  createdAt: string;
  updatedAt: string;
}

/** Every user, by name, without password hashes. */
export async function listUsers(ctx: ServiceContext): Promise<UserSummary[]> {
  return (await ctx.store.listUsers()).map((u) => ({
    username: u.username,
    role: u.role,
    mustChangePassword: u.mustChangePassword,
    revision: u.updatedRevision,
    createdRevision: u.createdRevision,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
  }));
}
