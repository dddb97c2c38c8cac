import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { applyChanges, type ChangeOperation, MAX_OPERATIONS } from '../../service/apply-changes.js';
import type { ServiceContext } from '../../service/context.js';
import { requireServed, SERVED_TIMEOUT_MS } from '../../service/served-status.js';
import { ApiError } from '../api-error.js';
import { authOf } from '../authenticate.js';
import { ifMatchRevision } from '../etag.js';
import { routeSchema } from '../route-schema.js';
import { Alias, NODE_OUTCOME, nodeOutcome } from '../schemas.js';
import { type JsonUpload, readJsonUpload, UploadBody } from '../upload.js';
import { IMPORT_ERRORS } from './imports.js';

/** The fields each operation takes besides `op` (one flat schema: see `Operation`). */
const FIELDS: Readonly<Record<ChangeOperation['op'], readonly string[]>> = {
  import: ['alias', 'replace', 'ifMatch', ...Object.keys(UploadBody.properties)],
  delete: ['alias', 'ifMatch'],
  bind: ['hostname', 'alias', 'ifMatch'],
  unbind: ['hostname'],
  activate: ['alias', 'confirmWithinSeconds', 'ifMatch'],
};

/** What each operation cannot do without. */
const REQUIRED: Readonly<Record<ChangeOperation['op'], readonly string[]>> = {
  import: ['alias'],
  delete: ['alias'],
  bind: ['hostname', 'alias'],
  unbind: ['hostname'],
  activate: ['alias'],
};

/**
 * One operation. A flat object rather than a union of one schema per `op`: Fastify's
 * validator strips unknown properties, and trying the branches of a union one after the
 * other would strip the fields of the branch that matches. The route checks which fields
 * each `op` takes.
 */
const Operation = Type.Object(
  {
    op: Type.Union(
      (Object.keys(FIELDS) as ChangeOperation['op'][]).map((op) => Type.Literal(op)),
      { description: 'What to do: `import`, `delete`, `bind`, `unbind`, `activate`.' },
    ),
    alias: Type.Optional(Alias),
    hostname: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        description: '`bind`, `unbind`: a host name, or a `*.` wildcard for one label (SNI).',
      }),
    ),
    replace: Type.Optional(
      Type.Boolean({ description: '`import`: replace the existing entry (a renewal).' }),
    ),
    confirmWithinSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 86_400,
        description: '`activate`: roll back by itself unless confirmed within this time.',
      }),
    ),
    ifMatch: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.String({ maxLength: 32 })], {
        description:
          '`import` (with `replace`), `delete`, `bind`, `activate`: the entry\'s ETag (`"12"`) or revision (12) as read; 412 `RevisionConflict` if it changed since.',
      }),
    ),
    ...Object.fromEntries(
      Object.entries(UploadBody.properties)
        .filter(([name]) => name !== 'alias')
        .map(([name, schema]) => [name, schema]),
    ),
  },
  { additionalProperties: false },
);

type OperationBody = { op: ChangeOperation['op'] } & JsonUpload & {
    hostname?: string;
    replace?: boolean;
    confirmWithinSeconds?: number;
    ifMatch?: number | string;
  };

