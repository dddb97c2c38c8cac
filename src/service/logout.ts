import { checkSource } from './authentication.js';
import type { ServiceContext } from './context.js';
import { sessionIdHash } from './session-token.js';

export interface LogoutInput {
  /** The session token to end. */
  token: string;
  source: string;
}

/**
 * Ends a session; resolves whether there was one to end (an unknown or malformed token is
 * simply false: logging out twice is not an error). An ended session is audited
 * (`logout`, `done`).
 */
export async function logout(ctx: ServiceContext, input: LogoutInput): Promise<boolean> {
  const source = checkSource(input.source);
  const idHash = sessionIdHash(input.token);
  if (idHash === undefined) return false;
  const session = await ctx.store.getSession(idHash);
  if (!session || !(await ctx.store.deleteSession(idHash))) return false;
  await ctx.store.appendAudit({
    actor: session.username,
    source,
    action: 'logout',
    target: `user:${session.username}`,
    outcome: 'done',
  });
  return true;
}
