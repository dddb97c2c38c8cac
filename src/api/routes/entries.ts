import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { deleteEntry } from '../../service/delete-entry.js';
import type { EntryKind } from '../../service/read-entries.js';
import { describeEntry, type EntryStatus, listEntries } from '../../service/read-entries.js';
import { authOf } from '../authenticate.js';
import { ifMatchRevision } from '../etag.js';
import { routeSchema } from '../route-schema.js';
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
  app.get<{ Querystring: { kind?: EntryKind; status?: EntryStatus; expiringWithinDays?: number } }>(
    '/api/v1/entries',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'listEntries',
        summary: 'List the keystore entries, described (never key material)',
        tags: ['entries'],
        errors: ['InvalidQuery'],
        querystring: Type.Object(
          {
            kind: Type.Optional(EntryKindSchema),
            status: Type.Optional(EntryStatusSchema),
            expiringWithinDays: Type.Optional(ExpiringWithin),
          },
          { additionalProperties: false },
        ),
        responses: { 200: Type.Array(EntryDescription, { description: 'The entries, by alias.' }) },
      }),
    },
    async (request) => listEntries(keystore, request.query),
  );

  app.get(
    '/api/v1/truststore',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'listTruststore',
        summary:
          'The trusted CA certificates of the keystore: anchors that complete and validate chains',
        description:
          "Import one with `PUT /api/v1/entries/{alias}` and a CA certificate without a key. Node's bundled roots are anchors too when the server is configured to use them.",
        tags: ['entries'],
        responses: { 200: Type.Array(EntryDescription, { description: 'The trusted entries.' }) },
      }),
    },
    async () => listEntries(keystore, { kind: 'trusted' }),
  );

  app.get<{ Params: { alias: string }; Querystring: { expiringWithinDays?: number } }>(
    '/api/v1/entries/:alias',
    {
      config: { privilege: 'entries:read' },
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
