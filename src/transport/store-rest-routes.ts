/**
 * The WSO2 Store REST API (v0.13) for application keys, on the HTTP port:
 *
 *   GET /api/am/store/v0.13/applications/{applicationId}/keys/{keyType}[?groupId=...]
 *   PUT /api/am/store/v0.13/applications/{applicationId}/keys/{keyType}[?groupId=...]
 *
 * Callers: a system client's `Authorization: Bearer` token with scope apim:subscribe (401 with a
 * `WWW-Authenticate: Bearer` challenge without a valid token, 403 without the scope). A caller
 * without km:admin sees only its own subscriber's or groups' applications; another's answers 404
 * exactly like a missing one. With `groupId`, the application must be in that group (and a
 * restricted caller too), else 404.
 *
 * Representation: the ApplicationKey of the seed: consumerKey, consumerSecret,
 * supportedGrantTypes, callbackUrl (the client's first callback URL, "" when none), keyState,
 * keyType, groupId ("" when none). `token` is left out: this service keeps access tokens only
 * as hashes, so `token.accessToken` cannot be returned, and a token object without its token
 * would read to a store as a token with no value. The newest application token's metadata is
 * available from the GetAccessTokenByConsumerKey RPC.
 *
 * PUT changes only the grant types and the callback URL (through KeyManager.updateApplication);
 * every other field of the body (consumerKey, consumerSecret, keyState, keyType, groupId, token)
 * is ignored. Each of supportedGrantTypes and callbackUrl may be left out (or null) to keep it;
 * at least one must be given. callbackUrl "" removes the callback URLs, any other value becomes
 * the client's only callback URL.
 *
 * Preconditions (412 Precondition Failed, nothing changes):
 * - Responses carry a strong `ETag`: a short SHA-256 of the consumer key, the client's and the key
 *   mapping's updatedAt and everything the representation shows, so it changes whenever the
 *   representation does. A PUT with `If-Match` naming none of the current ETag (strong
 *   comparison; weak tags never match) fails; `If-Match: *` matches any existing keys.
 *   Without If-Match, `If-Unmodified-Since` older than the client's updatedAt (whole seconds,
 *   as in `Last-Modified`) fails.
 * - Keys whose keyState is not COMPLETED (CREATED, APPROVED, REJECTED: registration not
 *   finished) cannot be updated.
 * The preconditions are checked again inside the update, on the row it has locked
 * (compare-and-set): of several PUTs with the same If-Match, one wins and the others get 412.
 * (Keys held by an external key manager: checked against the state kept here, just before the
 * server's update.)
 *
 * Other statuses: 400 bad keyType, malformed body or a value the domain refuses (with
 * `error: [{code: field, message}]`), 404 no such application or keys of this type, 405 another
 * method (`Allow: GET, PUT`), 406 an `Accept` that excludes JSON, 413 a body over 64 KiB,
 * 415 a PUT body that is not `application/json`. Error bodies follow the reference's Error
 * schema `{code, message, description, moreInfo, error}`; domain errors become statuses in
 * error-mapping.ts, unknown ones 500 without internals.
 */
import type { AuditLog } from "./audit-log.js";
import { noteCaller } from "../observability/access-log.js";
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { Logger } from "pino";
import { type CallerAuthenticator, requireScope } from "../auth/caller-authenticator.js";
import { Ownership } from "../auth/ownership.js";
import { isRestricted, type Principal, splitGroups } from "../auth/principal.js";
import { SCOPES } from "../auth/scopes.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../domain/errors.js";
import { Validator } from "../domain/validator.js";
import { type KeyManager, NO_KEYS } from "../keymanager/key-manager.js";
import { type ApplicationKeyMapping, KEY_TYPES, type KeyType, type OAuthApplication } from "../domain/model/index.js";
import type { ApplicationPatch } from "../keymanager/key-manager.js";
import { httpStatusOf, toConnectError } from "./error-mapping.js";
import { sendJson, type RouteHandler } from "./http-server.js";

