import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { SubjectFields } from '../../core/generate.js';
import { completeCsr } from '../../service/complete-csr.js';
import type { ServiceContext } from '../../service/context.js';
import { CSR_KEY_TYPES, type CsrKeyType, createCsr, getCsr } from '../../service/create-csr.js';
import { describeEntry } from '../../service/read-entries.js';
import { authOf } from '../authenticate.js';
import { routeSchema } from '../route-schema.js';
import {
  Alias,
  CsrDescription,
  EntryDescription,
  oneOf,
  UploadForm,
  ValidationProblem,
} from '../schemas.js';
import { readRequestUpload, UPLOAD_ERRORS, UploadBody } from '../upload.js';

const Field = (description: string) =>
  Type.Optional(Type.String({ minLength: 1, maxLength: 256, description }));

const CreateBody = Type.Object(
  {
    alias: Alias,
    subject: Type.Object(
      {
        CN: Field('Common name.'),
        O: Field('Organisation.'),
        OU: Field('Organisational unit.'),
        C: Type.Optional(
          Type.String({ pattern: '^[A-Za-z]{2}$', description: 'Two-letter country code.' }),
        ),
        ST: Field('State or province.'),
        L: Field('Locality.'),
        emailAddress: Field('E-mail address.'),
      },
      { additionalProperties: false },
    ),
    sans: Type.Array(
      Type.String({ maxLength: 260, description: '`DNS:example.com` or `IP:192.0.2.1`.' }),
      {
        maxItems: 100,
      },
    ),
    // Any string: the service answers a key type it does not know with InvalidKeyType.
    keyType: Type.String({ minLength: 1, maxLength: 64, description: `${oneOf(CSR_KEY_TYPES)}.` }),
  },
  { additionalProperties: false },
);

/** Pending CSRs: created with a key that never leaves the server, downloaded, completed. */
export async function csrRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; bodyLimit: number },
): Promise<void> {
  const { keystore, bodyLimit } = options;

  app.post<{
    Body: { alias: string; subject: SubjectFields; sans: string[]; keyType: string };
  }>(
    '/api/v1/csrs',
    {
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'createCsr',
        summary:
          'Generate a key and a CSR for it: a pending entry whose key never leaves the server',
        description:
          'The key is generated off the event loop. Any number of pending CSRs live side by side; making one never touches another.',
        tags: ['csrs'],
        write: true,
        errors: [
          'AliasInUse',
          'InvalidAlias',
          'InvalidKeyType',
          'InvalidSubjectAltName',
          'InvalidGenerationRequest',
          'InvalidHostname',
          'RevisionConflict',
        ],
        body: CreateBody,
        responses: {
          201: Type.Object(
            {
              alias: Type.String(),
              revision: Type.Integer(),
              csr: CsrDescription,
              pem: Type.String(),
            },
            { description: 'Created: the CSR, as PEM too.' },
          ),
        },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      const result = await createCsr(keystore, {
        ...request.body,
        keyType: request.body.keyType as CsrKeyType,
        principal: auth.principal,
      });
      return reply
        .code(201)
        .header('Location', `${app.prefix}/api/v1/csrs/${encodeURIComponent(result.alias)}`)
        .send({
          alias: result.alias,
          revision: result.revision,
          csr: result.csr,
          pem: result.csrPem,
        });
    },
  );

  app.get<{ Params: { alias: string } }>(
    '/api/v1/csrs/:alias',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'getCsr',
        summary: 'Download a pending CSR: PEM, or DER with Accept: application/pkcs10',
        tags: ['csrs'],
        errors: ['AliasNotFound', 'EntryNotUsable'],
        params: Type.Object({ alias: Alias }),
        responses: {
          200: {
            description: 'The CSR.',
            content: {
              'application/x-pem-file': { schema: { type: 'string' } },
              'application/pkcs10': { schema: { type: 'string', format: 'binary' } },
            },
          },
        },
      }),
    },
    async (request, reply) => {
      const csr = await getCsr(keystore, request.params.alias);
      // Two representations: DER only when the client names it, PEM otherwise.
      const der = /\bapplication\/pkcs10\b/.test(String(request.headers.accept ?? ''));
      reply.header(
        'Content-Disposition',
        `attachment; filename="${request.params.alias}.${der ? 'der' : 'csr'}"`,
      );
      return der
        ? reply.type('application/pkcs10').send(csr.der)
        : reply.type('application/x-pem-file').send(csr.pem);
    },
  );

  app.post<{ Params: { alias: string } }>(
    '/api/v1/csrs/:alias/certificate',
    {
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'completeCsr',
        summary: 'Complete a pending CSR with the issued certificate and its chain (any format)',
        description:
          "The certificate must be for the pending key (`KeyMismatch` otherwise); the chain is validated as an import's. Multipart `file` parts or JSON.",
        tags: ['csrs'],
        write: true,
        errors: [...UPLOAD_ERRORS, 'AliasNotFound', 'UnexpectedPrivateKey'],
        params: Type.Object({ alias: Alias }),
        body: UploadBody,
        multipart: UploadForm,
        responses: {
          200: Type.Object(
            {
              entry: EntryDescription,
              warnings: Type.Array(ValidationProblem),
              revision: Type.Integer(),
            },
            { description: 'Completed: the entry is a key pair now.' },
          ),
        },
      }),
    },
    async (request, reply) => {
      const auth = authOf(request);
      const upload = await readRequestUpload(request, bodyLimit);
      const result = await completeCsr(keystore, {
        alias: request.params.alias,
        files: upload.files,
        password: upload.password,
        principal: auth.principal,
      });
      const entry = await describeEntry(keystore, request.params.alias);
      reply.header('ETag', `"${entry.revision}"`);
      return { entry, warnings: result.warnings, revision: result.revision };
    },
  );
}
