import { StoreError } from '../store/store.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';
import { isAdmin } from './roles.js';

export interface RevokeTokenInput {
  id: string;
  principal: Principal;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

/**
 * Revokes an API token as one change: it stops working at once. An unknown id is
 * `TokenNotFound` (also when it was revoked meanwhile, decided inside the transaction).
 * Users revoke their own tokens, a token itself (`token:<id>`), an admin anyone's;
 * anything else is `Forbidden`.
 */
export async function revokeToken(
  ctx: ServiceContext,
  input: RevokeTokenInput,
): Promise<{ revision: number }> {
  const token = await ctx.store.getToken(input.id);
  if (!token) throw new StoreError('TokenNotFound', `No API token has the id "${input.id}".`);
  const { principal } = input;
  const own = principal.actor === token.username || principal.actor === `token:${token.id}`;
  if (!own && !isAdmin(principal)) {
    throw new ServiceError(
      'Forbidden',
      `Only an admin may revoke another user's token ("${token.id}" of "${token.username}").`,
      { details: { needed: 'admin', role: principal.role } },
    );
  }
  const revision = await ctx.store.applyChange(
    changeBy(principal, {
      action: 'revoke-token',
      target: `token:${token.id}`,
      details: { id: token.id, name: token.name, username: token.username },
      ...guards(input.expectedRevision, []),
      mutations: [{ type: 'deleteToken', id: token.id }],
    }),
  );
  return { revision };
}