export const STORE_KEYS_PATH = /^\/api\/am\/store\/v0\.13\/applications\/([^/]+)\/keys\/([^/]+)$/;
export const STORE_KEYS_TEMPLATE = "/api/am/store/v0.13/applications/{applicationId}/keys/{keyType}";
const ALLOW = "GET, PUT";
const CHALLENGE = 'Bearer realm="keymanager"';

interface Deps {
  keyManager: KeyManager;
  authenticator: CallerAuthenticator;
  logger: Logger;
  audit: AuditLog;
  /** Largest JSON body. */
  maxBodyBytes: number;
}

/** An application key that exists: the mapping is always there when found by application and key type. */
type KeyedApplication = OAuthApplication & { mapping: ApplicationKeyMapping };

/** A refusal that is about HTTP itself (method, media types, size), not the domain. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

interface Call {
  principal: Principal;
  applicationId: string;
  keyType: KeyType;
  groupId: string | undefined;
}

export function storeRestRoutes(deps: Deps): RouteHandler {
  const ownership = new Ownership(deps.keyManager);

  /** The caller's keys of this application, or NOT_FOUND (missing, another's, another group). */
  async function load(call: Call): Promise<KeyedApplication> {
    const found = await deps.keyManager.retrieveApplicationByKey({ applicationId: call.applicationId, keyType: call.keyType });
    const app = ownership.checkApplication(call.principal, found, NO_KEYS);
    const { mapping } = app;
    if (!mapping) throw new NotFoundError(NO_KEYS);
    if (call.groupId !== undefined) {
      const inGroup = splitGroups(app.client.groupId).includes(call.groupId);
      const callerInGroup = !isRestricted(call.principal) || call.principal.groups.includes(call.groupId);
      if (!inGroup || !callerInGroup) throw new NotFoundError(NO_KEYS);
    }
    return { client: app.client, mapping };
  }

  async function get(call: Call, res: http.ServerResponse): Promise<void> {
    sendKey(res, await load(call));
  }

  async function put(call: Call, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    requireJsonBody(req);
    const app = await load(call);
    checkPreconditions(req, app);
    const patch = patchFrom(await readJson(req, deps.maxBodyBytes));
    // Checked again where the change is made, so a change landing in between is not overwritten.
    const updated = await deps.keyManager.updateApplication(app.client.consumerKey, patch, (current) => {
      if (!current.mapping) throw new NotFoundError(NO_KEYS);
      checkPreconditions(req, { client: current.client, mapping: current.mapping });
    });
    const after: KeyedApplication = { client: updated.client, mapping: updated.mapping ?? app.mapping };
    deps.audit.change(call.principal, `PUT ${STORE_KEYS_TEMPLATE}`, {
      applicationId: call.applicationId,
      keyType: call.keyType,
      consumerKey: app.client.consumerKey,
    });
    sendKey(res, after);
  }

  return async (req, res) => {
    const raw = req.url ?? "";
    const q = raw.indexOf("?");
    const match = STORE_KEYS_PATH.exec(q < 0 ? raw : raw.slice(0, q));
    if (!match) return false;
    try {
      if (req.method !== "GET" && req.method !== "PUT") throw new HttpError(405, `use ${ALLOW}`, { allow: ALLOW });
      const principal = await deps.authenticator.authenticate(req.headers.authorization);
      noteCaller(req, principal.clientId);
      requireScope(principal, SCOPES.store, STORE_KEYS_TEMPLATE);
      const call = callOf(principal, match[1] ?? "", match[2] ?? "", new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)));
      if (!acceptsJson(req.headers.accept)) throw new HttpError(406, "only application/json can be returned");
      if (req.method === "GET") await get(call, res);
      else await put(call, req, res);
    } catch (err) {
      sendFailure(req, res, err, deps.logger);
    }
    return true;
  };
}