/** Several writes as one change: all of them, at one revision, or none. */
export async function changeRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext },
): Promise<void> {
  const { keystore } = options;
  app.post<{ Body: { operations: OperationBody[] } }>(
    '/api/v1/changes',
    {
      // Each operation's own privilege is checked too: `server:manage` for bindings.
      config: { privilege: 'entries:write' },
      schema: routeSchema({
        operationId: 'applyChanges',
        summary: 'Import, delete, bind, unbind and activate as one change: all of it, or nothing',
        description: `Up to ${MAX_OPERATIONS} operations, applied in order as one change at one revision with one audit record; each sees what the ones before it did (import an entry, then bind it). Every operation needs its own privilege (\`entries:write\` for \`import\` and \`delete\`, \`server:manage\` for \`bind\`, \`unbind\` and \`activate\`). A refusal of any operation refuses the whole change, names the operation (\`Operation 2 (bind): …\`) and writes nothing. A change to what is served answers once the running servers serve it.`,
        tags: ['entries', 'server'],
        write: true,
        errors: [
          ...IMPORT_ERRORS,
          'InvalidChange',
          'BindingNotFound',
          'InvalidHostname',
          'InvalidBinding',
          'InvalidConfirmationWindow',
          'InvalidMutation',
          'PinnedBySource',
        ],
        body: Type.Object(
          {
            operations: Type.Array(Operation, { minItems: 1, maxItems: MAX_OPERATIONS }),
          },
          { additionalProperties: false },
        ),
        responses: {
          200: Type.Object(
            {
              revision: Type.Integer(),
              operations: Type.Array(
                Type.Object({ op: Type.String() }, { additionalProperties: true }),
                {
                  description: 'What each operation did, in order.',
                },
              ),
              nodes: Type.Array(Type.Object(NODE_OUTCOME), {
                description:
                  'When the change touched what is served: each running server, once it served it (`pending`: no report in 30 s).',
              }),
            },
            { description: 'Applied, as one change.' },
          ),
        },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      const operations = request.body.operations.map(toOperation);
      const result = await applyChanges(keystore, { operations, principal: auth.principal });
      const outcomes = result.changesServed
        ? await requireServed(keystore, result.revision, { timeoutMs: SERVED_TIMEOUT_MS })
        : [];
      return {
        revision: result.revision,
        operations: result.operations,
        nodes: outcomes.map(nodeOutcome),
      };
    },
  );
}

/** The service's operation for a body's; `BadRequest` for a field its `op` doesn't take. */
function toOperation(body: OperationBody, index: number): ChangeOperation {
  const given = Object.keys(body).filter((name) => name !== 'op');
  const foreign = given.find((name) => !FIELDS[body.op].includes(name));
  if (foreign) {
    throw new ApiError(
      'BadRequest',
      `Operation ${index} (${body.op}) takes no "${foreign}"; it takes ${FIELDS[body.op].join(', ')}.`,
    );
  }
  const missing = REQUIRED[body.op].find((name) => !given.includes(name));
  if (missing) {
    throw new ApiError('BadRequest', `Operation ${index} (${body.op}) needs "${missing}".`);
  }
  const entryRevision = revisionOf(body.ifMatch);
  const guard = entryRevision === undefined ? {} : { entryRevision };
  const alias = body.alias!;
  const hostname = body.hostname!;
  switch (body.op) {
    case 'import': {
      const upload = readJsonUpload(body);
      return {
        op: 'import',
        alias,
        files: upload.files,
        ...(upload.password === undefined ? {} : { password: upload.password }),
        // An ETag names an existing entry: it asks for a replacement, as `PUT` with If-Match.
        replace: body.replace ?? body.ifMatch !== undefined,
        ...guard,
      };
    }
    case 'delete':
      return { op: 'delete', alias, ...guard };
    case 'bind':
      return { op: 'bind', hostname, alias, ...guard };
    case 'unbind':
      return { op: 'unbind', hostname };
    case 'activate':
      return {
        op: 'activate',
        alias,
        ...(body.confirmWithinSeconds === undefined
          ? {}
          : { confirmWithinSeconds: body.confirmWithinSeconds }),
        ...guard,
      };
  }
}

/** The entry revision of an `ifMatch`: a revision, or an ETag as `If-Match` takes it. */
function revisionOf(ifMatch: number | string | undefined): number | undefined {
  if (typeof ifMatch === 'number') return ifMatch;
  if (typeof ifMatch === 'string' && /^\s*\d{1,15}\s*$/.test(ifMatch)) return Number(ifMatch);
  return ifMatchRevision(ifMatch);
}
