import type { FastifyInstance } from 'fastify';
import type { AuthPolicy } from '../service/auth-policy.js';
import type { ServiceContext } from '../service/context.js';
import { expireSessions, forgetOldLoginFailures } from '../service/expire-sessions.js';

/** How often the API deletes expired sessions and failed logins out of their window. */
const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;

/**
 * Keeps the session and login-failure tables small while the API runs: at start and
 * every `intervalMs`, deletes what no longer counts (an expired session is refused and an
 * old failure ignored anyway). A failure is logged and tried again at the next turn.
 */
export function registerHousekeeping(
  app: FastifyInstance,
  keystore: ServiceContext,
  policy: Partial<AuthPolicy> | undefined,
  intervalMs = HOUSEKEEPING_INTERVAL_MS,
): void {
  const sweep = async () => {
    try {
      const sessions = await expireSessions(keystore);
      const failures = await forgetOldLoginFailures(keystore, policy);
      if (sessions + failures > 0) {
        app.log.info({ sessions, failures }, 'Deleted expired sessions and old failed logins.');
      }
    } catch (err) {
      app.log.error(
        { code: (err as { code?: string }).code, reason: String(err) },
        'Could not delete expired sessions; the next turn tries again.',
      );
    }
  };
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await sweep();
    timer = setInterval(() => void sweep(), intervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}