function callOf(principal: Principal, rawApplicationId: string, rawKeyType: string, query: URLSearchParams): Call {
  const v = new Validator();
  const applicationId = decodeSegment(v, "applicationId", rawApplicationId);
  const keyType = decodeSegment(v, "keyType", rawKeyType);
  if (keyType !== undefined && !(KEY_TYPES as readonly string[]).includes(keyType)) v.add("keyType", `must be ${KEY_TYPES.join(" or ")}`);
  const groups = query.getAll("groupId");
  if (groups.length > 1) v.add("groupId", "must be given at most once");
  v.throwIfInvalid();
  const groupId = groups[0]?.trim();
  return { principal, applicationId: applicationId ?? "", keyType: keyType as KeyType, groupId: groupId ? groupId : undefined };
}

function decodeSegment(v: Validator, field: string, raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    v.add(field, "is not a valid percent-encoded path segment");
    return undefined;
  }
}

function sendKey(res: http.ServerResponse, app: KeyedApplication): void {
  const { client, mapping } = app;
  const body = {
    consumerKey: client.consumerKey,
    consumerSecret: client.consumerSecret,
    supportedGrantTypes: [...client.grantTypes],
    callbackUrl: client.callbackUrls[0] ?? "",
    keyState: mapping.keyState,
    keyType: mapping.keyType,
    groupId: client.groupId,
  };
  sendJson(res, 200, body, { etag: etagOf(app), "last-modified": client.updatedAt.toUTCString() });
}

/** Strong: changes whenever anything the representation shows (or the stored update times) changes. */
export function etagOf(app: KeyedApplication): string {
  const { client, mapping } = app;
  const state = [
    client.consumerKey,
    client.updatedAt.getTime(),
    mapping.updatedAt.getTime(),
    mapping.keyState,
    mapping.keyType,
    client.consumerSecret,
    client.grantTypes,
    client.callbackUrls,
    client.groupId,
  ];
  return `"${createHash("sha256").update(JSON.stringify(state)).digest("base64url").slice(0, 22)}"`;
}

function checkPreconditions(req: http.IncomingMessage, app: KeyedApplication): void {
  const ifMatch = req.headers["if-match"];
  if (ifMatch !== undefined) {
    if (!matchesAny(ifMatch, etagOf(app))) throw new FailedPreconditionError("If-Match does not match the keys' current ETag");
  } else {
    const since = req.headers["if-unmodified-since"];
    const date = since === undefined ? NaN : Date.parse(since);
    // An invalid date is ignored (RFC 9110 13.1.4); HTTP dates have whole seconds.
    if (!Number.isNaN(date) && Math.floor(app.client.updatedAt.getTime() / 1000) > Math.floor(date / 1000)) {
      throw new FailedPreconditionError("the keys were modified since If-Unmodified-Since");
    }
  }
  if (app.mapping.keyState !== "COMPLETED") {
    throw new FailedPreconditionError(`the keys are ${app.mapping.keyState}: only COMPLETED keys can be updated`);
  }
}

/** If-Match: `*` or a list of entity tags, compared strongly. */
function matchesAny(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  const tags = header.match(/(W\/)?"[^"]*"/g) ?? [];
  return tags.some((tag) => tag === etag);
}

