/**
 * The human half of an answer: which check failed, naming what it concerns. Bounded (every piece
 * of caller- or publisher-supplied text is cut and quoted), and never a token, a secret or a
 * query string.
 */
import type { Api, ApiResource, AuthLevel } from "../model/api.js";
import type { KeyMapping } from "../model/application.js";
import type { Subscription } from "../model/subscription.js";
import { withoutQuery } from "../templates/request-path.js";

/** Longest piece of supplied text quoted in a description. */
const PIECE = 100;
/** Longest description. */
export const MAX_DESCRIPTION = 1024;

/** Supplied text, cut to a bound and quoted with its control characters escaped. */
export function quote(text: string, max = PIECE): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

function bounded(text: string): string {
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 1)}…` : text;
}

function api(a: Api): string {
  return `API ${quote(a.name)} (context ${quote(a.context)}, version ${quote(a.version)})`;
}

function resource(r: ApiResource): string {
  return `resource ${r.httpVerb} ${quote(r.uriTemplate)}`;
}

function application(m: KeyMapping): string {
  return `application ${quote(m.applicationName)} (id ${quote(m.applicationId)})`;
}

/** Scopes: the first few, each cut shorter than other pieces. */
function list(items: readonly string[]): string {
  const shown = items
    .slice(0, 5)
    .map((s) => quote(s, 40))
    .join(", ");
  return items.length > 5 ? `${shown} and ${items.length - 5} more` : shown;
}

export const describe = {
  noApiAt: (path: string) => bounded(`no API is deployed at request path ${quote(withoutQuery(path))}`),
  noApi: (context: string, version: string) => bounded(`no API with context ${quote(context)} and version ${quote(version)}`),
  noResources: (a: Api) => bounded(`${api(a)} has no resources registered`),
  noTemplate: (a: Api, verb: string, template: string) => bounded(`${api(a)} has no resource ${quote(verb)} ${quote(template)}`),
  noMatch: (a: Api, verb: string, path: string) => bounded(`no resource of ${api(a)} matches ${quote(verb)} ${quote(withoutQuery(path))}`),
  notUnderContext: (a: Api, path: string) => bounded(`request path ${quote(withoutQuery(path))} is not under the context of ${api(a)}`),
  unusablePath: (path: string) =>
    bounded(`request path ${quote(withoutQuery(path))} cannot be matched: it does not start with "/", has a "." or ".." segment, or an undecodable escape`),
  missingToken: (a: Api, r: ApiResource, level: AuthLevel) => bounded(`${resource(r)} of ${api(a)} needs an access token (auth level ${level})`),
  unknownToken: () => "the access token is not known here: not issued by this key manager, or not genuine",
  revokedToken: () => "the access token was revoked",
  expiredToken: (expiresAt: Date) => `the access token expired at ${expiresAt.toISOString()}`,
  unavailable: (keyManager: string) => bounded(`key manager ${quote(keyManager)} cannot be reached to check the access token`),
  wrongTokenType: (a: Api, r: ApiResource, level: AuthLevel) =>
    bounded(
      level === "APPLICATION"
        ? `${resource(r)} of ${api(a)} needs an application token (auth level APPLICATION); this is a user token`
        : `${resource(r)} of ${api(a)} needs a user token (auth level APPLICATION_USER); this is an application token`,
    ),
  noKeyMapping: () => "the token's OAuth client is not mapped to any application",
  noSubscription: (m: KeyMapping, a: Api) => bounded(`${application(m)} has no subscription to ${api(a)}`),
  subscriptionState: (m: KeyMapping, a: Api, s: Subscription) =>
    bounded(
      s.state === "PROD_ONLY_BLOCKED"
        ? `the subscription of ${application(m)} to ${api(a)} is PROD_ONLY_BLOCKED and the token is of its PRODUCTION keys`
        : `the subscription of ${application(m)} to ${api(a)} is ${s.state}`,
    ),
  scope: (a: Api, r: ApiResource, scopes: readonly string[]) =>
    bounded(`${resource(r)} of ${api(a)} needs one of the scopes ${list(r.scopes)}; the token has ${scopes.length === 0 ? "none" : list(scopes)}`),
  generalError: () => "an unexpected failure; the key manager logged it",
};
