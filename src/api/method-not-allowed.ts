import type { FastifyInstance, HTTPMethods } from 'fastify';
import { ApiError } from './api-error.js';

/** The methods the API answers at all; any other known method gets 405 on an existing path. */
const METHODS: readonly HTTPMethods[] = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
];

/**
 * Starts recording the methods of each path `only` matches (paths below `app`'s prefix,
 * without it); call before any route is registered.
 */
export function recordRoutes(app: FastifyInstance, only: RegExp): () => void {
  const methodsByUrl = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(app.prefix)) return;
    // Recorded without the prefix: `app.route` below adds it again.
    const url = route.url.slice(app.prefix.length);
    if (!only.test(url)) return;
    const methods = methodsByUrl.get(url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    methodsByUrl.set(url, methods);
  });
  /**
   * Registers, for every recorded path, a route for the methods it lacks: 405 with `Allow`
   * (RFC 9110 §15.5.6), and 204 with `Allow` for OPTIONS. Call after every route.
   */
  return () => {
    for (const [url, methods] of [...methodsByUrl]) {
      if (methods.has('GET')) methods.add('HEAD');
      const allow = METHODS.filter((m) => methods.has(m) || m === 'OPTIONS').join(', ');
      const missing = METHODS.filter((m) => !methods.has(m));
      if (missing.length === 0) continue;
      app.route({
        method: missing,
        url,
        schema: { hide: true },
        config: { public: true },
        handler: async (request, reply) => {
          reply.header('Allow', allow);
          if (request.method === 'OPTIONS') return reply.code(204).send();
          throw new ApiError(
            'MethodNotAllowed',
            `${request.method} is not allowed on ${app.prefix}${url}; it answers ${allow}.`,
          );
        },
      });
    }
  };
}
