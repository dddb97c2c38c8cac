import type { ServiceContext } from './context.js';
import type { UserRole } from './roles.js';

/** An API token as every front end shows it: never its secret nor the secret's hash. */
export interface TokenSummary {
  id: string;
  name: string;
  role: UserRole;
  username: string;
  expiresAt: string | null;
  /** Past its expiry at `ctx.now()` (it no longer authenticates; revoke it to tidy up). */
  expired: boolean;
  createdRevision: number;
  createdAt: string;
}

export interface ListTokensInput {
  /** Only the tokens of this user (what a front end shows a user who is not an admin). */
  username?: string;
}

/** The API tokens, oldest first, optionally of one user only. */
export async function listTokens(
  ctx: ServiceContext,
  input: ListTokensInput = {},
): Promise<TokenSummary[]> {
  const now = ctx.now().getTime();
  return (await ctx.store.listTokens())
    .filter((t) => input.username === undefined || t.username === input.username)
    .map((t) => ({
      id: t.id,
      name: t.name,
      role: t.role,
      username: t.username,
      expiresAt: t.expiresAt,
      expired: t.expiresAt !== null && Date.parse(t.expiresAt) <= now,
      createdRevision: t.createdRevision,
      createdAt: t.createdAt,
    }));
}
