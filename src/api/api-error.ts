import { CodedError } from '../core/errors.js';
import type { ApiErrorCode } from './problem.js';

/** An error the API raises itself, before or instead of a domain operation. */
export class ApiError extends CodedError<ApiErrorCode> {
  override readonly name = 'ApiError';
}
