import type { DescField, DescMessage, DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import { hashToken } from "../oauth/token-hash.js";

/** Request fields that name what a change touched. Nothing else is logged: no secret can slip in. */
const TARGET_FIELDS = new Set([
  "applicationId",
  "consumerKey",
  "secretId",
  "appOwner",
  "clientId",
  "keyType",
  "apiId",
  "context",
  "version",
  "username",
  "name",
  "grantType",
  "tier",
  "state",
  "issuer",
]);
/** Token-valued fields: logged only as a short reference (the first 12 hex digits of the stored hash). */
const TOKEN_FIELDS = new Set(["token", "tokenToRevoke"]);
const MAX_DEPTH = 3;

/** Services that change nothing though their protos cannot say so (not ours: no idempotency option). */
const READ_ONLY_SERVICES = new Set(["envoy.service.auth.v3.Authorization"]);

/** Whether a successful call of the method changed something, and so is audited. */
export function isChange(method: DescMethod): boolean {
  return method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS && !READ_ONLY_SERVICES.has(method.parent.typeName);
}

/**
 * One line for every change (who, what, when, to what), on the logger's "audit" child.
 * Written after the change succeeded; a refused call changes nothing and is not audited.
 */
export class AuditLog {
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger.child({ log: "audit" });
  }

  /** A change made by an RPC: the target is read from the request's identifying fields, enum values by name. */
  record(principal: Principal, method: DescMethod, request: unknown): void {
    this.change(principal, `${method.parent.typeName}/${method.name}`, targetOf(request, 0, method.input));
  }

  /** A change made any other way (the Store REST API), with its target named by the caller. */
  change(principal: Principal, what: string, target: Record<string, unknown>): void {
    this.write(principal.clientId, principal.subscriber || undefined, what, target);
  }

  /** A change by a client that is not a system caller (an OAuth2 client at /oauth2/token or /oauth2/revoke). */
  changeBy(clientId: string, what: string, target: Record<string, unknown>): void {
    this.write(clientId, undefined, what, target);
  }

  private write(who: string, subscriber: string | undefined, what: string, target: Record<string, unknown>): void {
    this.logger.info({ who, subscriber, what, target, at: new Date().toISOString() }, "change");
  }
}

/** An enum field's value by its name (KeyType 1: "PRODUCTION"); the number when it names none. */
function enumName(field: DescField | undefined, value: number): string | number {
  if (field?.fieldKind !== "enum") return value;
  return field.enum.values.find((v) => v.number === value)?.localName ?? value;
}

function targetOf(value: unknown, depth: number, schema?: DescMessage): Record<string, unknown> {
  const target: Record<string, unknown> = {};
  if (typeof value !== "object" || value === null || depth > MAX_DEPTH) return target;
  for (const [key, field] of Object.entries(value)) {
    const desc = schema?.fields.find((f) => f.localName === key);
    if (TARGET_FIELDS.has(key) && typeof field === "number") target[key] = enumName(desc, field);
    else if (TARGET_FIELDS.has(key) && typeof field === "string" && field !== "") target[key] = field;
    else if (TOKEN_FIELDS.has(key) && typeof field === "string" && field !== "") target[`${key}Ref`] = hashToken(field).slice(0, 12);
    else if (typeof field === "object" && field !== null && !ArrayBuffer.isView(field))
      Object.assign(target, targetOf(field, depth + 1, desc?.fieldKind === "message" ? desc.message : undefined));
  }
  return target;
}
