import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { API_ERROR_CODES, type ApiErrorCode, problemDocument, STATUS } from './problem.js';
import { COMMON_SECURITY_HEADERS, DATA_POLICY } from './security-headers.js';

/** What Node's HTTP parser reports, as the API's code and sentence (its status is `STATUS`'s). */
function classify(err: NodeJS.ErrnoException): { code: ApiErrorCode; detail: string } {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'RequestTimeout', detail: API_ERROR_CODES.RequestTimeout };
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'HeadersTooLarge', detail: API_ERROR_CODES.HeadersTooLarge };
    case 'HPE_INVALID_METHOD':
      return {
        code: 'MethodNotImplemented',
        detail: 'The request method is not an HTTP method certkeeper knows.',
      };
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { code: 'BadRequest', detail: 'The Content-Length header is not valid.' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return { code: 'BadRequest', detail: 'The request body framing is not valid.' };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return { code: 'BadRequest', detail: 'A request header line is not valid HTTP.' };
    default:
      return { code: 'BadRequest', detail: 'The request is not valid HTTP.' };
  }
}

/**
 * Answers what Node's HTTP parser rejects before any route runs (a bad header line, an
 * unknown method, headers over the limit, the slow-header timeout) with problem+json and
 * the security headers, as a route's error would be, then closes the connection: after a
 * parse error the stream's framing can't be trusted. Its request id is in the log.
 */
export function clientErrorHandler(logger: FastifyBaseLogger | undefined) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    // A reset peer, or one already gone: there is no one to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const { code, detail } = classify(err);
    const status = STATUS[code];
    const requestId = `parser-${randomUUID()}`;
    logger?.info({ requestId, code, parserError: err.code }, 'request rejected by the HTTP parser');
    if (socket.writable) {
      const body = JSON.stringify(problemDocument(code, detail, requestId));
      const headers = {
        'Content-Type': 'application/problem+json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
        ...COMMON_SECURITY_HEADERS,
        'Content-Security-Policy': DATA_POLICY,
        'Cache-Control': 'no-store',
        Connection: 'close',
      };
      const head = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
    }
    socket.destroy();
  };
}
