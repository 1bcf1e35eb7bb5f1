import type { Api, ApiResource, AuthLevel } from "../model/api.js";
import type { KeyMapping, KeyType } from "../model/application.js";
import type { Subscription } from "../model/subscription.js";
import { isApplicationToken, type TokenFacts } from "../model/token.js";
import { normaliseContext, resourceStart } from "../templates/api-path.js";
import { pathSegments } from "../templates/request-path.js";
import type { ResourceTable } from "../templates/resource-table.js";
import { describe } from "./describe.js";
import { type AsyncFacts, type Decision, type DecisionRequest, type Facts, KeyManagerUnavailable } from "./facts.js";
import { Status, type ValidationStatus } from "./status.js";

/**
 * ValidateToken's checks, in WSO2's order, as one pure function of the request and the facts:
 *
 * 1. the API, by context and version (900908);
 * 2. the resource, by verb and the matched template, or the most specific template matching the
 *    request path (900906);
 * 3. auth level NONE: authorized without a token;
 * 4. a token presented (900902); known, not expired, not revoked (900901; 900912 when its key
 *    manager cannot say);
 * 5. the token's type against the auth level: application or user token (900905);
 * 6. the application holding the token's consumer key (900908);
 * 7. its subscription to the API (900908), and the subscription's state: BLOCKED, or
 *    PROD_ONLY_BLOCKED with PRODUCTION keys (900907); ON_HOLD or REJECTED (900909);
 * 8. one of the resource's scopes, when it names any (900910).
 *
 * Facts are asked for one at a time, only when the checks get that far. `decide` answers from
 * facts at hand (a gateway's copy); `decideAsync` from facts that may have to be read; `decideEager`
 * likewise, but answers at once when none had to be (the server's hot path).
 */
export function decide(facts: Facts, request: DecisionRequest): Decision {
  const steps = checks(request);
  let step = steps.next();
  while (!step.done) step = steps.next(answer(facts, step.value));
  return step.value;
}

export async function decideAsync(facts: AsyncFacts, request: DecisionRequest): Promise<Decision> {
  // A fact at hand (a cache hit) is taken without waiting a turn.
  return decideEager(facts, request);
}

/**
 * As decideAsync, but synchronous for as long as every fact is at hand: the answer itself when
 * no fact had to be waited for (the server's caches held them all), else a promise of it. Spares
 * the server's hot path the promise and the turns of the microtask queue when nothing is read.
 */
export function decideEager(facts: AsyncFacts, request: DecisionRequest): Decision | Promise<Decision> {
  const steps = checks(request);
  let step = steps.next();
  while (!step.done) {
    const value = answer(facts, step.value);
    if (value instanceof Promise) return finish(facts, steps, value);
    step = steps.next(value);
  }
  return step.value;
}

/** The rest of decideEager's checks, from the first fact that had to be waited for. */
async function finish(facts: AsyncFacts, steps: Generator<Question, Decision, unknown>, pending: Promise<unknown>): Promise<Decision> {
  let step = steps.next(await pending);
  while (!step.done) {
    const value = answer(facts, step.value);
    step = steps.next(value instanceof Promise ? await value : value);
  }
  return step.value;
}

/** A fact the checks need next: which getter, with which arguments. */
type Question =
  | { fact: "api"; context: string; version: string }
  | { fact: "resources"; api: Api }
  | { fact: "token" }
  | { fact: "keyMapping"; consumerKey: string }
  | { fact: "subscription"; applicationId: string; apiId: string };

/** The getter's value for a question: exactly what `checks` casts each answer to. */
function answer(facts: Facts | AsyncFacts, q: Question): unknown {
  switch (q.fact) {
    case "api":
      return facts.api(q.context, q.version);
    case "resources":
      return facts.resources(q.api);
    case "token":
      return facts.token();
    case "keyMapping":
      return facts.keyMapping(q.consumerKey);
    case "subscription":
      return facts.subscription(q.applicationId, q.apiId);
  }
}

