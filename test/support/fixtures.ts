import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AuthLevel, KeyType, type OAuthApplicationSchema } from "../../gen/keymanager/v1/types_pb.js";

type ApplicationInit = Exclude<MessageInitShape<typeof OAuthApplicationSchema>, { $typeName: string }>;

/** A CreateApplicationRequest: { application } with a fresh application id, the rest overridable. */
export function createRequest(overrides: Partial<ApplicationInit> = {}): { application: ApplicationInit } {
  return {
    application: {
      applicationId: randomUUID(),
      keyType: KeyType.PRODUCTION,
      clientName: "admin_PizzaShack_PRODUCTION",
      grantTypes: ["client_credentials", "password", "refresh_token"],
      scopes: ["read:orders", "write:orders"],
      appOwner: "admin",
      ...overrides,
    },
  };
}

export function sampleResources() {
  return [
    { uriTemplate: "/orders", httpVerb: "GET", authLevel: AuthLevel.APPLICATION_USER, scopes: ["read:orders"], throttlingTier: "Gold" },
    { uriTemplate: "/orders/{id}", httpVerb: "DELETE", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Unlimited" },
  ];
}
