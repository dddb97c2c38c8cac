import { ApiError } from './api-error.js';

/**
 * The revision an `If-Match` header names (`"12"` or `W/"12"`), undefined without one.
 * `*` means "exists", which the operation checks anyway. Several tags, or one that is not
 * a revision, are a `BadRequest`: a guard that can't be read must not be ignored.
 */
export function ifMatchRevision(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const match = /^\s*(?:W\/)?"(\d{1,15})"\s*$/.exec(header);
  if (!match) {
    throw new ApiError(
      'BadRequest',
      `If-Match must be one entity tag as given by ETag (e.g. "12"), not ${JSON.stringify(header)}.`,
    );
  }
  return Number(match[1]);
}
