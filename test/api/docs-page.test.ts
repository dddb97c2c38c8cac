/**
 * The interactive API docs (Swagger UI at /api/docs/) in a real headless Chromium, under the
 * API's Content-Security-Policy: the page runs without a violation or an error, and a user
 * tries calls from it, logged in by the session cookie or authorized with a bearer token.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { certkeeperApi } from '../../src/api/plugin.js';
import { PAGE_POLICY } from '../../src/api/security-headers.js';
import { createUser } from '../../src/service/create-user.js';
import { PASSWORD, startApi, type TestApi } from '../support/api.js';
import { launchBrowser, needsChromium } from '../support/browser.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { type TestKeystore, testKeystore } from '../support/service.js';

/** An open docs page in its own browser context (its own cookies). */
interface DocsPage {
  context: BrowserContext;
  page: Page;
  /** What the page reported since the last call: console errors, uncaught errors, CSP violations. */
  reported(): Promise<string[]>;
}

/** What the page shows after Execute, and the request it sent. */
interface Tried {
  status: string;
  body: string;
  request: Request;
}

/** The API as an application's plugin under /certkeeper, as an embedding serves it. */
interface PrefixedApi {
  app: FastifyInstance;
  keystore: TestKeystore;
  origin: string;
  ca: string;
}

