import { Type } from 'typebox';
import { USER_ROLES } from '../service/roles.js';
import type { RevisionOutcome } from '../service/served-status.js';

/** The response schemas of `/api/v1`, one per thing the API describes (never key material). */

const Name = Type.Object({
  rfc4514: Type.String({
    description: 'The name as RFC 4514 text, e.g. `CN=example.com,O=Example`.',
  }),
  attributes: Type.Array(
    Type.Object({ type: Type.String(), oid: Type.String(), value: Type.String() }),
  ),
});

const Sans = Type.Object({
  dns: Type.Array(Type.String()),
  ip: Type.Array(Type.String()),
  email: Type.Array(Type.String()),
  uri: Type.Array(Type.String()),
});

const PublicKey = Type.Object({
  type: Type.String({
    description: '`rsa`, `rsa-pss`, `ec`, `ed25519`, `ed448`, `dsa`, or `unsupported`.',
  }),
  bits: Type.Optional(Type.Integer()),
  curve: Type.Optional(Type.String()),
  algorithm: Type.Optional(Type.String()),
  publicKeySha256: Type.Optional(Type.String()),
});

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const CertificateDescription = Type.Object({
  version: Type.Integer(),
  subject: Name,
  issuer: Name,
  serialNumber: Type.String(),
  notBefore: Type.String({ format: 'date-time' }),
  notAfter: Type.String({ format: 'date-time' }),
  subjectAltNames: Sans,
  publicKey: PublicKey,
  signatureAlgorithm: Type.String(),
  fingerprints: Type.Object({ sha256: Type.String(), sha1: Type.String() }),
  keyUsage: Nullable(Type.Array(Type.String())),
  extendedKeyUsage: Nullable(Type.Array(Type.String())),
  basicConstraints: Nullable(
    Type.Object({ ca: Type.Boolean(), pathLength: Nullable(Type.Integer()) }),
  ),
  subjectKeyIdentifier: Nullable(Type.String()),
  authorityKeyIdentifier: Nullable(Type.String()),
  selfSigned: Type.Boolean(),
});

export const CsrDescription = Type.Object({
  subject: Name,
  sans: Sans,
  key: PublicKey,
  signatureAlgorithm: Type.String(),
  signatureValid: Nullable(Type.Boolean()),
  challengePassword: Type.Optional(Type.Boolean()),
});

export const EntryKind = Type.Union(
  [Type.Literal('key-pair'), Type.Literal('trusted'), Type.Literal('pending')],
  { description: 'A key pair (certificate and key), a trusted CA certificate, or a pending CSR.' },
);

export const EntryStatus = Type.Union(
  [
    Type.Literal('valid'),
    Type.Literal('expiring'),
    Type.Literal('expired'),
    Type.Literal('pending'),
  ],
  { description: '`expiring`: ends within the window asked (30 days by default).' },
);

export const EntryDescription = Type.Object(
  {
    alias: Type.String(),
    kind: EntryKind,
    status: EntryStatus,
    certificate: Nullable(CertificateDescription),
    chain: Type.Array(CertificateDescription, {
      description: 'The issuers stored with it, leaf excluded.',
    }),
    csr: Nullable(CsrDescription),
    hasPrivateKey: Type.Boolean({ description: 'The key itself is never returned.' }),
    bindings: Type.Array(Type.String({ description: '`server` or `sni:<host>`' })),
    revision: Type.Integer({ description: 'The revision that last changed it: its ETag.' }),
    createdRevision: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { description: 'A keystore entry, described.' },
);

export const AuditRecord = Type.Object({
  seq: Type.Integer({ description: 'Its place in the log (the paging key).' }),
  revision: Nullable(Type.Integer()),
  at: Type.String({ format: 'date-time' }),
  actor: Type.String(),
  source: Nullable(Type.String()),
  action: Type.String(),
  target: Nullable(Type.String()),
  outcome: Type.String(),
  before: Type.Record(Type.String(), Nullable(Type.String())),
  after: Type.Record(Type.String(), Nullable(Type.String())),
  details: Type.Record(Type.String(), Type.Unknown()),
  prevHash: Type.String(),
  hash: Type.String({ description: 'SHA-256 over the record and the previous hash.' }),
});

/** An entry's alias; its full rule (`InvalidAlias`) is the service's. */
export const Alias = Type.String({
  minLength: 1,
  maxLength: 128,
  description: '1 to 128 letters, digits, `.`, `_`, `-`, starting with a letter or digit.',
});

export const ValidationProblem = Type.Object({
  code: Type.String(),
  message: Type.String({ description: 'One sentence for a person, worded by consequence.' }),
  certificate: Type.Optional(Type.String({ description: 'SHA-256 of the certificate concerned.' })),
  index: Type.Optional(Type.Integer({ description: 'Its place in the path, 0 = leaf.' })),
  issuer: Type.Optional(Type.String({ description: 'For ChainIncomplete: the missing issuer.' })),
});

export const ImportDescription = Type.Object(
  {
    alias: Type.String(),
    action: Type.Union([Type.Literal('import'), Type.Literal('replace')]),
    kind: Type.Union([Type.Literal('key-pair'), Type.Literal('trusted')]),
    certificate: CertificateDescription,
    chain: Type.Array(CertificateDescription),
    warnings: Type.Array(ValidationProblem),
    hostnames: Type.Object({ dns: Type.Array(Type.String()), ip: Type.Array(Type.String()) }),
    bindings: Type.Array(Type.String()),
    replaces: Nullable(Type.String()),
    revision: Type.Integer(),
  },
  {
    description: 'What the import does (or would do): the entry, its chain, warnings, host names.',
  },
);

/** The multipart form of an upload, for the document. */
export const UploadForm = Type.Object({
  file: Type.Array(Type.String({ format: 'binary' }), {
    description: 'One or more files in any order and format: PEM, DER, PKCS#7, PKCS#12, keys.',
  }),
  password: Type.Optional(Type.String()),
  keyAlias: Type.Optional(
    Type.String({ description: 'The key entry to take from a keystore with several.' }),
  ),
});

/** Values as Markdown prose: "`a`, `b` or `c`". */
export function oneOf(values: readonly string[]): string {
  const quoted = values.map((v) => `\`${v}\``);
  return quoted.length < 2
    ? quoted.join('')
    : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** A user's or a token's role in a response. */
export const UserRoleSchema = Type.Union(USER_ROLES.map((role) => Type.Literal(role)));

/**
 * A role in a request body: any string, so that the service answers an unknown one with
 * `InvalidRole` on every route (a schema enum would answer `BadRequest`).
 */
export const RoleInput = Type.String({
  minLength: 1,
  maxLength: 64,
  description: `${oneOf(USER_ROLES)}.`,
});

/** What one running server made of a change: the properties of its schema. */
export const NODE_OUTCOME = {
  node: Type.String(),
  url: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.Literal('served'), Type.Literal('pending')]),
  fingerprint: Type.String({
    description: 'What the node serves as its server identity now.',
  }),
};

/** One node's outcome as the API answers it (`NODE_OUTCOME`). */
export function nodeOutcome(o: RevisionOutcome) {
  return {
    node: o.node.node,
    url: o.node.url,
    outcome: o.outcome === 'served' ? ('served' as const) : ('pending' as const),
    fingerprint: o.node.fingerprint,
  };
}
