import { StoreError } from '../store/store.js';
import { checkTokenName } from './account-name.js';
import { newApiToken } from './api-token.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';
import { checkUserRole, isAdmin, roleWithin, type UserRole } from './roles.js';
import { secretHash } from './secret-token.js';

/** The longest life a token may be given. */
export const MAX_TOKEN_DAYS = 3650;

export interface CreateTokenInput {
  /** A label for what uses it (`deploy-bot`); need not be unique. */
  name: string;
  role: UserRole;
  /** The user the token acts for: the caller's own user, or anyone's for an admin. */
  username: string;
  /** When it stops working (ISO 8601, in the future)… */
  expiresAt?: string;
  /** …or in how many days (1–3650). Neither: it works until revoked. */
  expiresInDays?: number;
  principal: Principal;
  /** The revision the caller saw (`If-Match`). */
  expectedRevision?: number;
}

export interface CreateTokenResult {
  /** The token text `ckt_<id>_<secret>`: returned once, never stored, never shown again. */
  token: string;
  id: string;
  name: string;
  role: UserRole;
  username: string;
  expiresAt: string | null;
  revision: number;
}

/**
 * Creates an API token as one change and returns its text once; the store keeps only the
 * SHA-256 of its secret. A token never reaches further than the one who creates it nor
 * the user it belongs to (`RoleTooHigh`: an operator cannot mint an admin token), and only
 * an admin creates tokens for another user (`Forbidden`). The user must exist
 * (`UserNotFound`, checked again inside the transaction).
 */
export async function createToken(
  ctx: ServiceContext,
  input: CreateTokenInput,
): Promise<CreateTokenResult> {
  const name = checkTokenName(input.name);
  const role = checkUserRole(input.role);
  const { principal, username } = input;
  if (principal.actor !== username && !isAdmin(principal)) {
    throw new ServiceError(
      'Forbidden',
      `Only an admin may create a token for another user ("${username}").`,
      { details: { needed: 'admin', role: principal.role } },
    );
  }
  const owner = await ctx.store.getUser(username);
  if (!owner) throw new StoreError('UserNotFound', `No user is named "${username}".`);
  for (const [whose, limit] of [
    ['yours', principal.role],
    [`that of its user "${username}"`, owner.role],
  ] as const) {
    if (!roleWithin(role, limit)) {
      throw new ServiceError(
        'RoleTooHigh',
        `A token's role cannot exceed ${whose}: ${role} is above ${limit}.`,
        { details: { requested: role, limit } },
      );
    }
  }
  const expiresAt = tokenExpiry(ctx, input);
  const token = newApiToken();
  const revision = await ctx.store.applyChange(
    changeBy(principal, {
      action: 'create-token',
      target: `token:${token.id}`,
      details: { id: token.id, name, role, username, expiresAt },
      // The owner's role as checked above: a demotion meanwhile must not leave a token above it.
      ...guards(input.expectedRevision, [{ type: 'userHasRole', username, role: owner.role }]),
      mutations: [
        {
          type: 'putToken',
          token: {
            id: token.id,
            name,
            role,
            username,
            // A secret of 256 random bits needs no slow hash: nothing can be guessed from
            // its SHA-256, and checking every API request with scrypt would cost 50 ms each.
            secretHash: secretHash(token.secret),
            expiresAt,
          },
        },
      ],
    }),
  );
  return { token: token.text, id: token.id, name, role, username, expiresAt, revision };
}

/** The token's expiry as ISO 8601, null for none, or `InvalidExpiry`. */
function tokenExpiry(ctx: ServiceContext, input: CreateTokenInput): string | null {
  const now = ctx.now().getTime();
  const invalid = (why: string) => new ServiceError('InvalidExpiry', why);
  if (input.expiresAt !== undefined && input.expiresInDays !== undefined) {
    throw invalid('Give expiresAt or expiresInDays, not both.');
  }
  if (input.expiresInDays !== undefined) {
    const days = input.expiresInDays;
    if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) {
      throw invalid(
        `expiresInDays must be a whole number from 1 to ${MAX_TOKEN_DAYS}, not ${JSON.stringify(days)}.`,
      );
    }
    return new Date(now + days * 86_400_000).toISOString();
  }
  if (input.expiresAt !== undefined) {
    const at = typeof input.expiresAt === 'string' ? Date.parse(input.expiresAt) : Number.NaN;
    if (Number.isNaN(at)) {
      throw invalid(`expiresAt must be an ISO 8601 time, not ${JSON.stringify(input.expiresAt)}.`);
    }
    if (at <= now) throw invalid(`expiresAt ${input.expiresAt} is not in the future.`);
    if (at > now + MAX_TOKEN_DAYS * 86_400_000) {
      throw invalid(`expiresAt ${input.expiresAt} is more than ${MAX_TOKEN_DAYS} days away.`);
    }
    return new Date(at).toISOString();
  }
  return null;
}
