import type { FastifyInstance, FastifyReply } from 'fastify';
import { STRICT_TRANSPORT_SECURITY } from '../runtime/tls-runtime.js';

/** Headers every answer carries, whatever produced it (a route, a problem, the parser). */
export const COMMON_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Strict-Transport-Security': STRICT_TRANSPORT_SECURITY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

/** Data answers (JSON, PEM, the parser's problems): nothing in them may run, load or be framed. */
export const DATA_POLICY =
  "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Pages (the API docs): their own scripts, styles and images only, nothing inline. Swagger
 * UI loads its script files and styles its elements through the DOM, which the policy
 * allows; a real browser proves the page runs under it (test/api/docs-page.test.ts).
 */
export const PAGE_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; " +
  "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; " +
  "form-action 'self'; object-src 'none'";

/** Adds the security headers to every reply: one policy for pages, a stricter one for data. */
export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    setSecurityHeaders(reply);
    return payload;
  });
}

/**
 * Sets the security headers on `reply`, by its content type; the hook above does it for
 * routes, and what answers before any route (the router's errors) calls it itself.
 */
export function setSecurityHeaders(reply: FastifyReply): void {
  reply.headers(COMMON_SECURITY_HEADERS);
  const type = String(reply.getHeader('content-type') ?? '');
  const page = /^(text\/html|text\/css|application\/javascript|text\/javascript)/.test(type);
  reply.header('Content-Security-Policy', page ? PAGE_POLICY : DATA_POLICY);
  // Answers that carry state (entries, sessions, tokens) must not be kept by a cache.
  if (!page && !reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
}
