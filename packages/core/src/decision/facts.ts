import type { Api, ApiResource, AuthLevel } from "../model/api.js";
import type { KeyMapping } from "../model/application.js";
import type { Subscription } from "../model/subscription.js";
import type { TokenFacts } from "../model/token.js";
import type { ResourceTable } from "../templates/resource-table.js";
import type { ValidationStatus } from "./status.js";

/** The gateway's question: may the presented token call this resource of this API with this verb? */
export interface DecisionRequest {
  /** The API's context ("/pizzashack"; a trailing "/" is ignored). */
  context: string;
  version: string;
  /** Whether a token was presented: the rules never see the token, only its facts. */
  hasToken: boolean;
  /** undefined: the registered resource's level. */
  requiredAuthLevel: AuthLevel | undefined;
  /** The URI template the gateway matched ("/order/{id}"); empty: match `requestPath`. */
  matchingResource: string;
  /** The raw request path, from the context on ("/pizzashack/1.0.0/order/7?x=1"); used when matchingResource is empty. */
  requestPath: string;
  httpVerb: string;
  /** Epoch milliseconds the token's expiry is compared with: the caller's clock. */
  now: number;
}

/** The token's key manager could not say whether the token is active (900912). */
export class KeyManagerUnavailable {
  constructor(readonly keyManager: string) {}
}

/**
 * What a decision reads, each asked for only when the rules get that far (an unknown API never
 * costs a token look-up). The server answers through its caches (AsyncFacts), a gateway from its
 * local copy; `undefined` means "there is none".
 */
export interface Facts {
  api(context: string, version: string): Api | undefined;
  /** The API's resources, compiled (undefined: none registered). */
  resources(api: Api): ResourceTable | undefined;
  /** The presented token's facts; undefined when unknown (not issued, or not genuine). */
  token(): TokenFacts | KeyManagerUnavailable | undefined;
  /** The application holding a consumer key. */
  keyMapping(consumerKey: string): KeyMapping | undefined;
  subscription(applicationId: string, apiId: string): Subscription | undefined;
}

/** The same facts, each answered now or later. */
export type AsyncFacts = { [K in keyof Facts]: (...args: Parameters<Facts[K]>) => ReturnType<Facts[K]> | Promise<ReturnType<Facts[K]>> };

/** The answer, with the facts it was decided on (those read before the deciding check). */
export interface Decision {
  status: ValidationStatus;
  authorized: boolean;
  /**
   * Which check failed, for people: names the API, resource, application or subscription
   * concerned, never a token or secret; bounded (user-supplied text is cut). Empty when authorized.
   */
  description: string;
  api?: Api;
  resource?: ApiResource;
  token?: TokenFacts;
  keyMapping?: KeyMapping;
  subscription?: Subscription;
}
