/**
 * @keymanager/core: what a gateway decision needs, shared by the key manager's ValidateToken,
 * the gateway library and Envoy's ext_authz, so that all three decide alike.
 * Pure: no storage, transport, cache or clock of its own.
 */
export * from "./decision/decide.js";
export * from "./decision/facts.js";
export * from "./decision/gateway-error.js";
export * from "./decision/status.js";
export { MAX_DESCRIPTION } from "./decision/describe.js";
export * from "./model/api.js";
export * from "./model/application.js";
export * from "./model/subscription.js";
export * from "./model/token.js";
export * from "./templates/api-path.js";
export * from "./templates/request-path.js";
export * from "./templates/resource-table.js";
export { parseTemplate, type ParsedTemplate, type Segment } from "./templates/uri-template.js";
