import type { Api, ApiResource, DecisionRequest, Facts, KeyMapping, Subscription, TokenFacts } from "@keymanager/core";
import { KeyManagerUnavailable, ResourceTable } from "@keymanager/core";

export const NOW = Date.UTC(2026, 0, 1);

export const pizzaApi: Api = { apiId: "api-1", name: "PizzaShack", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };

export function resource(over: Partial<ApiResource> = {}): ApiResource {
  return { uriTemplate: "/menu", httpVerb: "GET", authLevel: "ANY", scopes: [], throttlingTier: "Unlimited", ...over };
}

export function token(over: Partial<TokenFacts> = {}): TokenFacts {
  return {
    consumerKey: "ck-1",
    endUser: "",
    scopes: ["default"],
    tokenType: "OPAQUE",
    issuedAt: new Date(NOW - 60_000),
    expiresAt: new Date(NOW + 3_600_000),
    revokedAt: undefined,
    ...over,
  };
}

export const mapping: KeyMapping = {
  consumerKey: "ck-1",
  applicationId: "896658a0-b4ee-4535-bbfa-806c894a4015",
  applicationName: "PizzaApp",
  applicationTier: "Unlimited",
  keyType: "PRODUCTION",
  subscriber: "alice",
  keyManager: "Resident Key Manager",
};

export function subscription(over: Partial<Subscription> = {}): Subscription {
  return { id: "sub-1", applicationId: mapping.applicationId, apiId: pizzaApi.apiId, tier: "Gold", state: "UNBLOCKED", ...over };
}

export function request(over: Partial<DecisionRequest> = {}): DecisionRequest {
  return {
    context: "/pizzashack",
    version: "1.0.0",
    hasToken: true,
    requiredAuthLevel: undefined,
    matchingResource: "/menu",
    requestPath: "",
    httpVerb: "GET",
    now: NOW,
    ...over,
  };
}

/** A gateway's copy in memory, counting what the rules asked for. */
export class MemoryFacts implements Facts {
  apis: Api[] = [pizzaApi];
  resourceList: ApiResource[] | undefined = [resource()];
  tokenFacts: TokenFacts | KeyManagerUnavailable | undefined = token();
  mappings: KeyMapping[] = [mapping];
  subscriptions: Subscription[] = [subscription()];
  readonly asked: string[] = [];

  constructor(over: Partial<Pick<MemoryFacts, "apis" | "resourceList" | "tokenFacts" | "mappings" | "subscriptions">> = {}) {
    Object.assign(this, over);
  }

  api(context: string, version: string): Api | undefined {
    this.asked.push("api");
    return this.apis.find((a) => a.context === context && a.version === version);
  }

  resources(api: Api): ResourceTable | undefined {
    this.asked.push("resources");
    return api.apiId === pizzaApi.apiId && this.resourceList ? new ResourceTable(this.resourceList) : undefined;
  }

  token(): TokenFacts | KeyManagerUnavailable | undefined {
    this.asked.push("token");
    return this.tokenFacts;
  }

  keyMapping(consumerKey: string): KeyMapping | undefined {
    this.asked.push("keyMapping");
    return this.mappings.find((m) => m.consumerKey === consumerKey);
  }

  subscription(applicationId: string, apiId: string): Subscription | undefined {
    this.asked.push("subscription");
    return this.subscriptions.find((s) => s.applicationId === applicationId && s.apiId === apiId);
  }
}

export { KeyManagerUnavailable };
