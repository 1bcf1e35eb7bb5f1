// The generated schemas and service descriptors of every keymanager service (gen/, from proto/),
// and a client factory that takes care of the bearer token.
export * from "../../../gen/keymanager/v1/types_pb.js";
export * from "../../../gen/keymanager/v1/key_manager_service_pb.js";
export * from "../../../gen/keymanager/v1/token_validation_service_pb.js";
export * from "../../../gen/keymanager/v1/subscription_service_pb.js";
export * from "../../../gen/keymanager/v1/user_service_pb.js";
export * from "../../../gen/keymanager/v1/signing_key_service_pb.js";
export * from "../../../gen/keymanager/v1/system_client_service_pb.js";
export * from "../../../gen/keymanager/v1/trusted_issuer_service_pb.js";
export * from "../../../gen/keymanager/v1/scope_service_pb.js";
export * from "../../../gen/keymanager/v1/gateway_sync_service_pb.js";
export { type ClientCredentials, createKeyManagerClient, type KeyManagerClient, type KeyManagerClientOptions } from "./client.js";
export { TokenSource, type TokenSourceOptions } from "./token-source.js";