function requireJsonBody(req: http.IncomingMessage): void {
  const [type, ...params] = (req.headers["content-type"] ?? "").split(";").map((p) => p.trim().toLowerCase());
  const charset = params
    .find((p) => p.startsWith("charset="))
    ?.slice("charset=".length)
    .replace(/"/g, "");
  if (type !== "application/json" || (charset !== undefined && charset !== "utf-8" && charset !== "utf8")) {
    throw new HttpError(415, "the body must be application/json (UTF-8)");
  }
}

async function readJson(req: http.IncomingMessage, maxBytes: number): Promise<unknown> {
  const bytes = await readBody(req, maxBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw InvalidArgumentError.field("body", "is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw InvalidArgumentError.field("body", "is not valid JSON");
  }
}

/**
 * The body, at most `limit` bytes. Past the limit the rest is read and dropped (not kept), so
 * the 413 answer reaches the client on a healthy connection.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `the body must be at most ${limit} bytes`);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    req.on("data", (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) settle(() => reject(tooLarge()));
      else chunks.push(chunk);
    });
    req.on("end", () => settle(() => resolve(Buffer.concat(chunks))));
    req.on("error", (err) => settle(() => reject(err)));
    req.on("close", () => settle(() => reject(new Error("the request was aborted"))));
  });
}

/** The seed's ApplicationKey body: only supportedGrantTypes and callbackUrl count. */
function patchFrom(body: unknown): ApplicationPatch {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw InvalidArgumentError.field("body", "must be a JSON object");
  const { supportedGrantTypes, callbackUrl } = body as Record<string, unknown>;
  const v = new Validator();
  const patch: ApplicationPatch = {};
  if (supportedGrantTypes !== undefined && supportedGrantTypes !== null) {
    if (!Array.isArray(supportedGrantTypes) || !supportedGrantTypes.every((g): g is string => typeof g === "string")) {
      v.add("supportedGrantTypes", "must be an array of strings");
    } else {
      patch.grantTypes = [...supportedGrantTypes];
    }
  }
  if (callbackUrl !== undefined && callbackUrl !== null) {
    if (typeof callbackUrl !== "string") v.add("callbackUrl", "must be a string");
    else patch.callbackUrls = callbackUrl === "" ? [] : [callbackUrl];
  }
  if (v.ok && patch.grantTypes === undefined && patch.callbackUrls === undefined) {
    v.add("body", "give supportedGrantTypes or callbackUrl");
  }
  v.throwIfInvalid();
  return patch;
}

/**
 * Whether the Accept header allows application/json: the most specific matching range
 * (application/json, then application/*, then *\/*) decides, and q=0 refuses.
 */
export function acceptsJson(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === "") return true;
  let best = -1;
  let bestQ = 0;
  for (const part of accept.split(",")) {
    const [range = "", ...params] = part.split(";").map((p) => p.trim().toLowerCase());
    const specificity = range === "application/json" ? 2 : range === "application/*" ? 1 : range === "*/*" ? 0 : -1;
    if (specificity < 0 || specificity < best) continue;
    const q = qualityOf(params);
    bestQ = specificity > best ? q : Math.max(bestQ, q);
    best = specificity;
  }
  return best >= 0 && bestQ > 0;
}

function qualityOf(params: readonly string[]): number {
  const q = params.find((p) => /^q\s*=/.test(p));
  if (q === undefined) return 1;
  const value = q.slice(q.indexOf("=") + 1).trim();
  // RFC 9110 12.4.2: 0 to 1 with at most three decimals; anything else counts as 1.
  return /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value) ? Number(value) : 1;
}

/** REST names for the domain's field names in violations. */
function restField(field: string): string {
  return field.replace(/^grant_types/, "supportedGrantTypes").replace(/^callback_urls(\[\d+\])?/, "callbackUrl");
}

function sendFailure(req: http.IncomingMessage, res: http.ServerResponse, err: unknown, logger: Logger): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    sendJson(res, err.status, errorBody(err.status, err.message, []), err.headers);
    return;
  }
  const ce = toConnectError(err, logger, `${req.method ?? ""} ${STORE_KEYS_TEMPLATE}`);
  const status = httpStatusOf(ce.code);
  const items = err instanceof InvalidArgumentError ? err.violations.map((v) => ({ code: restField(v.field), message: v.description })) : [];
  const description = items.length > 0 ? items.map((i) => `${i.code}: ${i.message}`).join("; ") : ce.rawMessage;
  const headers: Record<string, string> = {};
  if (status === 401) headers["www-authenticate"] = req.headers.authorization ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE;
  if (status === 403) headers["www-authenticate"] = `${CHALLENGE}, error="insufficient_scope", scope="${SCOPES.store}"`;
  sendJson(res, status, errorBody(status, description, items), headers);
}

function errorBody(status: number, description: string, error: readonly { code: string; message: string }[]) {
  return { code: status, message: http.STATUS_CODES[status] ?? "Error", description, moreInfo: "", error };
}
