/**
 * The closed set of errors the domain raises. Transports map them to gRPC codes and HTTP
 * statuses in one place (transport/error-mapping.ts); anything else leaves as INTERNAL.
 */

/** One invalid field of a request: the field's path and what is wrong with it. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** RFC 6749 section 5.2 error codes, for the HTTP OAuth2 endpoints. */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "temporarily_unavailable"
  /** RFC 8693 section 2.2.2: a token exchange's audience or resource this server does not serve. */
  | "invalid_target";

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;
  /** The OAuth2 error code when the error answers a token request. */
  readonly oauth: OAuthErrorCode | undefined;

  constructor(message: string, options: { oauth?: OAuthErrorCode } = {}) {
    super(message);
    this.oauth = options.oauth;
  }
}

export type DomainErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "unauthenticated"
  | "permission_denied"
  | "unavailable"
  | "unimplemented"
  | "resource_exhausted";

/**
 * How much of a bad request an error describes: the first MAX_VIOLATIONS violations, each field
 * path and description cut at MAX_VIOLATION_TEXT characters, and how many more there were. A
 * request listing thousands of bad elements gets an answer of a few KiB, not megabytes.
 */
export const MAX_VIOLATIONS = 20;
export const MAX_VIOLATION_TEXT = 200;

export class InvalidArgumentError extends DomainError {
  readonly kind = "invalid_argument";
  /** The violations described (at most MAX_VIOLATIONS). */
  readonly violations: readonly FieldViolation[];
  /** Violations found beyond those described. */
  readonly omitted: number;

  /** `more`: violations found but not passed (a Validator stops keeping them at MAX_VIOLATIONS). */
  constructor(violations: readonly FieldViolation[], options: { oauth?: OAuthErrorCode; more?: number } = {}) {
    const kept = violations.slice(0, MAX_VIOLATIONS).map((v) => ({ field: cut(v.field), description: cut(v.description) }));
    const omitted = violations.length - kept.length + (options.more ?? 0);
    const listed = kept.map((v) => `${v.field}: ${v.description}`).join("; ");
    super(omitted > 0 ? `${listed}; and ${omitted} more` : listed, options);
    this.violations = kept;
    this.omitted = omitted;
  }

  static field(field: string, description: string): InvalidArgumentError {
    return new InvalidArgumentError([{ field, description }]);
  }
}

function cut(text: string): string {
  return text.length <= MAX_VIOLATION_TEXT ? text : `${text.slice(0, MAX_VIOLATION_TEXT)}…`;
}

export class NotFoundError extends DomainError {
  readonly kind = "not_found";
}

export class AlreadyExistsError extends DomainError {
  readonly kind = "already_exists";
}

export class FailedPreconditionError extends DomainError {
  readonly kind = "failed_precondition";
}

export class UnauthenticatedError extends DomainError {
  readonly kind = "unauthenticated";
}

export class PermissionDeniedError extends DomainError {
  readonly kind = "permission_denied";
}

export class UnavailableError extends DomainError {
  readonly kind = "unavailable";
}

export class UnimplementedError extends DomainError {
  readonly kind = "unimplemented";
}

/** Too many attempts: the caller should retry later (HTTP 429). */
export class ResourceExhaustedError extends DomainError {
  readonly kind = "resource_exhausted";
}
