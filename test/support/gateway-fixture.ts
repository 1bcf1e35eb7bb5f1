// An API with resources, an application subscribed to it and tokens: what the gateway tests
// (Envoy's ext_authz, forward auth behind nginx and Caddy) ask about.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { SubscriptionService } from "../../gen/keymanager/v1/subscription_service_pb.js";
import { AuthLevel, KeyType } from "../../gen/keymanager/v1/types_pb.js";
import { UserService } from "../../gen/keymanager/v1/user_service_pb.js";
import { createRequest } from "./fixtures.js";
import type { TestServer } from "./server.js";

export const PIZZA = { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
/** Its context is under PIZZA's: the longest context wins. */
export const KITCHEN = { apiId: "kitchen", name: "KitchenAPI", context: "/pizzashack/kitchen", version: "2.0", publisher: "admin", apiTier: "" };

const resource = (httpVerb: string, uriTemplate: string, authLevel = AuthLevel.ANY, scopes: string[] = []) => ({
  uriTemplate,
  httpVerb,
  authLevel,
  scopes,
  throttlingTier: "Unlimited",
});

export interface GatewayFixture {
  /** client_credentials token of PizzaApp, subscribed to PIZZA (Gold) and KITCHEN. */
  appToken: string;
  /** alice's (password grant) token of PizzaApp. */
  userToken: string;
  /** A token of an application subscribed to nothing. */
  unsubscribedToken: string;
  consumerKey: string;
  applicationId: string;
}

export async function gatewayFixture(server: TestServer): Promise<GatewayFixture> {
  const subs = server.client(SubscriptionService);
  await subs.createApi({ api: PIZZA });
  await subs.createApi({ api: KITCHEN });
  await server.grpc.registerNewResource({
    resource: {
      apiId: PIZZA.apiId,
      resources: [resource("GET", "/menu"), resource("GET", "/order/{orderId}"), resource("POST", "/order"), resource("GET", "/open", AuthLevel.NONE)],
    },
  });
  await server.grpc.registerNewResource({ resource: { apiId: KITCHEN.apiId, resources: [resource("GET", "/ovens/*")] } });
  await server.client(UserService).createUser({ user: { username: "alice" }, password: "alice-password" });

  const app = async (name: string, subscribe: boolean) => {
    const applicationId = randomUUID();
    const created = (await server.grpc.createApplication(createRequest({ applicationId, keyType: KeyType.PRODUCTION, applicationName: name }))).application;
    assert.ok(created);
    if (subscribe) {
      await subs.createSubscription({ subscription: { applicationId, apiId: PIZZA.apiId, tier: "Gold" } });
      await subs.createSubscription({ subscription: { applicationId, apiId: KITCHEN.apiId, tier: "Silver" } });
    }
    const token = async (grant: Record<string, string>) =>
      (await server.grpc.getNewApplicationAccessToken({ request: { clientId: created.consumerKey, clientSecret: created.consumerSecret, ...grant } })).token
        ?.accessToken ?? "";
    return { applicationId, consumerKey: created.consumerKey, token };
  };
  const pizza = await app("PizzaApp", true);
  const lonely = await app("LonelyApp", false);
  return {
    appToken: await pizza.token({ grantType: "client_credentials" }),
    userToken: await pizza.token({ grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "alice-password" }),
    unsubscribedToken: await lonely.token({ grantType: "client_credentials" }),
    consumerKey: pizza.consumerKey,
    applicationId: pizza.applicationId,
  };
}