function* checks(req: DecisionRequest): Generator<Question, Decision, unknown> {
  const context = normaliseContext(req.context);
  const api = (yield { fact: "api", context, version: req.version }) as Api | undefined;
  if (!api) return refuse(Status.RESOURCE_FORBIDDEN, describe.noApi(context, req.version));

  const verb = req.httpVerb.toUpperCase();
  const table = (yield { fact: "resources", api }) as ResourceTable | undefined;
  const found = findResource(table, api, verb, req);
  if (typeof found === "string") return refuse(Status.INCORRECT_API_RESOURCE, found, { api });
  const resource = found;

  const level = req.requiredAuthLevel ?? resource.authLevel;
  if (level === "NONE") return { status: Status.OK, authorized: true, description: "", api, resource };
  if (!req.hasToken) return refuse(Status.MISSING_CREDENTIALS, describe.missingToken(api, resource, level), { api, resource });

  const token = (yield { fact: "token" }) as TokenFacts | KeyManagerUnavailable | undefined;
  if (token instanceof KeyManagerUnavailable) return refuse(Status.KEY_MANAGER_NOT_AVAILABLE, describe.unavailable(token.keyManager), { api, resource });
  if (!token) return refuse(Status.INVALID_CREDENTIALS, describe.unknownToken(), { api, resource });
  // Expiry first: a gateway forgets a revocation once its token has expired, so an expired token
  // is refused as expired wherever it is decided, revoked or not.
  if (token.expiresAt.getTime() <= req.now) return refuse(Status.INVALID_CREDENTIALS, describe.expiredToken(token.expiresAt), { api, resource });
  if (token.revokedAt) return refuse(Status.INVALID_CREDENTIALS, describe.revokedToken(), { api, resource });
  if (!tokenTypeFits(level, isApplicationToken(token))) {
    return refuse(Status.INCORRECT_ACCESS_TOKEN_TYPE, describe.wrongTokenType(api, resource, level), { api, resource, token });
  }

  const keyMapping = (yield { fact: "keyMapping", consumerKey: token.consumerKey }) as KeyMapping | undefined;
  if (!keyMapping) return refuse(Status.RESOURCE_FORBIDDEN, describe.noKeyMapping(), { api, resource, token });
  const subscription = (yield { fact: "subscription", applicationId: keyMapping.applicationId, apiId: api.apiId }) as Subscription | undefined;
  if (!subscription) return refuse(Status.RESOURCE_FORBIDDEN, describe.noSubscription(keyMapping, api), { api, resource, token, keyMapping });
  const state = subscriptionStatus(subscription, keyMapping.keyType);
  if (state) return refuse(state, describe.subscriptionState(keyMapping, api, subscription), { api, resource, token, keyMapping, subscription });
  if (resource.scopes.length > 0 && !resource.scopes.some((s) => token.scopes.includes(s))) {
    return refuse(Status.INVALID_SCOPE, describe.scope(api, resource, token.scopes), { api, resource, token, keyMapping, subscription });
  }
  return { status: Status.OK, authorized: true, description: "", api, resource, token, keyMapping, subscription };
}

/** The resource the request addresses, or why there is none. */
function findResource(table: ResourceTable | undefined, api: Api, verb: string, req: DecisionRequest): ApiResource | string {
  if (!table || table.size === 0) return describe.noResources(api);
  if (req.matchingResource !== "") return table.find(verb, req.matchingResource) ?? describe.noTemplate(api, verb, req.matchingResource);
  const segments = pathSegments(req.requestPath);
  if (!segments) return describe.unusablePath(req.requestPath);
  const start = resourceStart(segments, api.context, api.version);
  if (start === undefined) return describe.notUnderContext(api, req.requestPath);
  return table.matchSegments(verb, segments, start) ?? describe.noMatch(api, verb, req.requestPath);
}

/**
 * The answer when no API's context and version start the request path (ApiIndex.find found
 * none): 900908, as for an unknown context and version.
 */
export function noApiForPath(path: string): Decision {
  return refuse(Status.RESOURCE_FORBIDDEN, describe.noApiAt(path));
}

/** The answer when facts could not be had (a database error): 900900, the cause left to the caller's log. */
export function unexpectedFailure(): Decision {
  return refuse(Status.GENERAL_ERROR, describe.generalError());
}

function tokenTypeFits(level: AuthLevel, applicationToken: boolean): boolean {
  if (level === "APPLICATION") return applicationToken;
  if (level === "APPLICATION_USER") return !applicationToken;
  return true;
}

/** What the subscription's state refuses, if anything. */
export function subscriptionStatus(s: Pick<Subscription, "state">, keyType: KeyType): ValidationStatus | undefined {
  if (s.state === "BLOCKED" || (s.state === "PROD_ONLY_BLOCKED" && keyType === "PRODUCTION")) return Status.API_BLOCKED;
  if (s.state === "ON_HOLD" || s.state === "REJECTED") return Status.SUBSCRIPTION_INACTIVE;
  return undefined;
}

function refuse(status: ValidationStatus, description: string, facts: Omit<Decision, "status" | "authorized" | "description"> = {}): Decision {
  return { status, authorized: false, description, ...facts };
}
