import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServiceContext } from '../../service/context.js';
import { importEntry } from '../../service/import-entry.js';
import { preflightImport } from '../../service/preflight-import.js';
import { describeEntry, entryExists } from '../../service/read-entries.js';
import { requireServed, SERVED_TIMEOUT_MS } from '../../service/served-status.js';
import { authOf } from '../authenticate.js';
import { ifMatchRevision } from '../etag.js';
import type { ErrorCode } from '../problem.js';
import { routeSchema } from '../route-schema.js';
import {
  Alias,
  EntryDescription,
  ImportDescription,
  UploadForm,
  ValidationProblem,
} from '../schemas.js';
import { readRequestUpload, UPLOAD_ERRORS, UploadBody } from '../upload.js';

/** What an import (or its preflight) can answer: reading and validating, and its own rules. */
export const IMPORT_ERRORS: ErrorCode[] = [
  ...UPLOAD_ERRORS,
  'NoPrivateKey',
  'TooManyKeys',
  'KeyAliasRequired',
  'KeyAliasNotFound',
  'AliasInUse',
  'AliasNotFound',
  'ActivationRefused',
];

/** Import or replace an entry from any upload; say what an upload would do. */
export async function importRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; bodyLimit: number },
): Promise<void> {
  const { keystore, bodyLimit } = options;

  app.put<{ Params: { alias: string } }>(
    '/api/v1/entries/:alias',
    {
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'putEntry',
        summary: 'Import an entry, or replace it (a renewal swaps what it serves)',
        description:
          'JSON (`certificate`, `privateKey`, `chain`, `pkcs12`/`der` in base64, `password`) or multipart (`file` parts in any order and format, and `password`). The chain is assembled and validated; a refusal changes nothing. `If-None-Match: *` only creates; `If-Match` with the ETag only replaces that revision (412 otherwise).',
        tags: ['entries'],
        write: true,
        errors: IMPORT_ERRORS,
        params: Type.Object({ alias: Alias }),
        body: UploadBody,
        multipart: UploadForm,
        headers: Type.Object({
          'if-match': Type.Optional(Type.String()),
          'if-none-match': Type.Optional(Type.String()),
        }),
        responses: {
          200: Type.Object(
            {
              entry: EntryDescription,
              warnings: Type.Array(ValidationProblem),
              revision: Type.Integer(),
            },
            { description: 'Replaced.' },
          ),
          201: Type.Object(
            {
              entry: EntryDescription,
              warnings: Type.Array(ValidationProblem),
              revision: Type.Integer(),
            },
            { description: 'Created.' },
          ),
        },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      const { alias } = request.params;
      // A bad If-Match is refused before the upload (up to 1 MiB) is read.
      const entryRevision = ifMatchRevision(request.headers['if-match']);
      const upload = await readRequestUpload(request, bodyLimit);
      const createOnly = request.headers['if-none-match']?.trim() === '*';
      const exists = await entryExists(keystore, alias);
      // If-Match (a tag or `*`) asks for a replacement; If-None-Match: * for a creation;
      // neither: whichever the alias needs. The service checks again inside the change.
      const replace = !createOnly && (request.headers['if-match'] !== undefined || exists);
      const result = await importEntry(keystore, {
        alias,
        files: upload.files,
        password: upload.password,
        replace,
        keyAlias: upload.fields.keyAlias,
        principal: auth.principal,
        ...(entryRevision === undefined ? {} : { entryRevision }),
      });
      const entry = await describeEntry(keystore, alias);
      // A bound entry's new certificate is served by the running servers: answer once it is.
      if (entry.bindings.length > 0) {
        await requireServed(keystore, result.revision, { timeoutMs: SERVED_TIMEOUT_MS });
      }
      reply.header('ETag', `"${entry.revision}"`);
      return reply
        .code(replace ? 200 : 201)
        .send({ entry, warnings: result.warnings, revision: result.revision });
    },
  );

  app.post(
    '/api/v1/preflight',
    {
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'preflightImport',
        summary: 'Say what importing an upload would do, and change nothing',
        description:
          'The same inputs as `PUT /api/v1/entries/{alias}` (and `alias`, to plan a replacement): the entry as it would be described, its chain, the warnings and the host names covered. A refusal answers the code the import would.',
        tags: ['entries'],
        write: true,
        errors: IMPORT_ERRORS,
        body: UploadBody,
        multipart: UploadForm,
        responses: { 200: ImportDescription },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      const upload = await readRequestUpload(request, bodyLimit);
      const alias = upload.fields.alias ?? 'preflight';
      const exists = await entryExists(keystore, alias);
      return preflightImport(keystore, {
        alias,
        files: upload.files,
        password: upload.password,
        replace: exists,
        keyAlias: upload.fields.keyAlias,
        principal: auth.principal,
      });
    },
  );
}