async function startPrefixedApi(): Promise<PrefixedApi> {
  const keystore = await testKeystore();
  const pki = await makeHierarchy({ ips: ['127.0.0.1'], hosts: ['localhost'] });
  const app = Fastify({
    serverFactory: ((handler: never) =>
      createServer(
        { key: pki.leaf.keyPem, cert: pki.leaf.certPem + pki.intermediate.certPem },
        handler,
      )) as never,
  });
  await app.register(certkeeperApi, {
    prefix: '/certkeeper',
    keystore: keystore.ctx,
    tlsStatus: () => undefined,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { app, keystore, origin: `https://127.0.0.1:${port}`, ca: pki.root.certPem };
}

/** Runs in each document before its scripts: keeps the CSP violations it reports. */
const RECORD_CSP_VIOLATIONS = `
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.cspViolations.push(
      e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' in ' + e.sourceFile,
    );
  });`;

/** The console error Chromium logs for every fetch answered with an error status. */
function failedLoad(status: string, url: string): string {
  return `console: Failed to load resource: the server responded with a status of ${status} @ ${url}`;
}

describe('the API docs page in Chromium', { skip: needsChromium() }, () => {
  let api: TestApi;
  let prefixed: PrefixedApi;
  let browser: Browser;
  /** A visitor who never logs in. */
  let anonymous: DocsPage;
  before(async () => {
    [api, prefixed] = await Promise.all([startApi(), startPrefixedApi()]);
    await createUser(api.keystore.ctx, {
      username: 'ops',
      role: 'operator',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    browser = await launchBrowser(api, prefixed);
    anonymous = await openDocs(`${api.origin}/api/docs/`);
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await prefixed?.app.close();
    await prefixed?.keystore.cleanup();
  });

  /** Opens the docs in a fresh context (no cookie) and waits for the operations to render. */
  async function openDocs(url: string): Promise<DocsPage> {
    const context = await browser.newContext();
    const problems: string[] = [];
    // Kept in the page, read when a test checks: a console message may come too late.
    await context.addInitScript({ content: RECORD_CSP_VIOLATIONS });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') {
        problems.push(`console: ${message.text()} @ ${message.location().url}`);
      }
    });
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    // Fail in seconds, not Playwright's 30, when a selector never shows.
    context.setDefaultTimeout(10_000);
    const answer = await page.goto(url);
    assert.equal(answer?.status(), 200);
    assert.equal(answer?.headers()['content-security-policy'], PAGE_POLICY);
    const reported = async () => {
      // A task later, every violation so far has fired its event.
      const csp = await page.evaluate<string[]>(
        'new Promise((resolve) => setTimeout(() => resolve(window.cspViolations.splice(0))))',
      );
      return [...problems.splice(0), ...csp.map((v) => `CSP violation: ${v}`)];
    };
    await page
      .locator('#operations-entries-listEntries')
      .waitFor()
      .catch(async (err: Error) => {
        throw new Error(`${err.message}\nThe page reported:\n${(await reported()).join('\n')}`);
      });
    return { context, page, reported };
  }

  /** Expands an operation (`tag-operationId`), Try it out, Execute: what the page shows. */
  async function tryOut(page: Page, operation: string, body?: unknown): Promise<Tried> {
    const block = page.locator(`#operations-${operation}`);
    await block.locator('.opblock-summary-control').click();
    await block.locator('button.try-out__btn').click();
    if (body !== undefined) {
      await block.locator('textarea.body-param__text').fill(JSON.stringify(body));
    }
    const [request] = await Promise.all([
      page.waitForRequest((r) => /\/api\/v1\//.test(new URL(r.url()).pathname)),
      block.locator('button.execute').click(),
    ]);
    const response = block.locator('.live-responses-table .response');
    await response.waitFor();
    return {
      status: (await response.locator('.response-col_status').textContent()) ?? '',
      body: (await response.locator('.response-col_description pre').first().textContent()) ?? '',
      request,
    };
  }

  it('runs under the CSP with no violation or error, lists the operations and says how to log in', async () => {
    const { page, reported } = anonymous;
    for (const operation of ['auth-login', 'entries-listEntries', 'csrs-createCsr']) {
      assert.ok(await page.locator(`#operations-${operation}`).isVisible(), operation);
    }
    const info = (await page.locator('.information-container').textContent()) ?? '';
    assert.match(info, /log in with POST \/api\/v1\/auth\/session/i);
    // Regression: Markdown took a sentence's placeholders for HTML tags and dropped them.
    assert.match(info, /InvalidBinding: The binding is not "server" or "sni:<host>"\./);
    // Regression: nothing inline may run, not even a style (Swagger UI's top bar had one).
    assert.doesNotMatch(PAGE_POLICY, /'unsafe-inline'|'unsafe-eval'/);
    assert.deepEqual(await reported(), []);
  });

  it('shows 401 Unauthenticated for GET /api/v1/entries before anyone logs in', async () => {
    const { page, reported } = anonymous;
    const tried = await tryOut(page, 'entries-listEntries');
    assert.equal(tried.status, '401');
    assert.match(tried.body, /"code": "Unauthenticated"/);
    assert.deepEqual(await reported(), [
      // The page sends the documented default page size.
      failedLoad('401 (Unauthorized)', `${api.origin}/api/v1/entries?limit=100`),
    ]);
  });

  let apiToken = '';

  it('logs in from the page, then reads and writes with the session cookie', async () => {
    const { context, page, reported } = await openDocs(`${api.origin}/api/docs/`);
    try {
      const login = await tryOut(page, 'auth-login', { username: 'ops', password: PASSWORD });
      assert.equal(login.status, '201');
      assert.match(login.body, /"user": "ops"/);
      const [cookie] = await context.cookies();
      assert.deepEqual(
        { name: cookie?.name, httpOnly: cookie?.httpOnly, secure: cookie?.secure },
        { name: 'session_id', httpOnly: true, secure: true },
      );

      // A write authenticated by the cookie passes the CSRF check by its Origin alone.
      const csr = await tryOut(page, 'csrs-createCsr', {
        alias: 'from-docs',
        subject: { CN: 'docs.example' },
        sans: ['DNS:docs.example'],
        keyType: 'ec-p256',
      });
      assert.equal(csr.status, '201');
      const documented400 = page.locator('#operations-csrs-createCsr tr[data-code="400"]');
      assert.match(
        (await documented400.textContent()) ?? '',
        /InvalidSubjectAltName: A subject alternative name is not "DNS:<name>" or "IP:<address>"\./,
      );
      assert.match(csr.body, /-----BEGIN CERTIFICATE REQUEST-----/);
      const headers = await csr.request.allHeaders();
      assert.equal(headers.origin, api.origin);
      assert.match(headers.cookie ?? '', /session_id=cks_/);
      assert.equal(headers.authorization, undefined);
      assert.equal(headers['x-certkeeper-csrf'], undefined);

      const token = await tryOut(page, 'auth-createToken', { name: 'from-docs', role: 'auditor' });
      assert.equal(token.status, '201');
      apiToken = /"token": "(ckt_[^"]+)"/.exec(token.body)?.[1] ?? '';
      assert.ok(apiToken, 'the page shows the new token once');

      const list = await tryOut(page, 'entries-listEntries');
      assert.equal(list.status, '200');
      assert.match(list.body, /"alias": "from-docs"/);
      assert.deepEqual(await reported(), []);
    } finally {
      await context.close();
    }
  });

  it('authorizes with a bearer token in the Authorize dialog', async () => {
    assert.ok(apiToken, 'the previous test made a token');
    const { page, reported } = anonymous;
    await page.locator('.scheme-container button.authorize').click();
    // A browser cannot set a Cookie header: the dialog says the session needs no input.
    assert.match((await page.locator('.modal-ux').textContent()) ?? '', /nothing to enter here/);
    const bearer = page
      .locator('.modal-ux .auth-container')
      .filter({ has: page.locator('[aria-label="auth-bearer-value"]') });
    await bearer.locator('[aria-label="auth-bearer-value"]').fill(apiToken);
    await bearer.locator('button.authorize').click();
    await page.locator('.modal-ux button.btn-done').first().click();

    const session = await tryOut(page, 'auth-getSession');
    assert.equal(session.status, '200');
    assert.match(session.body, /"via": "token"/);
    assert.match(session.body, /"role": "auditor"/);
    const headers = await session.request.allHeaders();
    assert.equal(headers.authorization, `Bearer ${apiToken}`);
    assert.equal(headers.cookie, undefined);
    assert.deepEqual(await reported(), []);
  });

  it('works under a prefix, also at its address without the trailing slash', async () => {
    const { context, page, reported } = await openDocs(`${prefixed.origin}/certkeeper/api/docs`);
    try {
      const tried = await tryOut(page, 'entries-listEntries');
      assert.equal(new URL(tried.request.url()).pathname, '/certkeeper/api/v1/entries');
      assert.equal(tried.status, '401');
      assert.match(tried.body, /"code": "Unauthenticated"/);
      assert.deepEqual(await reported(), [
        failedLoad('401 (Unauthorized)', `${prefixed.origin}/certkeeper/api/v1/entries?limit=100`),
      ]);
    } finally {
      await context.close();
    }
  });
});
