import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../core/certificate.js';
import { CoreError, isCoreError } from '../core/errors.js';
import { readMaterial } from '../core/read.js';
import { ServiceError } from './errors.js';

/** Uploaded files, in any format and order (PEM, DER, PKCS#7, PKCS#12…). */
export type UploadedFile = { name: string; bytes: Uint8Array };

/** What an upload holds. */
export interface Upload {
  certificates: Certificate[];
  keys: KeyObject[];
  /** The file each certificate came from (by SHA-256), so that errors can name it. */
  fileOf: Map<string, string>;
}

/**
 * Reads every file of an upload with `core/` (decrypting with `password`, taking the
 * keystore key entry `keyAlias`); the first problem of any file is thrown as its coded
 * error, prefixed with the file's name.
 */
export async function readUpload(
  files: UploadedFile[],
  password: string | undefined,
  keyAlias?: string | undefined,
): Promise<Upload> {
  if (!Array.isArray(files) || files.length === 0) {
    throw new ServiceError('EmptyUpload', 'The upload holds no file.');
  }
  const upload: Upload = { certificates: [], keys: [], fileOf: new Map() };
  for (const file of files) {
    const material = await readMaterial(file.bytes, { password, keyAlias }).catch(
      (err: unknown) => {
        if (!isCoreError(err)) throw err;
        throw new CoreError(err.code, `${file.name}: ${err.message}`, { cause: err });
      },
    );
    const problem = material.problems[0];
    if (problem) throw new CoreError(problem.code, `${file.name}: ${problem.message}`);
    for (const { certificate } of material.certificates) {
      upload.certificates.push(certificate);
      if (!upload.fileOf.has(certificate.sha256)) upload.fileOf.set(certificate.sha256, file.name);
    }
    upload.keys.push(...material.keys.map((k) => k.key));
  }
  return upload;
}

/** The one private key of an upload (the same key twice counts once); several → TooManyKeys. */
export function distinctKey(keys: KeyObject[]): KeyObject | undefined {
  const [first, ...rest] = keys;
  if (!first) return undefined;
  const pkcs8 = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' }).toString('hex');
  if (rest.some((k) => pkcs8(k) !== pkcs8(first))) {
    throw new ServiceError(
      'TooManyKeys',
      'The upload holds more than one private key; give only the server key.',
    );
  }
  return first;
}
