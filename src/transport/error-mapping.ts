import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { DomainError, type DomainErrorKind, InvalidArgumentError, UnavailableError } from "../domain/errors.js";
import { isDatabaseUnavailable } from "../storage/errors.js";

/**
 * The one place errors become status codes. Domain errors keep their message (it is written for
 * the caller); anything else becomes INTERNAL "internal error" with an id that is logged with
 * the cause, so nothing internal reaches the caller.
 */
const CODES: Record<DomainErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  resource_exhausted: Code.ResourceExhausted,
};

/**
 * Each header or trailer of an error answer stays under this many bytes once encoded (the
 * message travels as a percent-encoded grpc-message trailer on gRPC and gRPC-Web), so no client
 * runs out of header space: message and field list together stay under 8 KiB (Node's HTTP/1.1
 * parser stops at 16 KiB for all headers together).
 */
export const MAX_ERROR_HEADER_BYTES = 3072;

/** What a caller is told when the database is down, unreachable or past a deadline: nothing more. */
export const DATABASE_UNAVAILABLE_MESSAGE = "the database is not available; try again shortly";

/**
 * The domain error `err` is, or stands for: a database that cannot answer now (down, stalled past
 * a deadline, out of connections: storage/errors.ts) is UNAVAILABLE (OAuth2
 * `temporarily_unavailable`), never INTERNAL. Undefined for anything else.
 */
export function asDomainError(err: unknown): DomainError | undefined {
  if (err instanceof DomainError) return err;
  if (isDatabaseUnavailable(err)) return new UnavailableError(DATABASE_UNAVAILABLE_MESSAGE, { oauth: "temporarily_unavailable" });
  return undefined;
}

export function toConnectError(errOrCause: unknown, logger: Logger, procedure: string): ConnectError {
  if (errOrCause instanceof ConnectError) return errOrCause;
  const err = asDomainError(errOrCause) ?? errOrCause;
  if (err instanceof DomainError) {
    const ce = new ConnectError(boundedMessage(err.message), CODES[err.kind]);
    if (err instanceof InvalidArgumentError) ce.metadata.set("x-invalid-fields", invalidFields(err.violations.map((v) => v.field)));
    return ce;
  }
  const errorId = randomUUID();
  logger.error({ err, errorId, procedure }, "internal error");
  return new ConnectError(`internal error (id ${errorId})`, Code.Internal);
}

/** The message, cut so that even percent-encoded (encodeURIComponent, the larger) it fits MAX_ERROR_HEADER_BYTES. */
export function boundedMessage(message: string): string {
  let text = wellFormed(message);
  for (let encoded = encodeURIComponent(text).length; encoded > MAX_ERROR_HEADER_BYTES; encoded = encodeURIComponent(text).length) {
    text = `${wellFormed(text.slice(0, Math.floor((text.length * MAX_ERROR_HEADER_BYTES) / encoded) - 4))}...`;
  }
  return text;
}

/** Lone surrogates (a caller's map key, or a cut through a pair) as U+FFFD: encodeURIComponent throws on them. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** The bad fields' paths, comma separated, as many whole ones as fit MAX_ERROR_HEADER_BYTES. */
function invalidFields(fields: readonly string[]): string {
  let value = "";
  for (const field of fields) {
    const next = value === "" ? headerValue(field) : `${value},${headerValue(field)}`;
    if (next.length > MAX_ERROR_HEADER_BYTES) break;
    value = next;
  }
  return value;
}

/**
 * A field path as a header value: it can hold a caller's map key (`additional_properties[k]`), and
 * a header takes only Latin-1 without control characters (Headers.set throws otherwise), so any
 * other character is percent-encoded (a lone surrogate as U+FFFD).
 */
function headerValue(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      return "%EF%BF%BD";
    }
  });
}

/** HTTP status of each code, for REST and OAuth2 endpoints (as connect-es's Connect protocol maps them). */
const HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.FailedPrecondition]: 412,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.Unavailable]: 503,
  [Code.Unimplemented]: 501,
  [Code.ResourceExhausted]: 429,
  [Code.DeadlineExceeded]: 504,
  [Code.Canceled]: 499,
};

export function httpStatusOf(code: Code): number {
  return HTTP_STATUS[code] ?? 500;
}
