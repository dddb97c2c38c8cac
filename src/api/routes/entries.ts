import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { deleteEntry } from '../../service/delete-entry.js';
import {
  DEFAULT_PAGE_SIZE,
  describeEntry,
  type EntryDescription as EntryDescriptionOf,
  type EntryPage,
  type EntryPageInput,
  listEntryPage,
  MAX_PAGE_SIZE,
} from '../../service/read-entries.js';
import { authOf } from '../authenticate.js';
import { ifMatchRevision } from '../etag.js';
import { checkQuery, routeSchema } from '../route-schema.js';
import {
  Alias,
  EntryDescription,
  EntryKind as EntryKindSchema,
  EntryStatus as EntryStatusSchema,
} from '../schemas.js';

const AliasParams = Type.Object({ alias: Alias });

const ExpiringWithin = Type.Integer({
  minimum: 1,
  maximum: 3650,
  description: 'An entry is `expiring` when it ends within this many days (default 30).',
});

const PageQuery = {
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_PAGE_SIZE,
      default: DEFAULT_PAGE_SIZE,
      description: 'At most this many entries.',
    }),
  ),
  after: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      description:
        'Start after this alias (it need not exist): the `Link` header\'s `rel="next"` sets it.',
    }),
  ),
};

const PAGING =
  'Entries come by alias, at most `limit` (default 100) to a page; filters apply before paging, so a page holds `limit` entries unless it is the last. When more follow, the `Link` header (RFC 8288) gives the next page: `</api/v1/entries?limit=100&after=web>; rel="next"`, a relative URL with the same filters. The last page has no `Link` header.';

/** A page: the entries, and the `Link` to the next page when more follow. */
function pageOf(description: string) {
  return {
    ...Type.Array(EntryDescription, { description }),
    headers: {
      Link: Type.String({
        description:
          'RFC 8288: `<next page>; rel="next"`, a URL relative to this server, the same query with `after` the last alias of this page. Absent on the last page.',
      }),
    },
  };
}

/**
 * Replies with the page's entries and, when more follow, the `Link` to the next page: at
 * `path` (the route's, under the prefix the API is mounted at), with the same filters.
 */
function sendPage(
  path: string,
  request: FastifyRequest<{ Querystring: EntryPageInput }>,
  reply: FastifyReply,
  page: EntryPage,
): EntryDescriptionOf[] {
  if (page.next !== null) {
    const { kind, status, expiringWithinDays, limit } = request.query;
    const query = new URLSearchParams();
    if (kind !== undefined) query.set('kind', kind);
    if (status !== undefined) query.set('status', status);
    if (expiringWithinDays !== undefined)
      query.set('expiringWithinDays', String(expiringWithinDays));
    if (limit !== undefined) query.set('limit', String(limit));
    query.set('after', page.next);
    reply.header('Link', `<${path}?${query}>; rel="next"`);
  }
  return page.entries;
}

/** The entry's ETag: the revision that last changed it. */
function setEntryTag(reply: FastifyReply, revision: number): void {
  reply.header('ETag', `"${revision}"`);
}

/** Reading and deleting keystore entries (import and replace: `PUT`, built on import-entry). */
export async function entryRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext },
): Promise<void> {
  const { keystore } = options;
  app.get<{ Querystring: EntryPageInput }>(
    '/api/v1/entries',
    {
      config: { privilege: 'entries:read' },
      // A bad value of the query is the listing's `InvalidQuery`, not a generic `BadRequest`.
      attachValidation: true,
      schema: routeSchema({
        operationId: 'listEntries',
        summary: 'List the keystore entries, described (never key material), a page at a time',
        description: PAGING,
        tags: ['entries'],
        errors: ['InvalidQuery'],
        querystring: Type.Object(
          {
            kind: Type.Optional(EntryKindSchema),
            status: Type.Optional(EntryStatusSchema),
            expiringWithinDays: Type.Optional(ExpiringWithin),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        responses: {
          200: pageOf('The entries that match, by alias.'),
        },
      }),
    },
    async (request, reply) => {
      checkQuery(request);
      return sendPage(
        `${app.prefix}/api/v1/entries`,
        request,
        reply,
        await listEntryPage(keystore, request.query),
      );
    },
  );

  app.get<{ Querystring: Pick<EntryPageInput, 'limit' | 'after'> }>(
    '/api/v1/truststore',
    {
      config: { privilege: 'entries:read' },
      attachValidation: true,
      schema: routeSchema({
        operationId: 'listTruststore',
        summary:
          'The trusted CA certificates of the keystore: anchors that complete and validate chains',
        description: `Import one with \`PUT /api/v1/entries/{alias}\` and a CA certificate without a key. Node's bundled roots are anchors too when the server is configured to use them.\n\n${PAGING}`,
        tags: ['entries'],
        errors: ['InvalidQuery'],
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        responses: { 200: pageOf('The trusted entries, by alias.') },
      }),
    },
    async (request, reply) => {
      checkQuery(request);
      const page = await listEntryPage(keystore, { ...request.query, kind: 'trusted' });
      return sendPage(`${app.prefix}/api/v1/truststore`, request, reply, page);
    },
  );

  app.get<{ Params: { alias: string }; Querystring: { expiringWithinDays?: number } }>(
    '/api/v1/entries/:alias',
    {
      config: { privilege: 'entries:read' },
      attachValidation: true,
      schema: routeSchema({
        operationId: 'getEntry',
        summary: 'Describe one entry: certificate, chain, CSR, bindings, status; its ETag',
        tags: ['entries'],
        errors: ['AliasNotFound', 'InvalidQuery'],
        params: AliasParams,
        querystring: Type.Object(
          { expiringWithinDays: Type.Optional(ExpiringWithin) },
          { additionalProperties: false },
        ),
        responses: { 200: EntryDescription },
      }),
    },
    async (request, reply) => {
      checkQuery(request);
      const entry = await describeEntry(keystore, request.params.alias, request.query);
      setEntryTag(reply, entry.revision);
      return entry;
    },
  );

  app.delete<{ Params: { alias: string } }>(
    '/api/v1/entries/:alias',
    {
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'deleteEntry',
        summary: 'Delete an entry (not while it is bound); If-Match with its ETag guards it',
        tags: ['entries'],
        write: true,
        errors: ['AliasNotFound', 'AliasInUse', 'InvalidAlias', 'RevisionConflict'],
        params: AliasParams,
        headers: Type.Object({
          'if-match': Type.Optional(
            Type.String({ description: 'The entry\'s ETag, e.g. `"12"`.' }),
          ),
        }),
        responses: {
          200: Type.Object(
            { revision: Type.Integer() },
            { description: 'Deleted at this revision.' },
          ),
        },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      const entryRevision = ifMatchRevision(request.headers['if-match']);
      return deleteEntry(keystore, {
        alias: request.params.alias,
        principal: auth.principal,
        ...(entryRevision === undefined ? {} : { entryRevision }),
      });
    },
  );
}
