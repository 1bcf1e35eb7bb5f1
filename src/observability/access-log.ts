import { randomUUID } from "node:crypto";
import type { Level, Logger } from "pino";

/** A caller's x-request-id is kept when it is of these characters (and not too long); otherwise one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]+$/;

export const REQUEST_ID_HEADER = "x-request-id";

/** One call as its access line tells it. */
export interface AccessLine {
  /** grpc or http. */
  port: string;
  /** The RPC (`keymanager.v1.TokenValidationService/ValidateToken`) or the route (`POST /oauth2/token`). */
  call: string;
  /** The gRPC code name for RPCs, the HTTP status for routes. */
  code: string | number;
  ms: number;
  /** The authenticated caller's client id, when the call got that far. */
  caller: string | undefined;
  requestId: string;
}

/**
 * One line per call (`"log":"access"`), written at a configurable level (`access_log_level`,
 * default info), so access lines can be silenced without silencing the rest. Checked per call:
 * with the level off, a call pays one comparison and no request id is made.
 */
export class AccessLog {
  constructor(
    private readonly logger: Logger,
    private readonly level: () => Level | "silent",
    /** The longest x-request-id of a caller kept (request_id_max_chars). */
    private readonly maxRequestId: () => number = () => 128,
  ) {}

  /** The caller's request id when it is a sensible one, else a new one. */
  requestId(value: unknown): string {
    return typeof value === "string" && value.length <= this.maxRequestId() && REQUEST_ID.test(value) ? value : randomUUID();
  }

  get enabled(): boolean {
    const level = this.level();
    return level !== "silent" && this.logger.isLevelEnabled(level);
  }

  write(line: AccessLine): void {
    const level = this.level();
    if (level === "silent") return;
    this.logger[level]({ log: "access", ...line, ms: Math.round(line.ms * 1000) / 1000, caller: line.caller || undefined }, "call");
  }
}

/** Who an HTTP request turned out to be from (routes that authenticate a client say so with noteCaller). */
const CALLERS = new WeakMap<object, string>();

export function noteCaller(req: object, clientId: string): void {
  CALLERS.set(req, clientId);
}

export function callerOf(req: object): string | undefined {
  return CALLERS.get(req);
}
