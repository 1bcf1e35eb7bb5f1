import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateApplicationRequestSchema } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import { AuthLevel, KeyType } from "../../gen/keymanager/v1/types_pb.js";

type CreateInit = Exclude<MessageInitShape<typeof CreateApplicationRequestSchema>, { $typeName: string }>;

export function createRequest(overrides: Partial<CreateInit> = {}): CreateInit {
  return {
    applicationId: randomUUID(),
    keyType: KeyType.PRODUCTION,
    clientName: "admin_PizzaShack_PRODUCTION",
    grantTypes: ["client_credentials", "password", "refresh_token"],
    scopes: ["read:orders", "write:orders"],
    appOwner: "admin",
    ...overrides,
  };
}

export function sampleResources() {
  return [
    { uriTemplate: "/orders", httpVerb: "GET", authLevel: AuthLevel.APPLICATION_USER, scopes: ["read:orders"], throttlingTier: "Gold" },
    { uriTemplate: "/orders/{id}", httpVerb: "DELETE", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Unlimited" },
  ];
}
