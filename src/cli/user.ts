import { resolve } from 'node:path';
import { changePassword } from '../service/change-password.js';
import { changeRole } from '../service/change-role.js';
import { createUser } from '../service/create-user.js';
import { type Keystore, openKeystore } from '../service/keystore.js';
import { listUsers } from '../service/list-users.js';
import { CLI_PRINCIPAL } from '../service/principal.js';
import { removeUser } from '../service/remove-user.js';
import type { UserRole } from '../service/roles.js';
import { oneTimePassword } from '../service/secret-token.js';
import { parseCommandArgs, passwordFrom } from './args.js';
import { type Io, UsageError } from './io.js';

const HELP = `Usage: certkeeper user <add|passwd|role|remove|list> [options]

Manages the users of a data directory's store (who may log in to the API and web UI).

  user add NAME --role ROLE [--password-file F]
                       create a user with the role admin, operator or auditor; without
                       --password-file a one-time password is printed once, and the
                       user must change it at the first login
  user passwd NAME [--password-file F] [--must-change]
                       set a user's password and end their sessions; without
                       --password-file a one-time password is printed once (and must
                       be changed at the next login)
  user role NAME ROLE  change a user's role to admin, operator or auditor, keeping their
                       password and history; their API tokens above the new role are
                       revoked and their sessions end (never demotes the last admin)
  user remove NAME     remove a user with their API tokens and sessions (never the last admin)
  user list [--json]   list the users (never their passwords)

Options:
  --password-file F    read the password from the first line of F (never on the
                       command line, where other users of the machine can see it)
  --data-dir DIR       the data directory (default ./data, env CERTKEEPER_DATA_DIR)`;

/** `certkeeper user …`: manage users directly on a data directory. */
export async function runUser(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    role: { type: 'string' },
    'password-file': { type: 'string' },
    'must-change': { type: 'boolean' },
    json: { type: 'boolean' },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const [action, name, ...rest] = positionals;
  if (values.help || action === undefined) {
    io.stdout.write(`${HELP}\n`);
    return action === undefined && !values.help ? 2 : 0;
  }
  // `user role NAME ROLE` takes the role as its third word; no other command takes one.
  const [newRole, ...extra] = action === 'role' ? rest : [undefined, ...rest];
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const needName = () => {
    if (!name) throw new UsageError(`user ${action} needs a NAME`);
    return name;
  };
  const open = () =>
    openKeystore(resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data'), env);
  const password = () =>
    values['password-file'] === undefined
      ? Promise.resolve(undefined)
      : passwordFrom({ 'password-file': values['password-file'] });

  switch (action) {
    case 'add': {
      const username = needName();
      if (values.role === undefined) throw new UsageError('user add needs --role ROLE');
      const given = await password();
      return withKeystore(open, async (keystore) => {
        const r = await createUser(keystore, {
          username,
          role: values.role as UserRole,
          ...(given === undefined ? {} : { password: given }),
          principal: CLI_PRINCIPAL,
        });
        io.stdout.write(`Created user "${r.username}" (${r.role}) at revision ${r.revision}\n`);
        if (r.oneTimePassword !== undefined) showOnce(io, r.username, r.oneTimePassword);
        return 0;
      });
    }
    case 'passwd': {
      const username = needName();
      const given = await password();
      const newPassword = given ?? oneTimePassword();
      return withKeystore(open, async (keystore) => {
        const r = await changePassword(keystore, {
          username,
          newPassword,
          mustChangePassword: given === undefined || values['must-change'] === true,
          principal: CLI_PRINCIPAL,
        });
        io.stdout.write(
          `Set the password of "${username}" at revision ${r.revision}; ${r.sessionsEnded} session${r.sessionsEnded === 1 ? '' : 's'} ended\n`,
        );
        if (given === undefined) showOnce(io, username, newPassword);
        return 0;
      });
    }
    case 'role': {
      const username = needName();
      if (newRole === undefined) throw new UsageError('user role needs NAME ROLE');
      return withKeystore(open, async (keystore) => {
        const r = await changeRole(keystore, {
          username,
          role: newRole as UserRole,
          principal: CLI_PRINCIPAL,
        });
        if (!r.changed) {
          io.stdout.write(`"${username}" is ${r.role} already; nothing changed\n`);
          return 0;
        }
        const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
        io.stdout.write(
          `Changed the role of "${username}" from ${r.previousRole} to ${r.role} at revision ${r.revision}; ${plural(r.tokensRevoked, 'API token')} revoked, ${plural(r.sessionsEnded, 'session')} ended\n`,
        );
        return 0;
      });
    }
    case 'remove': {
      const username = needName();
      return withKeystore(open, async (keystore) => {
        const r = await removeUser(keystore, { username, principal: CLI_PRINCIPAL });
        io.stdout.write(
          `Removed user "${username}" at revision ${r.revision}${r.tokensRevoked > 0 ? `, and revoked ${r.tokensRevoked} API token${r.tokensRevoked === 1 ? '' : 's'}` : ''}\n`,
        );
        return 0;
      });
    }
    case 'list': {
      if (name !== undefined) throw new UsageError(`unexpected argument "${name}"`);
      return withKeystore(open, async (keystore) => {
        const users = await listUsers(keystore);
        if (values.json) {
          io.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
          return 0;
        }
        const rows = [
          ['USER', 'ROLE', 'MUST CHANGE PASSWORD', 'CREATED'],
          ...users.map((u) => [
            u.username,
            u.role,
            u.mustChangePassword ? 'yes' : 'no',
            u.createdAt,
          ]),
        ];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const row of rows) {
          io.stdout.write(
            `${row
              .map((c, i) => c.padEnd(widths[i]!))
              .join('  ')
              .trimEnd()}\n`,
          );
        }
        return 0;
      });
    }
    default:
      throw new UsageError(`unknown user command "${action}" (add, passwd, role, remove, list)`);
  }
}

async function withKeystore(
  open: () => Promise<Keystore>,
  fn: (keystore: Keystore) => Promise<number>,
): Promise<number> {
  const keystore = await open();
  try {
    return await fn(keystore);
  } finally {
    await keystore.close();
  }
}

/** Prints a generated password once, on stdout only; it is stored only as a hash. */
function showOnce(io: Io, username: string, password: string): void {
  io.stdout.write(
    `One-time password for "${username}" (shown only now; it must be changed at the first login):\n${password}\n`,
  );
}
