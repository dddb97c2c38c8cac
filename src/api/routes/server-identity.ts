import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ServedStatus } from '../../runtime/supervisor.js';
import { bindEntry, unbindEntry } from '../../service/bind-entry.js';
import type { ServiceContext } from '../../service/context.js';
import { keystoreRevision } from '../../service/local-ca-certificate.js';
import { requestReload } from '../../service/reload-sources.js';
import {
  type NodeSourceAttempt,
  type RevisionOutcome,
  reloadOf,
  requireServed,
  SERVED_TIMEOUT_MS,
} from '../../service/served-status.js';
import {
  confirmServer,
  pendingConfirmation,
  rollbackServer,
} from '../../service/server-identity.js';
import { authOf } from '../authenticate.js';
import type { ErrorCode } from '../problem.js';
import { routeSchema } from '../route-schema.js';
import { Alias, NODE_OUTCOME, nodeOutcome } from '../schemas.js';

const Applied = Type.Object(
  {
    revision: Type.Integer(),
    nodes: Type.Array(Type.Object(NODE_OUTCOME), {
      description: 'Each running server, once it served the change (`pending`: no report in 30 s).',
    }),
    confirmBefore: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { description: 'Applied: every running server serves it (or has not reported yet).' },
);

const BrokenSource = Type.Object({
  what: Type.String({ description: 'The source, e.g. `certificate file /etc/ssl/web.pem`.' }),
  code: Type.String(),
  message: Type.String(),
});

const Reloaded = Type.Object(
  {
    revision: Type.Integer(),
    nodes: Type.Array(
      Type.Object({
        ...NODE_OUTCOME,
        what: Type.Union([Type.String(), Type.Null()], {
          description: 'The source it serves after the reload (null: no report of this reload).',
        }),
        keptLastGood: Type.Union([BrokenSource, Type.Null()], {
          description:
            'A certificate file that served before and is broken now: the node did not take the reload and keeps serving the last good certificate it read from it.',
        }),
        passedOver: Type.Array(BrokenSource, {
          description: 'Sources of higher precedence that the lookup found broken and skipped.',
        }),
        error: Type.Union(
          [Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()],
          {
            description:
              'Why the node could not read its sources again (nothing changed there); null when it could.',
          },
        ),
      }),
    ),
  },
  {
    description:
      'What each running server made of the reload. Check `error`, `keptLastGood` and `passedOver`: a broken file is not an error of this request.',
  },
);

/** The answer of a reload: what each server read, and what it found broken. */
function reloaded(revision: number, at: string, outcomes: RevisionOutcome[]) {
  const broken = (a: NodeSourceAttempt) => ({
    what: a.what,
    code: a.code ?? 'Unexpected',
    message: a.message ?? '',
  });
  return {
    revision,
    nodes: outcomes.map((o) => {
      const reload = reloadOf(o.node, at);
      return {
        ...nodeOutcome(o),
        what: reload?.what ?? null,
        keptLastGood: reload?.keptLastGood ? broken(reload.keptLastGood) : null,
        passedOver: o.outcome === 'served' ? o.node.refusedSources.map(broken) : [],
        error: reload?.error ?? null,
      };
    }),
  };
}

/** The answer of a write once the servers took it. */
function applied(revision: number, outcomes: RevisionOutcome[], confirmBefore?: string) {
  return {
    revision,
    nodes: outcomes.map(nodeOutcome),
    ...(confirmBefore ? { confirmBefore } : {}),
  };
}

const SERVED_ERRORS: ErrorCode[] = ['ActivationRefused', 'RevisionConflict'];

/** The served identity: its state; activating, confirming, rolling back; SNI bindings; reload. */
export async function serverIdentityRoutes(
  app: FastifyInstance,
  options: { keystore: ServiceContext; tlsStatus: () => ServedStatus | undefined },
): Promise<void> {
  const { keystore } = options;
  app.get(
    '/api/v1/server/tls',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'getServerTls',
        summary: 'What this node serves: source, alias, fingerprint, revision, refusals',
        tags: ['server'],
        responses: {
          200: Type.Object(
            {},
            {
              additionalProperties: true,
              description:
                'The served state: its source (flags, file, environment, keystore, local CA), the entry and its fingerprint, the revision served and the store revision, refused changes, expiry, and a pending confirmation if any.',
            },
          ),
          503: Type.Object(
            { status: Type.Literal('starting') },
            { description: 'Still starting: no identity is served yet.' },
          ),
        },
      }),
    },
    async (_request, reply) => {
      const status = options.tlsStatus();
      if (!status) return reply.code(503).send({ status: 'starting' });
      return {
        ...status,
        storeRevision: await keystoreRevision(options.keystore),
        pendingConfirmation: (await pendingConfirmation(options.keystore)) ?? null,
      };
    },
  );

  const served = (revision: number) =>
    requireServed(keystore, revision, { timeoutMs: SERVED_TIMEOUT_MS });

  app.put<{ Body: { alias: string; confirmWithinSeconds?: number } }>(
    '/api/v1/server/tls',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'activateServerIdentity',
        summary:
          'Serve an entry as the server identity; answers once the servers served or refused it',
        description:
          'With `confirmWithinSeconds`, the activation rolls back by itself unless `POST /api/v1/server/tls/confirm` arrives in time (the deadline is stored, so a restart inside the window still rolls back).',
        tags: ['server'],
        write: true,
        errors: [
          ...SERVED_ERRORS,
          'AliasNotFound',
          'EntryNotUsable',
          'InvalidAlias',
          'InvalidConfirmationWindow',
          'PinnedBySource',
        ],
        body: Type.Object(
          {
            alias: Alias,
            confirmWithinSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
          },
          { additionalProperties: false },
        ),
        responses: { 200: Applied },
      }),
    },
    async (request) => {
      const auth = authOf(request);
      const { alias, confirmWithinSeconds } = request.body;
      const result = await bindEntry(keystore, {
        alias,
        binding: 'server',
        principal: auth.principal,
        ...(confirmWithinSeconds === undefined ? {} : { confirmWithinSeconds }),
      });
      return applied(result.revision, await served(result.revision), result.confirmBefore);
    },
  );

  app.post(
    '/api/v1/server/tls/confirm',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'confirmServerIdentity',
        summary: 'Confirm the activation waiting for its confirmation: it stays',
        tags: ['server'],
        write: true,
        errors: ['NothingToConfirm', 'RevisionConflict'],
        responses: {
          200: Type.Object(
            { revision: Type.Integer(), alias: Type.String() },
            { description: 'Confirmed.' },
          ),
        },
      }),
    },
    async (request) => confirmServer(keystore, { principal: authOf(request).principal }),
  );

  app.post(
    '/api/v1/server/tls/rollback',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'rollBackServerIdentity',
        summary: 'Return to the previous server identity; answers once the servers served it',
        tags: ['server'],
        write: true,
        errors: [...SERVED_ERRORS, 'NothingToRollBack', 'PinnedBySource'],
        responses: { 200: Applied },
      }),
    },
    async (request) => {
      const result = await rollbackServer(keystore, { principal: authOf(request).principal });
      return applied(result.revision, await served(result.revision));
    },
  );

  app.post(
    '/api/v1/server/tls/reload',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'reloadServerIdentity',
        summary: 'Re-run the start-up source lookup on every server (as SIGHUP does)',
        tags: ['server'],
        write: true,
        errors: SERVED_ERRORS,
        responses: { 200: Reloaded },
      }),
    },
    async (request) => {
      const result = await requestReload(keystore, { principal: authOf(request).principal });
      return reloaded(result.revision, result.at, await served(result.revision));
    },
  );

  const HostParams = Type.Object({
    hostname: Type.String({
      minLength: 1,
      maxLength: 253,
      description: 'A host name, or a `*.` wildcard for one label.',
    }),
  });

  app.put<{ Params: { hostname: string }; Body: { alias: string } }>(
    '/api/v1/bindings/:hostname',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'bindHostname',
        summary: 'Serve an entry to clients asking for this host name (SNI)',
        tags: ['server'],
        write: true,
        errors: [
          ...SERVED_ERRORS,
          'AliasNotFound',
          'EntryNotUsable',
          'InvalidAlias',
          'InvalidHostname',
          'InvalidBinding',
        ],
        params: HostParams,
        body: Type.Object({ alias: Alias }, { additionalProperties: false }),
        responses: { 200: Applied },
      }),
    },
    async (request) => {
      const result = await bindEntry(keystore, {
        alias: request.body.alias,
        binding: `sni:${request.params.hostname}`,
        principal: authOf(request).principal,
      });
      return applied(result.revision, await served(result.revision));
    },
  );

  app.delete<{ Params: { hostname: string } }>(
    '/api/v1/bindings/:hostname',
    {
      config: { privilege: 'server:manage' },
      schema: routeSchema({
        operationId: 'unbindHostname',
        summary: 'Stop serving a separate entry for this host name (it gets the server identity)',
        tags: ['server'],
        write: true,
        errors: [...SERVED_ERRORS, 'BindingNotFound', 'InvalidHostname', 'InvalidBinding'],
        params: HostParams,
        responses: { 200: Applied },
      }),
    },
    async (request) => {
      const result = await unbindEntry(keystore, {
        binding: `sni:${request.params.hostname}`,
        principal: authOf(request).principal,
      });
      return applied(result.revision, await served(result.revision));
    },
  );
}
