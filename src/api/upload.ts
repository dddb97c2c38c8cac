import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { UploadedFile } from '../service/upload.js';
import { ApiError } from './api-error.js';
import type { ErrorCode } from './problem.js';

/**
 * What reading an upload and validating its chain can answer, whichever route takes it
 * (import, preflight, CSR completion, a batch's import).
 */
export const UPLOAD_ERRORS: readonly ErrorCode[] = [
  'EmptyUpload',
  'UnsupportedFormat',
  'UnsupportedAlgorithm',
  'MalformedInput',
  'InputTooLarge',
  'PayloadTooLarge',
  'UnsupportedMediaType',
  'PasswordRequired',
  'WrongPassword',
  'KeyMismatch',
  'NoCertificate',
  'AmbiguousLeaf',
  'TooManyCertificates',
  'SignatureInvalid',
  'CertificateExpired',
  'CertificateNotYetValid',
  'NotACertificateAuthority',
  'PathLengthExceeded',
  'NameConstraintViolation',
  'UsageNotAllowed',
  'UnknownCriticalExtension',
  'PolicyViolation',
  'InvalidAlias',
  'EntryNotUsable',
  'RevisionConflict',
];

/** The most files one upload may hold (a certificate, its key, its chain, a PKCS#12…). */
const MAX_FILES = 8;

/** An upload as the routes take it: the files in any format and order, and their password. */
export interface ParsedUpload {
  files: UploadedFile[];
  password?: string;
  /** Other form fields (`alias` for a preflight, `keyAlias` for a keystore), as text. */
  fields: Record<string, string>;
}

/** The JSON form of an upload (multipart has `file` parts and a `password` field instead). */
export const UploadBody = Type.Object(
  {
    certificate: Type.Optional(
      Type.String({ description: 'PEM: the certificate, and its chain if you like.' }),
    ),
    privateKey: Type.Optional(
      Type.String({ description: 'PEM: the private key (any PEM key format, encrypted too).' }),
    ),
    chain: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: MAX_FILES })], {
        description: 'PEM: the issuers, in any order.',
      }),
    ),
    pkcs12: Type.Optional(
      Type.String({ contentEncoding: 'base64', description: 'A PKCS#12 file, base64.' }),
    ),
    der: Type.Optional(
      Type.String({ contentEncoding: 'base64', description: 'A DER or PKCS#7 file, base64.' }),
    ),
    password: Type.Optional(
      Type.String({ maxLength: 4096, description: 'Of the key or the PKCS#12.' }),
    ),
    alias: Type.Optional(
      Type.String({ maxLength: 128, description: 'Preflight only: the alias to plan for.' }),
    ),
    keyAlias: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'The key entry to take from a keystore (PKCS#12) with several.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type JsonUpload = {
  certificate?: string;
  privateKey?: string;
  chain?: string | string[];
  pkcs12?: string;
  der?: string;
  password?: string;
  alias?: string;
  keyAlias?: string;
};

/** Lets routes read `multipart/form-data` uploads, bounded in parts and bytes. */
export async function registerUploads(app: FastifyInstance, bodyLimit: number): Promise<void> {
  await app.register(multipart, {
    limits: {
      fileSize: bodyLimit,
      files: MAX_FILES,
      fields: 8,
      fieldSize: 8192,
      parts: MAX_FILES + 8,
    },
  });
}

/** The files and password of a JSON or multipart upload; `BadRequest` when it holds no file. */
export async function readRequestUpload(
  request: FastifyRequest,
  bodyLimit: number,
): Promise<ParsedUpload> {
  if (request.isMultipart()) return readMultipart(request, bodyLimit);
  return readJsonUpload((request.body ?? {}) as JsonUpload);
}

/** The files and password of the JSON form of an upload (`UploadBody`'s fields). */
export function readJsonUpload(body: JsonUpload): ParsedUpload {
  const files: UploadedFile[] = [];
  const text = (name: string, value: string) =>
    files.push({ name, bytes: Buffer.from(value, 'utf8') });
  const base64 = (name: string, value: string) => {
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(value)) {
      throw new ApiError('BadRequest', `"${name}" must be base64.`);
    }
    files.push({ name, bytes: Buffer.from(value, 'base64') });
  };
  if (body.certificate !== undefined) text('certificate', body.certificate);
  if (body.privateKey !== undefined) text('privateKey', body.privateKey);
  for (const [i, pem] of [body.chain ?? []].flat().entries()) text(`chain[${i}]`, pem);
  if (body.pkcs12 !== undefined) base64('pkcs12', body.pkcs12);
  if (body.der !== undefined) base64('der', body.der);
  return {
    files,
    ...(body.password === undefined ? {} : { password: body.password }),
    fields: {
      ...(body.alias === undefined ? {} : { alias: body.alias }),
      ...(body.keyAlias === undefined ? {} : { keyAlias: body.keyAlias }),
    },
  };
}

async function readMultipart(request: FastifyRequest, bodyLimit: number): Promise<ParsedUpload> {
  const files: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'file') {
        await part.toBuffer();
        throw new ApiError(
          'BadRequest',
          `Upload files in parts named "file", not "${part.fieldname}".`,
        );
      }
      const bytes = await part.toBuffer();
      total += bytes.length;
      if (total > bodyLimit) {
        throw new ApiError(
          'PayloadTooLarge',
          `The upload is larger than ${bodyLimit} bytes in all.`,
        );
      }
      files.push({ name: part.filename || `file ${files.length + 1}`, bytes });
    } else {
      fields[part.fieldname] = String(part.value);
    }
  }
  const { password, ...rest } = fields;
  return { files, ...(password === undefined ? {} : { password }), fields: rest };
}
