/**
 * A real browser for tests: Debian's headless Chromium driven by playwright-core, trusting
 * exactly the test server's certificate once the test's own root has vouched for it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:tls';
import { type Browser, chromium } from 'playwright-core';
import { REQUIRE_ALL } from './tools.js';

/** The Chromium binary: Debian's `chromium` package, or $CERTKEEPER_CHROMIUM. */
export const CHROMIUM = process.env.CERTKEEPER_CHROMIUM ?? '/usr/bin/chromium';

/**
 * A `skip` option for node:test, like `needs()`: false when Chromium is installed;
 * otherwise a loud reason, or, under CERTKEEPER_REQUIRE_ALL=1, a thrown error.
 */
export function needsChromium(): false | string {
  if (existsSync(CHROMIUM)) return false;
  const reason = `SKIPPED: needs Chromium at ${CHROMIUM}, which is missing (apt-get install chromium, or set CERTKEEPER_CHROMIUM)`;
  if (REQUIRE_ALL) throw new Error(`${reason} (CERTKEEPER_REQUIRE_ALL=1)`);
  console.warn(reason);
  return reason;
}

// Quiet and self-contained: no sandbox (CI runs as root), no GPU, no calls home.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches headless Chromium (a fresh profile each time) that trusts the HTTPS servers given:
 * each one's certificate must verify against its `ca` here first, and Chromium then accepts
 * those keys alone (`--ignore-certificate-errors-spki-list`), not every certificate error.
 */
export async function launchBrowser(
  ...servers: { origin: string; ca: string }[]
): Promise<Browser> {
  const pins = await Promise.all(servers.map(({ origin, ca }) => servedKeyPin(origin, ca)));
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, `--ignore-certificate-errors-spki-list=${pins.join(',')}`],
  });
}

/** The base64 SHA-256 of the SPKI of the certificate `origin` serves, verified against `ca`. */
function servedKeyPin(origin: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca }, () => {
      const spki = socket.getPeerX509Certificate()!.publicKey.export({
        type: 'spki',
        format: 'der',
      });
      socket.end();
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    socket.once('error', reject);
  });
}
