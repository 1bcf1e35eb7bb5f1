/**
 * @keymanager/core: what a gateway decision needs, shared by the key manager's ValidateToken,
 * the gateway library and Envoy's ext_authz, so that all three decide alike.
 * Pure: no storage, transport, cache or clock of its own.
 */
export * from "./model/api.js";
export * from "./model/application.js";
export * from "./model/subscription.js";
export * from "./model/token.js";
