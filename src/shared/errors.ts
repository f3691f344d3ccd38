/**
 * Typed errors with stable, machine-readable codes. The HTTP layer maps each to its status in
 * one place (src/http/errors.ts); services and repositories only throw these.
 */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string, id: string): AppError =>
  new AppError(404, `${what.toUpperCase()}_NOT_FOUND`, `${what} ${id} not found`);

export const conflict = (code: string, message: string): AppError => new AppError(409, code, message);

export const invalid = (details: FieldError[], message = 'request is invalid'): AppError =>
  new AppError(422, 'VALIDATION_FAILED', message, details);

export const unauthenticated = (message = 'a valid bearer token is required'): AppError =>
  new AppError(401, 'UNAUTHENTICATED', message);

export const forbidden = (message: string): AppError => new AppError(403, 'FORBIDDEN', message);
