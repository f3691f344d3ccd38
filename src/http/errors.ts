import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.js';
import { fieldErrors } from './validation.js';

/** Maps every error to the one error body: {"error": {"code", "message", "details"}}. */
export function toAppError(err: FastifyError | Error): AppError {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError & { validationContext?: string };
  if (fe.validation) {
    return new AppError(
      422,
      'VALIDATION_FAILED',
      'request is invalid',
      fieldErrors(fe.validation as never, fe.validationContext),
    );
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'PAYLOAD_TOO_LARGE', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError(400, 'BAD_REQUEST', 'Content-Length does not match the body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'request body must be application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError(400, 'MALFORMED_JSON', `body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError(400, 'MALFORMED_JSON', 'body is empty but Content-Type is application/json');
    default:
      break;
  }
  if (fe.statusCode === 400 && err instanceof SyntaxError)
    return new AppError(400, 'MALFORMED_JSON', `body is not valid JSON: ${err.message}`);
  if (fe.statusCode === 400) return new AppError(400, 'BAD_REQUEST', err.message);
  if (fe.statusCode === 404) return new AppError(404, 'NOT_FOUND', err.message);
  return new AppError(500, 'INTERNAL', 'internal error');
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const app = toAppError(err);
  if (app.status >= 500) req.log.error({ err }, 'request failed');
  void reply
    .status(app.status)
    .headers(app.headers)
    .send({ error: { code: app.code, message: app.message, details: app.details } });
}
